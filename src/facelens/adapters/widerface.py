"""WIDER FACE on disk: the validation layout in, submission-format predictions out.

Reads the official layout (`WIDER_val/images/<event>/<name>.jpg` plus
`ground_truth/wider_face_val.mat` and `wider_{easy,medium,hard}_val.mat`) restricted to
the images actually present, so a subset such as shared/eval/widerface-dev scores
exactly its own images. The .mat files are read with scipy; everything else about the
protocol lives in `facelens.core.evaluation.protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.io

from facelens.core.domain import Face
from facelens.core.evaluation.protocol import SETTINGS, EvalImage


@dataclass(frozen=True, slots=True)
class WiderImage:
    key: str
    """`<event>/<name>` without extension: the key of predictions and ground truth."""
    path: Path


@dataclass(frozen=True, slots=True)
class WiderDataset:
    root: Path
    images: list[WiderImage]
    ground_truth: list[EvalImage]

    @property
    def face_count(self) -> int:
        return sum(len(g.boxes) for g in self.ground_truth)


def _first_dir(root: Path, candidates: Sequence[str]) -> Path:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"{root}: none of {', '.join(candidates)} found")


def _string(cell: npt.NDArray[np.object_]) -> str:
    """The string inside a loadmat cell (arrays nested one or two deep)."""
    value = cell
    while isinstance(value, np.ndarray):
        value = value[0]
    return str(value)


def load_widerface(root: Path) -> WiderDataset:
    """The images under `root` that the official ground truth knows, with their faces.

    Raises FileNotFoundError when the layout is not there.
    """
    images_dir = _first_dir(root, ("WIDER_val/images", "images"))
    gt_dir = _first_dir(root, ("ground_truth", "eval_tools/ground_truth"))
    faces = scipy.io.loadmat(str(gt_dir / "wider_face_val.mat"))
    subsets = {
        setting: scipy.io.loadmat(str(gt_dir / f"wider_{setting}_val.mat"))["gt_list"]
        for setting in SETTINGS
    }
    images: list[WiderImage] = []
    truth: list[EvalImage] = []
    for i, event_cell in enumerate(faces["event_list"]):
        event = _string(event_cell)
        event_dir = images_dir / event
        if not event_dir.is_dir():
            continue
        files = faces["file_list"][i][0]
        boxes = faces["face_bbx_list"][i][0]
        for j in range(len(files)):
            name = _string(files[j])
            path = event_dir / f"{name}.jpg"
            if not path.is_file():
                continue
            keep = {
                setting: np.asarray(subsets[setting][i][0][j][0], dtype=np.int64).reshape(-1) - 1
                for setting in SETTINGS
            }
            key = f"{event}/{name}"
            images.append(WiderImage(key=key, path=path))
            truth.append(
                EvalImage(
                    key=key,
                    boxes=np.asarray(boxes[j][0], dtype=np.float64).reshape(-1, 4),
                    keep=keep,
                )
            )
    if not images:
        raise FileNotFoundError(f"{images_dir}: no image of the WIDER FACE ground truth found")
    return WiderDataset(root=root, images=images, ground_truth=truth)


def faces_to_rows(faces: Sequence[Face]) -> npt.NDArray[np.float64]:
    """(N, 5) x, y, w, h, score: the submission columns."""
    rows = [[f.x, f.y, f.width, f.height, f.score] for f in faces]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def write_predictions(out_dir: Path, key: str, rows: npt.NDArray[np.float64]) -> Path:
    """Write one image's detections as `<out>/<event>/<name>.txt` (submission format):
    the image name, the count, then `x y w h score` per line."""
    path = out_dir / f"{key}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [Path(key).name, str(len(rows))]
    lines += [f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} {s:.5f}" for x, y, w, h, s in rows.tolist()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_predictions(out_dir: Path) -> dict[str, npt.NDArray[np.float64]]:
    """Read a folder written by `write_predictions` (or any WIDER submission) back."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    for path in sorted(out_dir.glob("*/*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [[float(v) for v in line.split()[:5]] for line in lines[2:] if line.strip()]
        out[f"{path.parent.name}/{path.stem}"] = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return out
