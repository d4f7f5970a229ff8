"""`backdrop serve` against a real server process on 127.0.0.1 with the real model: the
API, every bad input of issue 13 with a crafted file, the token, a full queue, SIGTERM."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import signal
import socket
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from servehelp import ASTRONAUT, SAMPLES, ServerProcess, decode, png_bytes, some_photos

TOKEN = "s3cret-token"


@pytest.fixture
def server(serve_server):       # one server for this module and the page's tests (conftest)
    return serve_server


def _post(server, data: bytes, content_type: str = "image/png", query: str = "",
          headers=None):
    return httpx.post(f"{server.url}/v1/remove{query}", content=data, timeout=120,
                      headers=dict(headers or {}, **{"Content-Type": content_type}))


def _json_error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ----------------------------------------------------------------------------- the API

def test_remove_answers_a_transparent_cutout_of_the_photo(server):
    data = (SAMPLES / "coffee.png").read_bytes()
    response = _post(server, data)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    cut = decode(response.content)
    assert cut.shape == (400, 600, 4)
    alpha = cut[..., 3]
    assert np.count_nonzero(alpha == 255) > 0.1 * alpha.size
    assert np.count_nonzero(alpha == 0) > 0.1 * alpha.size


def test_multipart_upload_and_options_mirror_backdrop_image(server):
    files = {"image": ("rocket.jpg", (SAMPLES / "rocket.jpg").read_bytes(), "image/jpeg")}
    jpeg = httpx.post(f"{server.url}/v1/remove?background=white&format=jpg&quality=fast",
                      files=files, timeout=120)
    assert jpeg.status_code == 200, jpeg.text
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).mode == "RGB"
    mask = httpx.post(f"{server.url}/v1/remove?mask=true&subject=any&quality=fast",
                      files=files, timeout=120)
    assert mask.status_code == 200, mask.text
    matte = Image.open(io.BytesIO(mask.content))
    assert matte.mode == "L" and matte.size == Image.open(SAMPLES / "rocket.jpg").size
    canvas = httpx.post(f"{server.url}/v1/remove?background=white&format=jpg&quality=fast"
                        "&subject=any&canvas=300x200&align=bottom", files=files, timeout=120)
    assert canvas.status_code == 200, canvas.text
    assert Image.open(io.BytesIO(canvas.content)).size == (300, 200)
    webp = _post(server, (SAMPLES / "chelsea.png").read_bytes(), query="?format=webp&quality=fast")
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
    assert decode(webp.content).shape[2] == 4


def test_subject_window_cuts_a_window_out_of_a_screenshot(server):
    import sys

    from servehelp import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import screenshots

    shot = screenshots.make_screenshot(3, screenshots.wallpapers(), size=(720, 480))
    response = _post(server, png_bytes(shot.image), query="?subject=window&mask=true")
    assert response.status_code == 200, response.text
    matte = decode(response.content).astype(np.float32) / 255
    assert np.minimum(matte, shot.alpha).sum() / np.maximum(matte, shot.alpha).sum() > 0.95


def test_concurrent_clients_each_get_their_own_photo_back(server):
    photos = some_photos(3)
    jobs = photos * 2           # each photo twice, all at once, over both workers

    def ask(path):
        kind = "image/jpeg" if path.suffix == ".jpg" else "image/png"
        return path, _post(server, path.read_bytes(), kind, query="?mask=true&quality=fast")

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(ask, jobs))
    mattes = {}
    for path, response in answers:
        assert response.status_code == 200, response.text
        matte = decode(response.content).astype(int)
        assert matte.shape == Image.open(path).size[::-1]      # never another client's image
        assert matte.max() == 255 and matte.min() == 0
        mattes.setdefault(path, []).append(matte)
    for first, second in mattes.values():       # the same photo, the same matte
        assert np.mean(np.abs(first - second)) < 0.5


def test_health_openapi_and_page(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["version"]
    assert health["queue"]["workers"] == 2 and "waiting" in health["queue"]
    spec = httpx.get(server.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and {"/v1/remove", "/v1/refine"} <= set(spec["paths"])
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/page/page.js" in page.text and "http" not in page.text.replace(server.url, "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(server.url + "/page/page.js").status_code == 200
    _json_error(httpx.get(server.url + "/page/..%2Fpool.py"), 404)
    _json_error(httpx.get(server.url + "/v1/remove"), 405)


# ----------------------------------------------------------------------------- bad inputs

def _png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header declares width x height."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "GIF")
    return out.getvalue()


BAD_INPUTS = {
    "truncated jpeg": (lambda: (SAMPLES / "rocket.jpg").read_bytes()[:4000], "image/jpeg", "",
                       400, "truncated"),
    "truncated png": (lambda: (SAMPLES / "coffee.png").read_bytes()[:20000], "image/png", "",
                      400, "truncated"),
    "empty body": (lambda: b"", "image/png", "", 400, "empty"),
    "not an image at all": (lambda: b"hello, world" * 10, "image/png", "", 400, "not a readable"),
    "30000x30000 declared": (lambda: _png_declaring(30000, 30000), "image/png", "", 413,
                             "too many pixels"),
    "9000x9000 declared": (lambda: _png_declaring(9000, 9000), "image/png", "", 413, "9000x9000"),
    "text content type": (lambda: b"hello", "text/plain", "", 415, "text/plain"),
    "no content type": (lambda: b"hello", "", "", 415, "not an image"),
    "a GIF": (_gif, "image/gif", "", 415, "image/gif"),
    "a GIF called PNG": (_gif, "image/png", "", 415, "GIF"),
    "SVG": (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "", 415, "svg"),
    "jpg with transparent": (lambda: (SAMPLES / "coffee.png").read_bytes(), "image/png",
                             "?format=jpg", 422, "format=jpg"),
    "unknown option": (lambda: b"x", "image/png", "?colour=red", 422, "unknown option"),
    "a file path as background": (lambda: b"x", "image/png", "?background=/etc/passwd", 422,
                                  "no files"),
    "bad quality": (lambda: b"x", "image/png", "?quality=ultra", 422, "quality"),
    "a template file as canvas": (lambda: b"x", "image/png", "?canvas=/etc/hosts", 422,
                                  "no template files"),
    "a huge canvas": (lambda: b"x", "image/png", "?canvas=20000x20000&background=white", 413,
                      "canvas"),
    "margin without canvas": (lambda: b"x", "image/png", "?margin=10", 422, "--canvas"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_each_bad_input_gets_its_status_and_one_line(server, case):
    make, kind, query, status, words = BAD_INPUTS[case]
    response = httpx.post(f"{server.url}/v1/remove{query}", content=make(),
                          headers={"Content-Type": kind} if kind else {}, timeout=60)
    message = _json_error(response, status)
    assert words.lower() in message.lower()


def test_multipart_part_of_the_wrong_type_is_415(server):
    files = {"image": ("notes.txt", b"hello", "text/plain")}
    message = _json_error(httpx.post(f"{server.url}/v1/remove", files=files), 415)
    assert "'image'" in message
    files = {"picture": ("a.png", (SAMPLES / "coffee.png").read_bytes(), "image/png")}
    assert "'image'" in _json_error(httpx.post(f"{server.url}/v1/remove", files=files), 422)


def _raw_request(server, head: bytes, body: bytes = b"") -> bytes:
    """One request over a plain socket: the client may stop sending whenever the server
    has answered (as for a body it refused)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def test_huge_declared_body_is_refused_before_it_is_read(server):
    head = (b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 2000000000\r\n\r\n")
    answer = _raw_request(server, head, b"\x89PNG" + b"\0" * 1000)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit" in rest


# ----------------------------------------------------------------------------- touch-up

def _refine(server, image: bytes, matte: bytes, hints: bytes, query: str = ""):
    files = {"image": ("a.png", image, "image/png"), "matte": ("m.png", matte, "image/png"),
             "hints": ("h.png", hints, "image/png")}
    return httpx.post(f"{server.url}/v1/refine{query}", files=files, timeout=120)


def test_refine_removes_under_a_stroke_and_keeps_the_rest(server):
    image = ASTRONAUT.read_bytes()
    cut = _post(server, image, query="?quality=fast")
    before = decode(cut.content)[..., 3].astype(int)
    hints = np.zeros(before.shape + (4,), np.uint8)
    hints[330:350, 150:350] = (255, 0, 0, 255)          # a red band across the suit
    response = _refine(server, image, cut.content, png_bytes(hints))
    assert response.status_code == 200, response.text
    after = decode(response.content)
    assert after.shape == before.shape + (4,)
    alpha = after[..., 3].astype(int)
    assert before[330:350, 150:350].mean() > 200, "the stroke must cross the subject"
    assert alpha[330:350, 150:350].max() <= 10
    far = np.ones_like(alpha, bool)
    far[330 - 60:350 + 60, 150 - 60:350 + 60] = False
    assert np.mean(np.abs(alpha[far] - before[far])) < 0.5
    matte = _refine(server, image, cut.content, png_bytes(hints), "?mask=true")
    assert Image.open(io.BytesIO(matte.content)).mode == "L"


def test_refine_checks_its_parts(server):
    image = ASTRONAUT.read_bytes()
    small = png_bytes(np.zeros((10, 10), np.uint8))
    missing = httpx.post(f"{server.url}/v1/refine", files={"image": ("a.png", image, "image/png")})
    assert "'matte'" in _json_error(missing, 422)
    raw = httpx.post(f"{server.url}/v1/refine", content=image, headers={"Content-Type": "image/png"})
    assert "multipart" in _json_error(raw, 415)
    assert "10x10" in _json_error(_refine(server, image, small, small), 422)


# ----------------------------------------------------------------------------- token, queue, SIGTERM

@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("guarded") / "server.log", "--token", TOKEN,
                        "--queue", "0", "--max-megabytes", "3", workers=1)
    try:
        srv.wait_ready(headers={"Authorization": f"Bearer {TOKEN}"})
        yield srv
    finally:
        srv.stop()


