"""`facelens detect` and `facelens eval`: the detector on local files.

Plain functions with typer annotations; the CLI module registers them. Everything
heavy (model loading, dataset reading) happens inside the call, never at import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.detection.modes import DEFAULT_MODE, MODES
from facelens.adapters.detection.weights import DEFAULT_MODEL
from facelens.adapters.drawing import save_annotated
from facelens.adapters.images import PillowDecoder, load_image_file
from facelens.adapters.widerface import (
    WiderDataset,
    faces_to_rows,
    load_widerface,
    write_predictions,
)
from facelens.application.options import read_detect_options
from facelens.core.domain import DetectOptions
from facelens.core.errors import FacelensError, InvalidParameter, ModelError, TaskFailure
from facelens.core.evaluation import SETTINGS, evaluate_widerface, timing_stats
from facelens.core.video import Sampling
from facelens.entrypoints.bootstrap import option_rules
from facelens.entrypoints.cli.video_cmd import is_video, video_entry

EVAL_THRESHOLD = 0.05
"""Score floor for evaluation: low, so the protocol's threshold sweep sees the whole
precision/recall curve (AP changes by < 0.001 below it on widerface-dev)."""

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        envvar="FACELENS_MODEL",
        help="Registered model (centerface, retinaface-mnet025) or a path to an .onnx file.",
    ),
]
ThreadsOption = Annotated[int, typer.Option("--threads", min=1, help="Inference threads.")]
ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode",
        envvar="FACELENS_DETECT_MODE",
        help=f"Speed/accuracy preset: {', '.join(MODES)} (default {DEFAULT_MODE} "
        "unless --model names another model).",
    ),
]

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        envvar="FACELENS_DETECT_BACKEND",
        help="Inference backend: auto (OpenVINO when installed), onnxruntime, openvino.",
    ),
]


def _load_detector(
    model: str, threads: int, console: Console, mode: str | None, backend: str | None
) -> FaceDetector:
    try:
        return build_detector(model, threads=threads, mode=mode, backend=backend)
    except (ModelError, ValueError) as exc:
        console.print(f"[red]model error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _options(
    threshold: float | None,
    min_face_size: int | None,
    max_faces: int | None,
    landmarks: str,
    attributes: str | None,
) -> DetectOptions:
    """The flags read by the same declaration and rules as the API's options."""
    given = {
        "score_threshold": threshold,
        "min_face_size": min_face_size,
        "max_faces": max_faces,
        "landmarks": landmarks,
        "attributes": [a.strip() for a in (attributes or "").split(",") if a.strip()],
    }
    try:
        return read_detect_options(
            {k: v for k, v in given.items() if v is not None}, option_rules()
        )
    except InvalidParameter as exc:
        raise typer.BadParameter(str(exc)) from None


def _draw_path(draw: Path, index: int, count: int) -> Path:
    """`--draw out.jpg` for one image; `out-1.jpg`, `out-2.jpg`... for several."""
    return draw if count == 1 else draw.with_name(f"{draw.stem}-{index}{draw.suffix}")


