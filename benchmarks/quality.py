"""Mask-quality benchmark: several methods side by side on the evaluation sets.

Sets: ``photos`` (80 photos with hand-made masks), ``parkour`` (100-frame real
video), ``synthetic-static`` and ``synthetic-moving`` (rendered from the photos,
exact truth). Methods: raw MediaPipe (the baseline every peer ships) and
backdrop's presets. Metrics: see metrics.py and ../shared/evaldata/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402
import synthetic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVALDATA = REPO.parent / "shared" / "evaldata"
SETS = ("photos", "parkour", "synthetic-static", "synthetic-moving")
# name -> (model file, model input (w, h), shrink with INTER_AREA before MediaPipe).
# The "-mpresize" variants hand MediaPipe the full frame to resize itself, as
# mp.solutions.selfie_segmentation does; they reproduce the evaldata README numbers.
RAW_MODELS = {
    "raw-general": ("selfie_segmentation.tflite", (256, 256), True),
    "raw-landscape": ("selfie_segmentation_landscape.tflite", (256, 144), True),
    "raw-general-mpresize": ("selfie_segmentation.tflite", (256, 256), False),
    "raw-landscape-mpresize": ("selfie_segmentation_landscape.tflite", (256, 144), False),
}
QUALITIES = ("fast", "balanced", "best")
METHODS = (*RAW_MODELS, *(f"backdrop-{q}" for q in QUALITIES))
SHEET_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128),
                 "green": (0, 255, 0), "magenta": (255, 0, 255)}


@dataclass
class EvalSet:
    """Frames (RGB uint8) with truth masks; ``sequence`` if they form one video."""

    name: str
    sequence: bool
    stems: list[str]
    frames: list[np.ndarray]
    truths: list[np.ndarray]


class Unavailable(Exception):
    """A set or method that cannot run here; the message says why."""


class RawMediaPipe:
    """MediaPipe selfie segmentation of the whole frame: no refinement, no state."""

    def __init__(self, model_file: str, size: tuple[int, int], pre_resize: bool = True):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        path = os.path.join(os.path.dirname(mp.__file__), "modules",
                            "selfie_segmentation", model_file)
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=path),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True, output_category_mask=False)
        self._mp, self._size, self._pre_resize = mp, size, pre_resize
        self._segmenter = vision.ImageSegmenter.create_from_options(options)

    def reset(self) -> None:
        """Nothing to forget: every frame is independent."""

    def matte(self, frame: np.ndarray) -> np.ndarray:
        # without pre_resize, MediaPipe resizes to the model input itself (bilinear)
        frame_in = (cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
                    if self._pre_resize else frame)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                               data=np.ascontiguousarray(frame_in))
        prob = self._segmenter.segment(image).confidence_masks[0].numpy_view()
        h, w = frame.shape[:2]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self._segmenter.close()


class BackdropAdapter:
    """reset()/matte() over a backdrop Pipeline; matte_sequence() when it has one."""

    def __init__(self, pipeline, sequence: bool):
        self._pipeline = pipeline
        if sequence and hasattr(pipeline, "matte_sequence"):
            self.matte_sequence = pipeline.matte_sequence

    def reset(self) -> None:
        self._pipeline.reset()

    def matte(self, frame: np.ndarray) -> np.ndarray:
        return self._pipeline.matte(frame)

    def close(self) -> None:
        self._pipeline.close()


def backdrop_predictor(quality: str) -> BackdropAdapter:
    """The one place that talks to the backdrop package.

    `quality` may carry preset overrides to measure one lever at a time, e.g.
    `balanced,crop=0` or `best,flip=0,model=landscape` (method `backdrop-best,flip=0`).
    Sequences use look-ahead smoothing (as `backdrop video` does) with `best`, or when
    asked with `seq=1`; `seq=0` turns it off."""
    import dataclasses

    from backdrop.config import PipelineConfig
    from backdrop.engine.pipeline import PRESETS, Pipeline

    name, *changes = quality.split(",")
    preset = PRESETS[name]
    sequence = name == "best"
    for change in changes:
        if change.startswith("seq="):
            sequence = change == "seq=1"
            continue
        key, _, value = change.partition("=")
        kind = type(getattr(preset, key))
        preset = dataclasses.replace(preset, **{key: kind(float(value)) if kind in (int, float)
                                                else bool(int(value)) if kind is bool else value})
    overridden = any(c.startswith("model=") for c in changes)
    config = PipelineConfig.preset(name, model=preset.model if overridden else "auto")
    return BackdropAdapter(Pipeline(config, preset=preset), sequence)


def make_method(name: str):
    """Build a method by name; raise Unavailable with the reason when it cannot run."""
    if name in RAW_MODELS:
        return RawMediaPipe(*RAW_MODELS[name])
    if not name.startswith("backdrop-"):
        raise Unavailable(f"unknown method {name}")
    quality = name.removeprefix("backdrop-")
    try:
        return backdrop_predictor(quality)
    except ImportError as e:
        raise Unavailable(f"cannot import backdrop ({e})") from e
    except Exception as e:  # a half-written package must not stop the baseline run
        raise Unavailable(f"backdrop failed to start: {type(e).__name__}: {e}") from e


def _load_folder(name: str, root: Path, stems: list[str], sequence: bool) -> EvalSet:
    pairs = [synthetic.load_pair(root / "images", root / "masks", s) for s in stems]
    return EvalSet(name, sequence, stems, [p[0] for p in pairs], [p[1] for p in pairs])


def load_set(name: str, evaldata: Path, limit: int | None, frames: int, seed: int) -> EvalSet:
    """Load or render one evaluation set; raise Unavailable when its data is missing."""
    photos = evaldata / "photos"
    root = evaldata / "video" / "parkour" if name == "parkour" else photos
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        need = " (synthetic sets are rendered from the photos)" if name.startswith("syn") else ""
        raise Unavailable(f"{root} not found{need}; pass --evaldata DIR")
    if name == "photos":
        return _load_folder(name, root, synthetic.photo_stems(root)[:limit], False)
    if name == "parkour":
        stems = sorted(p.stem for p in (root / "images").glob("*.jpg")
                       if (root / "masks" / f"{p.stem}.png").exists())
        return _load_folder(name, root, stems[:limit], True)
    n = min(limit, frames) if limit else frames
    rendered, truths = synthetic.GENERATORS[name.split("-", 1)[1]](photos, n, seed)
    return EvalSet(name, True, [f"{i:05d}" for i in range(n)], rendered, truths)


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


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """One plain-text table: set, method, n, IoU, BF, MAE, flicker, flip-rate, ms/frame."""
    head = (f"{'set':<18}{'method':<24}{'n':>4}{'IoU':>8}{'BF':>8}{'MAE':>8}"
            f"{'flicker':>11}{'flip-rate':>11}{'ms/frame':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['set']:<18}{r['method']:<24}{r['n']:>4}{_fmt(r['iou'], '.3f'):>8}"
            f"{_fmt(r['bf'], '.3f'):>8}{_fmt(r['mae'], '.4f'):>8}"
            f"{_fmt(r['flicker'], '+.5f'):>11}{_fmt(r['flip_rate'], '.4f'):>11}"
            f"{_fmt(r['ms_per_frame'], '.1f'):>10}")
    return "\n".join(lines)


def _none_if_nan(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(path: Path, report: dict) -> None:
    """Write the report; NaN (not applicable) becomes null."""
    results = [{k: _none_if_nan(v) for k, v in r.items()} for r in report["results"]]
    Path(path).write_text(json.dumps({**report, "results": results}, indent=2) + "\n")


def contact_sheet(evaldata: Path, out: Path, count: int = 4) -> None:
    """PNG grid: per photo, the upper body and its cut-out on five backgrounds."""
    root = evaldata / "photos"
    if not (root / "images").is_dir():
        print(f"no contact sheet: {root} not found", file=sys.stderr)
        return
    try:
        method, label = make_method("backdrop-balanced"), "backdrop-balanced"
    except Unavailable as e:
        print(f"contact sheet: {e}; using raw-general", file=sys.stderr)
        method, label = make_method("raw-general"), "raw-general"
    rows = []
    try:
        for stem in synthetic.photo_stems(root)[:count]:
            rgb, truth = synthetic.load_pair(root / "images", root / "masks", stem)
            method.reset()
            rows.append(_sheet_row(rgb, truth, np.clip(method.matte(rgb), 0, 1)))
    finally:
        method.close()
    cv2.imwrite(str(out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"contact sheet ({label}) written to {out}")


def _sheet_row(rgb: np.ndarray, truth: np.ndarray, alpha: np.ndarray,
               cell: tuple[int, int] = (300, 360)) -> np.ndarray:
    """Head and torso of one photo: original, then composites on each colour."""
    ys, xs = np.nonzero(truth >= 128)
    y0, y1 = max(ys.min() - 10, 0), ys.min() + (ys.max() - ys.min()) // 2
    x0, x1 = max(xs.min() - 20, 0), xs.max() + 20
    frame, a = rgb[y0:y1, x0:x1].astype(np.float32), alpha[y0:y1, x0:x1, None]
    tiles = [rgb[y0:y1, x0:x1]]
    for colour in SHEET_COLOURS.values():
        tiles.append((frame * a + np.float32(colour) * (1 - a) + 0.5).astype(np.uint8))
    return np.hstack([_fit(t, cell) for t in tiles])


def _fit(tile: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """Scale ``tile`` into a (w, h) cell, centred on a dark-blue pad."""
    scale = min(cell[0] / tile.shape[1], cell[1] / tile.shape[0])
    w, h = max(1, round(tile.shape[1] * scale)), max(1, round(tile.shape[0] * scale))
    out = np.full((cell[1], cell[0], 3), (20, 20, 60), np.uint8)
    top, left = (cell[1] - h) // 2, (cell[0] - w) // 2
    out[top:top + h, left:left + w] = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evaldata", type=Path, default=DEFAULT_EVALDATA,
                   help=f"evaluation data root (default: {DEFAULT_EVALDATA})")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), metavar="SET",
                   help=f"sets to run: {', '.join(SETS)} (default: all)")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   metavar="METHOD", help=f"methods: {', '.join(METHODS)} (default: all)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N frames/images per set")
    p.add_argument("--synthetic-frames", type=int, default=60, metavar="N",
                   help="frames per synthetic sequence (default: 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
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


def _evaluate(evalset: EvalSet, methods: dict, report: dict, save: Path | None) -> None:
    """Run every method on one set and append its row to the report."""
    for name, method in methods.items():
        preds, ms = predict(method, evalset)
        scores = score(evalset, preds)
        if "flip_rate_truth" in scores:
            report["truth_flip_rate"][evalset.name] = scores.pop("flip_rate_truth")
        report["results"].append({"set": evalset.name, "method": name, "n": len(preds),
                                  **scores, "ms_per_frame": ms})
        print(f"  {evalset.name} / {name}: {len(preds)} frames, {ms:.1f} ms/frame",
              file=sys.stderr)
        if save:
            (save / evalset.name / name).mkdir(parents=True, exist_ok=True)
            for stem, pred in zip(evalset.stems, preds):
                cv2.imwrite(str(save / evalset.name / name / f"{stem}.png"), pred)


def run(args: argparse.Namespace) -> dict:
    """Evaluate every available (set, method) pair; return the report."""
    report = {"evaldata": str(args.evaldata), "limit": args.limit, "results": [],
              "skipped_sets": {}, "skipped_methods": {}, "truth_flip_rate": {}}
    methods = _open_methods(args.methods, report["skipped_methods"])
    try:
        for name in args.sets if methods else []:
            try:
                evalset = load_set(name, args.evaldata, args.limit,
                                   args.synthetic_frames, args.seed)
            except Unavailable as e:
                report["skipped_sets"][name] = str(e)
                print(f"skipping set {name}: {e}", file=sys.stderr)
                continue
            _evaluate(evalset, methods, report, args.save)
    finally:
        for method in methods.values():
            method.close()
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # quieten MediaPipe's C++ logging
    warnings.filterwarnings("ignore", message="MessageFactory class is deprecated")
    start = time.perf_counter()
    report = run(args)
    report["elapsed_s"] = round(time.perf_counter() - start, 2)
    if report["results"]:
        print(format_table(report["results"]))
        for set_name, rate in report["truth_flip_rate"].items():
            print(f"truth flip-rate of {set_name}: {rate:.4f}")
    else:
        print("nothing evaluated: no set or no method available (see messages above)")
    if args.contact_sheet:
        contact_sheet(args.evaldata, args.contact_sheet)
    if args.json:
        write_json(args.json, report)
    print(f"done in {report['elapsed_s']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