def test_token_is_needed_for_every_route_including_the_page(guarded):
    for method, path in (("GET", "/"), ("GET", "/health"), ("GET", "/openapi.json"),
                         ("POST", "/v1/remove"), ("POST", "/v1/refine")):
        response = httpx.request(method, guarded.url + path)
        assert "token" in _json_error(response, 401)
        assert "Basic" in response.headers["www-authenticate"]
    wrong = httpx.get(guarded.url + "/health", headers={"Authorization": "Bearer nope"})
    assert "wrong token" in _json_error(wrong, 401)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(guarded.url + "/health", headers=bearer).status_code == 200
    basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    page = httpx.get(guarded.url + "/", headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and "<html" in page.text


def test_streamed_body_over_the_limit_is_413(guarded):
    head = (b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"\0" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 64 + b"0\r\n\r\n"     # 4 MB
    answer = _raw_request(guarded, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def _big_photo() -> bytes:
    """Large enough that the one worker is busy for a while at quality best."""
    image = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((1400, 1400)))
    return png_bytes(image)


def test_full_queue_is_503_and_sigterm_finishes_the_running_request(guarded):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    slow = {}
    thread = threading.Thread(target=lambda: slow.update(response=_post(
        guarded, _big_photo(), headers=bearer)))
    thread.start()
    deadline = time.monotonic() + 60
    while httpx.get(guarded.url + "/health", headers=bearer).json()["queue"]["running"] < 1:
        assert time.monotonic() < deadline and thread.is_alive(), "the request never started"
        time.sleep(0.02)
    busy = _post(guarded, (SAMPLES / "coffee.png").read_bytes(), headers=bearer)
    assert "busy" in _json_error(busy, 503)
    assert int(busy.headers["retry-after"]) > 0
    workers = guarded.children()
    assert workers, "the worker processes should be children of the server"
    guarded.proc.send_signal(signal.SIGTERM)
    thread.join(120)
    response = slow["response"]
    assert response.status_code == 200, response.text
    assert decode(response.content).shape == (1400, 1400, 4)
    assert guarded.proc.wait(60) == 130
    assert "stopped by SIGTERM" in guarded.log()
    deadline = time.monotonic() + 30      # multiprocessing's resource tracker leaves last
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the server"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_health_is_json(server):
    assert json.loads(httpx.get(server.url + "/health").text)["queue"]["running"] >= 0


def test_taken_port_is_one_line_and_other_hosts_warn_without_a_token():
    import subprocess
    import sys

    from servehelp import ROOT

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "backdrop", "serve", "--host", "0.0.0.0",
                               "--port", str(port)], capture_output=True, text=True, timeout=120,
                              cwd=str(ROOT))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "without --token" in lines[0] and "--token SECRET" in lines[0]
    assert lines[-1].startswith("backdrop: error: cannot listen on 0.0.0.0:") and "--port" in lines[-1]
    assert "Traceback" not in done.stderr


