"""`backdrop bench --json` keeps the shape benchmarks and users rely on."""

import json

from backdrop.cli.main import main


def test_bench_json_shape(capsys):
    assert main(["bench", "--resolution", "480p", "--frames", "3", "--json", "--no-latency"]) == 0
    report = json.loads(capsys.readouterr().out)
    entry = report["resolutions"]["480p"]
    assert (entry["width"], entry["height"]) == (640, 480)
    for mode in ("blur", "image", "still"):
        m = entry["modes"][mode]
        assert m["fps"] > 0 and m["cpu_ms_per_frame"] > 0
        assert m["frame_ms"]["p95"] >= m["frame_ms"]["p50"] > 0
        assert {"segment", "smooth", "refine", "composite", "send"} <= set(m["stages"])
    assert entry["modes"]["blur"]["stages"]["background"]["p50"] > 0
    # the person holds still: the mask is reused after the first frames
    assert entry["modes"]["still"]["model_runs_per_frame"] < 0.5
    assert entry["modes"]["blur"]["model_runs_per_frame"] > 0


def test_bench_rejects_zero_frames(capsys):
    assert main(["bench", "--frames", "0"]) == 2
    assert "--frames must be at least 1" in capsys.readouterr().err
