"""Mask-quality benchmark: several methods side by side on the evaluation sets.

Sets (sets.py): ``photos`` (80 people), ``objects`` (200 ECSSD images, any salient
subject), ``parkour`` (100-frame real video), ``synthetic-static`` and ``synthetic-moving``
(rendered from the photos, exact truth, one sequence per --seeds value, averaged), and
``edge-colour`` (edge.py: the colour error of a cut-out near the outline). Methods
(methods.py): raw MediaPipe and raw U²-Netp (the baselines) and backdrop's presets, with
preset fields changeable per method name (``backdrop-best,pose=0``). Metrics: metrics.py
and ../shared/evaldata/README.md.

Example, the static-flicker study of `backdrop video`'s default (one preset field at a time):
    quality.py --sets synthetic-static --seeds 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 \
        --methods backdrop-balanced,seq=1 backdrop-best backdrop-best,pose=0 --seed-rows
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edge  # noqa: E402
import metrics  # noqa: E402
from common import DEFAULT_EVALDATA, Unavailable  # noqa: E402
from methods import METHODS, make_method  # noqa: E402
from sets import MASK_SETS, EvalSet, load_sets  # noqa: E402
from sheet import contact_sheet  # noqa: E402

SETS = (*MASK_SETS, "edge-colour")
AVERAGED = ("iou", "bf", "mae", "flicker", "flip_rate", "ms_per_frame")


def predict(method, evalset: EvalSet) -> tuple[list[np.ndarray], float]:
    """uint8 predictions for a set and the mean wall time per frame in ms."""
    method.reset()
    method.matte(evalset.frames[0])  # warm-up: model init, jit, caches
    if evalset.sequence:
        method.reset()
        start = time.perf_counter()
        if hasattr(method, "matte_sequence"):
            mattes = list(method.matte_sequence(evalset.frames))
        else:
            mattes = [method.matte(f) for f in evalset.frames]
        elapsed = time.perf_counter() - start
    else:
        mattes, elapsed = [], 0.0
        for frame in evalset.frames:
            method.reset()
            start = time.perf_counter()
            mattes.append(method.matte(frame))
            elapsed += time.perf_counter() - start
    preds = [metrics.to_uint8(m, f.shape[:2]) for m, f in zip(mattes, evalset.frames)]
    return preds, 1000.0 * elapsed / len(evalset.frames)


def score(evalset: EvalSet, preds: list[np.ndarray]) -> dict[str, float]:
    """Per-frame means; flicker and flip rates for sequences only."""
    if evalset.sequence:
        return metrics.sequence_scores(preds, evalset.truths)
    per_frame = [metrics.frame_scores(p, t) for p, t in zip(preds, evalset.truths)]
    return {**metrics.summarize(per_frame), "flicker": math.nan, "flip_rate": math.nan}


def group_means(rows: list[dict], group: str, set_names: list[str]) -> list[dict]:
    """Per method, the mean of the rows of ``set_names`` (one per seed) under ``group``."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows if r["set"] in set_names):
        mine = [r for r in rows if r["set"] in set_names and r["method"] == method]
        flickers = [r["flicker"] for r in mine]
        out.append({"set": group, "method": method, "n": sum(r["n"] for r in mine),
                    **{k: float(np.mean([r[k] for r in mine])) for k in AVERAGED},
                    "flicker_median": float(np.median(flickers)),
                    "flicker_max": float(np.max(flickers)), "seeds": len(mine)})
    return out


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """One plain-text table: set, method, n, IoU, BF, MAE, flicker, flip-rate, ms/frame."""
    mw = max(30, *(len(r["method"]) + 2 for r in rows))
    head = (f"{'set':<22}{'method':<{mw}}{'n':>5}{'IoU':>7}{'BF':>7}{'MAE':>8}"
            f"{'flicker':>10}{'flip-rate':>10}{'ms/frame':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['set']:<22}{r['method']:<{mw}}{r['n']:>5}{_fmt(r['iou'], '.3f'):>7}"
            f"{_fmt(r['bf'], '.3f'):>7}{_fmt(r['mae'], '.4f'):>8}"
            f"{_fmt(r['flicker'], '+.5f'):>10}{_fmt(r['flip_rate'], '.4f'):>10}"
            f"{_fmt(r['ms_per_frame'], '.0f'):>9}")
    return "\n".join(lines)