def test_a_request_over_the_time_limit_costs_its_worker_not_the_server():
    """The pool in this process: the first job (which must load its models, seconds) runs
    over a 0.3 s limit; its worker is replaced and the next job is answered."""
    import asyncio

    from backdrop.config import BackgroundSpec
    from backdrop.offline.image import ImageSettings
    from backdrop.serve.apierror import ApiError
    from backdrop.serve.images import Limits
    from backdrop.serve.pool import WorkerPool

    settings = ImageSettings(quality="best", background=BackgroundSpec("transparent"),
                             kind="cutout", fmt="png")
    slow = {"kind": "remove", "image": ASTRONAUT.read_bytes(), "settings": settings,
            "limits": Limits()}

    async def scenario():
        pool = WorkerPool(1, 0, time_limit=0.3, warm_settings=[])
        await pool.start()
        try:
            with pytest.raises(ApiError) as over:
                await pool.run(slow)
            assert over.value.status == 503 and "time limit" in over.value.message
            assert over.value.headers["Retry-After"]
            assert pool.restarts == 1
            while pool.state()["idle"] < 1:          # the replacement is starting
                await asyncio.sleep(0.05)
            pool.time_limit = 120.0
            answer = await pool.run(dict(slow, image=b"\x89PNG\r\n\x1a\n broken"))
            assert answer[0] == "error" and answer[1] == 400
        finally:
            await pool.close()

    asyncio.run(scenario())
