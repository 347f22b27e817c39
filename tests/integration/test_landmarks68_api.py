"""`landmarks: "68"` through the running service: the synchronous endpoint and intake."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.integration.conftest import (
    FACE_IMAGES,
    StartService,
    assert_envelope,
    bearer,
)

DETECT = "/api/face/detect"


async def test_sync_detect_returns_68_points_per_face_and_refuses_17(
    start_service: StartService, dev_images: Path
) -> None:
    service = await start_service(credits=10)
    photo = (dev_images / FACE_IMAGES[3]).read_bytes()
    headers = bearer(service.api_key)
    body = {"image_base64": base64.b64encode(photo).decode(), "landmarks": "68"}
    answer = (await service.client.post(DETECT, json=body, headers=headers)).json()
    assert_envelope(answer, 100000)
    faces = answer["data"]["result_list"]
    assert len(faces) >= 2
    for face in faces:
        assert set(face["landmarks"]) == {
            "left_eye",
            "right_eye",
            "nose",
            "mouth_left",
            "mouth_right",
        }
        points = face["landmarks_68"]
        assert len(points) == 68 and all(len(p) == 2 for p in points)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        assert face["x"] - face["width"] * 0.2 < min(xs) < max(xs) < face["x"] + face["width"] * 1.2
        assert (
            face["y"] - face["height"] * 0.2 < min(ys) < max(ys) < face["y"] + face["height"] * 1.2
        )

    upload = await service.client.post(
        DETECT,
        files={"file": ("a.jpg", photo, "image/jpeg")},
        data={"options": json.dumps({"landmarks": "68", "max_faces": 1})},
        headers=headers,
    )
    (one,) = upload.json()["data"]["result_list"]
    assert len(one["landmarks_68"]) == 68

    plain = await service.client.post(DETECT, json={**body, "landmarks": "5"}, headers=headers)
    assert all("landmarks_68" not in f for f in plain.json()["data"]["result_list"])

    refused = await service.client.post(DETECT, json={**body, "landmarks": "17"}, headers=headers)
    assert_envelope(refused.json(), 100010)
    assert "landmarks" in refused.json()["message"]
