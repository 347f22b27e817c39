"""`facelens detect clip.mp4`: a real clip made from a dev photo, the real decoder
child, the real detector and tracker; `--draw` read back with PyAV."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from facelens.entrypoints.cli.main import app
from tests.support.clips import make_clip

PHOTO = "19--Couple/19_Couple_Couple_19_770.jpg"
"""Two faces side by side, both >= 40 px in every frame of the clip."""


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"FACELENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


@pytest.fixture(scope="module")
def clip(dev_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    return make_clip(dev_images / PHOTO, np.zeros((0, 4)), folder / "couple.mp4", seconds=2).path


def test_detect_a_clip_prints_tracked_faces_and_draws_it(
    cli: CliRunner, clip: Path, tmp_path: Path
) -> None:
    drawn = tmp_path / "drawn.mp4"
    result = cli.invoke(
        app, ["detect", str(clip), "--interval-ms", "500", "--json", "--draw", str(drawn)]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    (entry,) = json.loads(result.stdout)

    video = entry["video"]
    assert (video["width"], video["height"], video["codec"]) == (640, 360, "h264")
    assert video["frames_analysed"] == 4 and video["duration_ms"] == 2000
    assert entry["image"] == {"width": 640, "height": 360}
    faces = entry["result_list"]
    # 25 fps: the first frame at or after each 500 ms grid point
    assert sorted({f["timestamp_ms"] for f in faces}) == [0, 520, 1000, 1520]
    assert sorted({f["frame"] for f in faces}) == [0, 13, 25, 38]
    # the couple: the faces >= 30 px wide are the same two tracks in every frame
    big: dict[int, list[int]] = {}
    for f in faces:
        if f["width"] >= 30:
            big.setdefault(f["timestamp_ms"], []).append(f["track_id"])
    couple = sorted(big[0])
    assert len(couple) == 2 and all(sorted(ids) == couple for ids in big.values()), big
    tracks = {t["track_id"]: t for t in entry["tracks"]}
    for track_id in couple:
        track = tracks[track_id]
        assert (track["first_ms"], track["last_ms"], track["frames"]) == (0, 1520, 4)
        assert track["best"]["timestamp_ms"] in (0, 520, 1000, 1520)

    with av.open(str(drawn)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 360)
    assert [round(float(f.time or 0) * 1000) for f in frames] == [0, 520, 1000, 1520]


def test_a_broken_clip_fails_with_the_task_error_code(cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(4096))
    result = cli.invoke(app, ["detect", str(broken), "--json"])
    assert result.exit_code == 1
    (entry,) = json.loads(result.stdout)
    assert entry["file"] == str(broken)
    assert entry["error_code"].startswith("VIDEO_") or entry["error_code"] == "NO_VIDEO_STREAM"
