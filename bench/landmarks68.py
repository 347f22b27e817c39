"""68-point landmarks: calibrate the detector-box mapping, measure alignment and cost.

    .venv/bin/python -P bench/landmarks68.py [DEV_DIR] [--limit N] [--min-size PX]

(`-P`: bench/queue.py would otherwise shadow the standard library's `queue`.)

On the WIDER FACE dev photos (default ../shared/eval/widerface-dev):

1. The default detector finds faces (default options); faces narrower than
   `--min-size` pixels are left out (their 68 points are not meaningful).
2. dlib's HOG detector (what the 68-point predictor was trained on) runs on the same
   photos, upsampled once; each HOG box is matched to the detector box of highest
   IoU (>= 0.3). The box mapping is fitted as medians over the matches: centre shift
   in box widths / heights, side in box widths.
3. Alignment error, per face: the mean distance between the five points derived from
   the 68 (eye centres, nose tip 30, mouth corners 48/54) and the detector's five
   landmarks, divided by the detector's inter-ocular distance. Reported as mean and
   median over faces for the raw detector box, the fitted mapping, the mapping in
   `facelens.adapters.detection.dense_landmarks.PREDICTOR_BOX`, and (matched faces only) the
   HOG box itself.
4. Cost: milliseconds per face of the predictor call (median and mean), model load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facelens.adapters.detection.dense_landmarks import (
    IDENTITY,
    PREDICTOR_BOX,
    BoxMapping,
    DenseLandmarker,
    five_from_68,
)
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.images import PillowDecoder
from facelens.core.domain import LANDMARK_NAMES, DecodedImage, DetectOptions, Face

Box = tuple[float, float, float, float]


@dataclass
class Sample:
    image: DecodedImage
    box: Box
    five: npt.NDArray[np.float64]
    hog: Box | None


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def face_box(face: Face) -> Box:
    return (face.x, face.y, face.x + face.width, face.y + face.height)


def collect(root: Path, limit: int | None, min_size: float) -> list[Sample]:
    import dlib  # type: ignore[import-untyped]

    hog = dlib.get_frontal_face_detector()
    detector = build_detector()
    decoder = PillowDecoder()
    paths = sorted((root / "WIDER_val" / "images").glob("*/*.jpg"))[:limit]
    samples: list[Sample] = []
    for path in paths:
        image = decoder.decode(path.read_bytes())
        faces = [f for f in detector.detect(image, DetectOptions()) if f.width >= min_size]
        if not faces:
            continue
        hog_boxes: list[Box] = [
            (r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in hog(image.pixels, 1)
        ]
        for face in faces:
            box = face_box(face)
            best = max(hog_boxes, key=lambda h, b=box: iou(b, h), default=None)
            matched = best if best is not None and iou(box, best) >= 0.3 else None
            five = np.array([face.landmarks[n] for n in LANDMARK_NAMES], dtype=np.float64)
            samples.append(Sample(image, box, five, matched))
    return samples


def fit(samples: list[Sample]) -> BoxMapping:
    dx, dy, side = [], [], []
    for s in samples:
        if s.hog is None:
            continue
        x1, y1, x2, y2 = s.box
        w, h = x2 - x1, y2 - y1
        hx1, hy1, hx2, hy2 = s.hog
        dx.append(((hx1 + hx2) / 2 - (x1 + x2) / 2) / w)
        dy.append(((hy1 + hy2) / 2 - (y1 + y2) / 2) / h)
        side.append((hx2 - hx1) / w)
    return BoxMapping(
        round(statistics.median(dx), 3),
        round(statistics.median(dy), 3),
        round(statistics.median(side), 3),
    )


def error(points68: npt.NDArray[np.float64], five: npt.NDArray[np.float64]) -> float:
    iod = float(np.linalg.norm(five[1] - five[0]))
    return float(np.linalg.norm(five_from_68(points68) - five, axis=1).mean()) / max(iod, 1e-6)


def errors(
    marker: DenseLandmarker, samples: list[Sample], mapping: BoxMapping, use_hog: bool = False
) -> list[float]:
    marker.mapping = IDENTITY if use_hog else mapping
    out = []
    for s in samples:
        box = s.hog if use_hog else s.box
        if box is None:
            continue
        out.append(error(marker.for_image(s.image, box), s.five))
    return out


def summary(values: list[float]) -> str:
    below = float(np.mean(np.asarray(values) < 0.2))
    return (
        f"median {statistics.median(values):.3f}  mean {statistics.fmean(values):.3f}  "
        f"< 0.2: {below:.1%}"
    )


def main() -> None:
    default_dev = Path(__file__).resolve().parents[1] / ".." / "shared" / "eval" / "widerface-dev"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dev", nargs="?", type=Path, default=default_dev)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min-size", type=float, default=40.0)
    args = parser.parse_args()

    marker = DenseLandmarker()
    started = time.perf_counter()
    marker.load()
    load_s = time.perf_counter() - started
    samples = collect(args.dev.resolve(), args.limit, args.min_size)
    matched = [s for s in samples if s.hog is not None]
    fitted = fit(samples)
    print(f"faces >= {args.min_size:.0f} px: {len(samples)}; matched to a HOG box: {len(matched)}")
    print(f"fitted mapping: {fitted}")
    print(f"PREDICTOR_BOX:  {PREDICTOR_BOX}")
    mappings = {"raw box": IDENTITY, "fitted": fitted, "PREDICTOR_BOX": PREDICTOR_BOX}
    for label, mapping in mappings.items():
        result = summary(errors(marker, samples, mapping))
        print(f"error / inter-ocular, all faces, {label:14s} {result}")
    for label in ("raw box", "PREDICTOR_BOX"):
        result = summary(errors(marker, matched, mappings[label]))
        print(f"error / inter-ocular, matched,   {label:14s} {result}")
    result = summary(errors(marker, matched, IDENTITY, use_hog=True))
    print(f"error / inter-ocular, matched,   {'HOG box':14s} {result}")

    marker.mapping = PREDICTOR_BOX
    per_face = []
    for s in samples:
        t = time.perf_counter()
        marker.for_image(s.image, s.box)
        per_face.append((time.perf_counter() - t) * 1000)
    print(f"model load {load_s:.2f} s (sha256 + dlib parse)")
    print(
        f"ms per face over {len(per_face)} faces: median {statistics.median(per_face):.2f}, "
        f"mean {statistics.fmean(per_face):.2f}, p90 {np.percentile(per_face, 90):.2f}"
    )


if __name__ == "__main__":
    main()