def detect(
    images: Annotated[list[Path], typer.Argument(help="Image or video files.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    draw: Annotated[
        Path | None,
        typer.Option("--draw", metavar="OUT.jpg", help="Write an annotated copy (several: OUT-N)."),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    threshold: Annotated[
        float | None, typer.Option(help="Score threshold, 0..1 (default: model's).")
    ] = None,
    min_face_size: Annotated[
        int | None, typer.Option(help="Smallest face in pixels (small values upscale).")
    ] = None,
    max_faces: Annotated[int | None, typer.Option(help="Keep the N largest faces.")] = None,
    threads: ThreadsOption = 2,
    mode: ModeOption = None,
    backend: BackendOption = None,
    attributes: Annotated[
        str | None,
        typer.Option("--attributes", metavar="pose,quality", help="Per-face extras (JSON output)."),
    ] = None,
    landmarks: Annotated[
        str,
        typer.Option(
            "--landmarks",
            metavar="5|68|none",
            help="5 named points, 68 (adds landmarks_68, dlib's iBUG layout) or none.",
        ),
    ] = "5",
    interval_ms: Annotated[
        int, typer.Option("--interval-ms", min=0, help="Videos: a frame every N ms (0: all).")
    ] = 1000,
    max_frames: Annotated[
        int, typer.Option("--max-frames", min=1, help="Videos: at most N analysed frames.")
    ] = 3600,
) -> None:
    """Detect faces in local image files: a table per image, or JSON with --json.

    A video (MP4/MOV/WebM/MKV, animated GIF/WebP): faces per frame sampled every
    --interval-ms, with track ids, then the tracks; --draw out.mp4 writes the clip.

    --draw writes a copy with each face's box, score, landmarks (68 points too with
    --landmarks 68) and head pose (axes from the nose, yaw/pitch/roll under the box).
    """
    out = Console()
    err = Console(stderr=True)
    options = _options(threshold, min_face_size, max_faces, landmarks, attributes)
    detector = _load_detector(model, threads, err, mode, backend)
    decoder = PillowDecoder()
    results: list[dict[str, object]] = []
    failures = 0
    for index, path in enumerate(images, start=1):
        if is_video(path):  # faces per sampled frame, tracked (entrypoints/cli/video_cmd.py)
            sampling = Sampling(interval_ms=interval_ms, max_frames=max_frames)
            target = None if draw is None else _draw_path(draw, index, len(images))
            entry, failed = video_entry(
                path, detector, options, sampling, target, json_out=json_out, out=out, err=err
            )
            results.append(entry)
            failures += failed
            continue
        try:
            image = load_image_file(path, decoder, options.min_face_size)
        except (OSError, TaskFailure) as exc:
            failures += 1
            code = exc.error_code if isinstance(exc, TaskFailure) else "IMAGE_READ_FAILED"
            results.append({"image": str(path), "error_code": code, "error_info": str(exc)})
            err.print(f"[red]{path}:[/red] {exc}")
            continue
        started = time.perf_counter()
        faces = detector.detect(image, options)
        elapsed_ms = (time.perf_counter() - started) * 1000
        results.append(
            {
                "image": str(path),
                "width": image.width,
                "height": image.height,
                "result_list": [face.to_json() for face in faces],
            }
        )
        if draw is not None:
            target = save_annotated(image, faces, _draw_path(draw, index, len(images)))
            err.print(f"annotated image written to {target}")
        if not json_out:
            table = Table(
                title=f"{path} ({image.width}x{image.height}, {len(faces)} faces, "
                f"{elapsed_ms:.0f} ms, {detector.name})"
            )
            for column in ("#", "x", "y", "width", "height", "score", "left eye", "right eye"):
                table.add_column(column, justify="right")
            for n, face in enumerate(faces, start=1):
                marks = face.landmarks
                eyes = [
                    f"{marks[k][0]:.0f},{marks[k][1]:.0f}" if k in marks else "-"
                    for k in ("left_eye", "right_eye")
                ]
                table.add_row(
                    str(n),
                    f"{face.x:.0f}",
                    f"{face.y:.0f}",
                    f"{face.width:.0f}",
                    f"{face.height:.0f}",
                    f"{face.score:.3f}",
                    *eyes,
                )
            out.print(table)
    if json_out:
        print(json.dumps(results, indent=2))
    if failures:
        raise typer.Exit(1)


@dataclass(frozen=True, slots=True)
class EvalRun:
    """Predictions (key -> x, y, w, h, score rows) and seconds per image (decode included)."""

    predictions: dict[str, npt.NDArray[np.float64]]
    seconds: list[float]


def run_dataset(
    dataset: WiderDataset,
    detector: FaceDetector,
    decoder: PillowDecoder,
    limit: int | None = None,
    out: Path | None = None,
    on_image: Callable[[str], None] | None = None,
) -> EvalRun:
    """Decode and detect every image (the first `limit`), timing each end to end."""
    options = DetectOptions(score_threshold=EVAL_THRESHOLD, landmarks="none")
    predictions: dict[str, npt.NDArray[np.float64]] = {}
    seconds: list[float] = []
    for item in dataset.images[:limit]:
        data = item.path.read_bytes()
        started = time.perf_counter()
        image = decoder.decode(data)
        rows = faces_to_rows(detector.detect(image, options))
        seconds.append(time.perf_counter() - started)
        predictions[item.key] = rows
        if out is not None:
            write_predictions(out, item.key, rows)
        if on_image is not None:
            on_image(item.key)
    return EvalRun(predictions, seconds)


def evaluate(
    dataset_dir: Annotated[
        Path, typer.Argument(help="WIDER FACE val folder (WIDER_val/images + ground_truth).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write predictions (WIDER submission format).")
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images.")] = None,
    threads: ThreadsOption = 2,
    mode: ModeOption = None,
    backend: BackendOption = None,
) -> None:
    """AP easy/medium/hard (official WIDER FACE protocol) and speed on a local dataset."""
    console = Console(stderr=True)
    try:
        dataset = load_widerface(dataset_dir)
    except (FileNotFoundError, OSError, ValueError) as exc:
        console.print(f"[red]dataset error:[/red] {exc}")
        raise typer.Exit(2) from exc
    detector = _load_detector(model, threads, console, mode, backend)
    total = len(dataset.images[:limit])
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"{detector.name}", total=total)
            run = run_dataset(
                dataset,
                detector,
                PillowDecoder(),
                limit=limit,
                out=out,
                on_image=lambda _key: progress.advance(task),
            )
    except FacelensError as exc:
        console.print(f"[red]evaluation failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    truth = [g for g in dataset.ground_truth if g.key in run.predictions]
    ap = evaluate_widerface(run.predictions, truth)
    stats = timing_stats(run.seconds)
    table = Table(title=f"{detector.name} on {dataset_dir} ({len(truth)} images)")
    for setting in SETTINGS:
        table.add_column(f"AP {setting}", justify="right")
    table.add_column("median ms/img", justify="right")
    table.add_column("p90 ms/img", justify="right")
    table.add_column("images/s", justify="right")
    table.add_row(
        *(f"{ap[s]:.4f}" for s in SETTINGS),
        f"{stats.median_ms:.1f}",
        f"{stats.p90_ms:.1f}",
        f"{stats.images_per_s:.2f}",
    )
    Console().print(table)
    if out is not None:
        console.print(f"predictions written to {out}")