def _none_if_nan(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(path: Path, report: dict) -> None:
    """Write the report; NaN (not applicable) becomes null."""
    clean = {key: [{k: _none_if_nan(v) for k, v in r.items()} for r in report[key]]
             for key in ("results", "seed_results", "edge_results")}
    Path(path).write_text(json.dumps({**report, **clean}, indent=2) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evaldata", type=Path, default=DEFAULT_EVALDATA,
                   help=f"evaluation data root (default: {DEFAULT_EVALDATA})")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), metavar="SET",
                   help=f"sets to run: {', '.join(SETS)} (default: all)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), metavar="METHOD",
                   help=f"methods: {', '.join(METHODS)}, or backdrop-<quality>[-<subject>]"
                        "[,field=value...] (a preset field changed; seq=1: the look-ahead"
                        " path of `backdrop video`) (default: all listed)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N frames/images per set")
    p.add_argument("--synthetic-frames", type=int, default=60, metavar="N",
                   help="frames per synthetic sequence (default: 60)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S",
                   help="one synthetic scene per seed, averaged (default: 0)")
    p.add_argument("--seed-rows", action="store_true", help="also print each seed's row")
    p.add_argument("--edge-photos", type=int, default=20, metavar="N",
                   help="photos in the edge-colour set (default: 20)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument("--save", type=Path, metavar="DIR",
                   help="write predictions as PNG to DIR/<set>/<method>/<stem>.png")
    p.add_argument("--contact-sheet", type=Path, metavar="FILE",
                   help="PNG grid of cut-outs on white/black/grey/green/magenta")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    return args


def _open_methods(names: list[str], skipped: dict) -> dict:
    methods = {}
    for name in names:
        try:
            methods[name] = make_method(name)
        except Unavailable as e:
            skipped[name] = str(e)
            print(f"skipping method {name}: {e}", file=sys.stderr)
    return methods


def _evaluate(evalset: EvalSet, methods: dict, report: dict, save: Path | None) -> list[dict]:
    """Run every method on one set; return its rows."""
    rows = []
    for name, method in methods.items():
        preds, ms = predict(method, evalset)
        scores = score(evalset, preds)
        if "flip_rate_truth" in scores:
            report["truth_flip_rate"][evalset.group] = scores.pop("flip_rate_truth")
        rows.append({"set": evalset.name, "method": name, "n": len(preds), **scores,
                     "ms_per_frame": ms})
        print(f"  {evalset.name} / {name}: {len(preds)} frames, {ms:.1f} ms/frame",
              file=sys.stderr)
        if save:
            (save / evalset.name / name).mkdir(parents=True, exist_ok=True)
            for stem, pred in zip(evalset.stems, preds):
                cv2.imwrite(str(save / evalset.name / name / f"{stem}.png"), pred)
    return rows


def _run_mask_set(name: str, args, methods: dict, report: dict) -> None:
    try:
        evalsets = load_sets(name, args.evaldata, args.limit, args.synthetic_frames, args.seeds)
    except Unavailable as e:
        report["skipped_sets"][name] = str(e)
        print(f"skipping set {name}: {e}", file=sys.stderr)
        return
    rows = []
    for evalset in evalsets:
        rows += _evaluate(evalset, methods, report, args.save)
    if len(evalsets) == 1 and evalsets[0].name == name:
        report["results"] += rows
    else:
        report["seed_results"] += rows
        report["results"] += group_means(rows, name, [s.name for s in evalsets])


def _run_edge_set(args, report: dict) -> None:
    count = min(args.edge_photos, args.limit or args.edge_photos)
    try:
        report["edge_results"] = edge.run_edge(args.evaldata / "photos", count, args.methods,
                                               make_method, report["skipped_methods"])
    except Unavailable as e:
        report["skipped_sets"]["edge-colour"] = str(e)
        print(f"skipping set edge-colour: {e}", file=sys.stderr)


def run(args: argparse.Namespace) -> dict:
    """Evaluate every available (set, method) pair; return the report."""
    report = {"evaldata": str(args.evaldata), "limit": args.limit, "seeds": args.seeds,
              "results": [], "seed_results": [], "edge_results": [],
              "skipped_sets": {}, "skipped_methods": {}, "truth_flip_rate": {}}
    mask_sets = [s for s in args.sets if s in MASK_SETS]
    methods = _open_methods(args.methods, report["skipped_methods"]) if mask_sets else {}
    try:
        for name in mask_sets if methods else []:
            _run_mask_set(name, args, methods, report)
    finally:
        for method in methods.values():
            method.close()
    if "edge-colour" in args.sets:
        _run_edge_set(args, report)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # quieten MediaPipe's C++ logging
    warnings.filterwarnings("ignore", message="MessageFactory class is deprecated")
    start = time.perf_counter()
    report = run(args)
    report["elapsed_s"] = round(time.perf_counter() - start, 2)
    rows = report["results"] + (report["seed_results"] if args.seed_rows else [])
    if rows:
        print(format_table(rows))
        for set_name, rate in report["truth_flip_rate"].items():
            print(f"truth flip-rate of {set_name}: {rate:.4f}")
    if report["edge_results"]:
        print(edge.format_edge_table(report["edge_results"]))
    if not rows and not report["edge_results"]:
        print("nothing evaluated: no set or no method available (see messages above)")
    if args.contact_sheet:
        contact_sheet(args.evaldata, args.contact_sheet)
    if args.json:
        write_json(args.json, report)
    print(f"done in {report['elapsed_s']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
