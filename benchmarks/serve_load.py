"""Load on `backdrop serve`: requests/s and latency (p50/p95) at 1, 4 and 16 concurrent
clients, and the server's memory (its process plus the workers, RSS) over a long run.

A real server process on 127.0.0.1 (the command users run, default workers: one per core),
clients on threads with keep-alive connections, each POSTing a photo as the body of
/v1/remove and reading the cut-out. Photos: ../shared/evaldata/photos (people, 550 px wide)
when present, else the repository's samples.

    .venv/bin/python benchmarks/serve_load.py [--requests 48] [--quality best]
        [--long 2000] [--long-quality fast] [--long-subject auto] [--levels 1,4,16]
        [--workers N] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = REPO.parent / "shared" / "evaldata" / "photos" / "images"
SAMPLES = [REPO / "assets" / "samples" / n for n in ("coffee.png", "chelsea.png", "rocket.jpg")]
LEVELS = (1, 4, 16)


def photos():
    found = sorted(SHARED_PHOTOS.glob("*.jpg")) if SHARED_PHOTOS.is_dir() else []
    chosen = found or SAMPLES
    return [(p.name, p.read_bytes(), "image/jpeg" if p.suffix == ".jpg" else "image/png")
            for p in chosen], ("../shared/evaldata/photos" if found else "assets/samples")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers, log) -> tuple:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    args = [sys.executable, "-m", "backdrop", "serve", "--port", str(port), "--queue", "64"]
    if workers:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"backdrop serve exited with {proc.returncode}")
        try:
            queue = httpx.get(url + "/health", timeout=5).json()["queue"]
            if queue["idle"] == queue["workers"]:
                return proc, url, queue["workers"]
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("backdrop serve did not get ready in 300 s")


def rss_mb(pid: int) -> float:
    """The server's resident memory plus its children's (the workers), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for children in Path(f"/proc/{p}/task").glob("*/children"):
                todo += [int(c) for c in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run_level(url, images, clients, count, query, on_done=None):
    """`count` requests from `clients` threads; (requests/s, latencies in s, failures)."""
    latencies, failures, lock = [], [], threading.Lock()
    counter = iter(range(count))

    def client():
        with httpx.Client(timeout=600) as http:
            for i in counter:
                name, data, kind = images[i % len(images)]
                t = time.perf_counter()
                r = http.post(f"{url}/v1/remove?{query}", content=data,
                              headers={"Content-Type": kind})
                took = time.perf_counter() - t
                with lock:
                    (latencies if r.status_code == 200 else failures).append(
                        took if r.status_code == 200 else (name, r.status_code, r.text[:100]))
                    if on_done:
                        on_done(len(latencies) + len(failures))

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return count / (time.perf_counter() - started), latencies, failures


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    ap.add_argument("--quality", default="best")
    ap.add_argument("--long", type=int, default=2000, help="requests in the memory run (0: none)")
    ap.add_argument("--long-quality", default="fast")
    ap.add_argument("--long-subject", default="auto")
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)),
                    help="concurrency levels, comma-separated (empty: none)")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--json")
    args = ap.parse_args()
    images, source = photos()
    result = {"photos": source, "count": len(images), "quality": args.quality, "levels": {}}
    with tempfile.TemporaryFile() as log:
        proc, url, workers = start_server(args.workers, log)
        result["workers"] = workers
        try:
            query = f"quality={args.quality}"
            run_level(url, images, 2, 2 * workers, query)      # first calls: left out
            for clients in [int(c) for c in args.levels.split(",") if c]:
                rate, lat, failed = run_level(url, images, clients, args.requests, query)
                result["levels"][clients] = {
                    "requests_per_s": round(rate, 2), "p50_ms": round(1000 * statistics.median(lat)),
                    "p95_ms": round(1000 * percentile(lat, 95)), "failed": len(failed)}
                print(f"{clients:>2} clients: {rate:.2f} req/s, p50 {1000 * statistics.median(lat):.0f}"
                      f" ms, p95 {1000 * percentile(lat, 95):.0f} ms, {len(failed)} failed",
                      flush=True)
            if args.long:
                result["memory"] = long_run(url, proc.pid, images, args.long,
                                            args.long_quality, args.long_subject)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def long_run(url, pid, images, count, quality, subject):
    query = f"quality={quality}&subject={subject}"
    run_level(url, images, 2, 8, query)             # this setting's models loaded first
    samples = {0: rss_mb(pid)}
    started = time.perf_counter()

    def sample(done):
        if done % 100 == 0:
            samples[done] = rss_mb(pid)
            print(f"  {done} requests, {time.perf_counter() - started:.0f} s,"
                  f" RSS {samples[done]:.0f} MB", flush=True)

    rate, lat, failed = run_level(url, images, 4, count, query, on_done=sample)
    samples[count] = rss_mb(pid)
    print(f"memory run: {count} requests ({query}), 4 clients, {rate:.2f} req/s,"
          f" {len(failed)} failed", flush=True)
    return {"requests": count, "query": query, "requests_per_s": round(rate, 2),
            "failed": len(failed), "rss_mb": {k: round(v, 1) for k, v in sorted(samples.items())}}


def print_table(result) -> None:
    print(f"\n{result['count']} photos from {result['photos']}, quality {result['quality']},"
          f" {result['workers']} workers\n")
    print("| clients | requests/s | p50 ms | p95 ms | failed |\n|---|---|---|---|---|")
    for clients, r in result["levels"].items():
        print(f"| {clients} | {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['failed']} |")
    if "memory" in result:
        m = result["memory"]
        rss = m["rss_mb"]
        marks = [k for k in rss if k in (0, 100, 500, 1000, 1500, m["requests"])]
        print(f"\nRSS (server + workers) over {m['requests']} requests ({m['query']}, 4 clients,"
              f" {m['requests_per_s']} req/s, {m['failed']} failed):\n")
        print("| requests done | " + " | ".join(map(str, marks)) + " |")
        print("|---" * (len(marks) + 1) + "|")
        print("| RSS MB | " + " | ".join(f"{rss[k]:.0f}" for k in marks) + " |")

if __name__ == "__main__":
    sys.exit(main())
