"""The two callback bodies of a task, exactly as the hosted API sends them.

Bodies are rendered once to JSON text and stored with the delivery row, so every retry
resends the same bytes (and the same signature input) whatever happens in between.
"""

from __future__ import annotations

import json
from typing import Any

from facelens.core.domain import ClaimedTask, JsonObject, ProcessStatus, TaskOutcome


def dump_json(value: Any) -> str:
    """Compact, deterministic JSON text (the bytes that get signed and sent)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def webhook_id(task_id: int, process_status: ProcessStatus) -> str:
    """Stable per task and status, so receivers can deduplicate retries."""
    return f"msg_{task_id}_{int(process_status)}"


def start_fields(task: ClaimedTask) -> JsonObject:
    return {
        "task_id": str(task.id),
        "creation_id": task.creation_id,
        "start_time": task.started_at_ms,
        "process_status": int(ProcessStatus.STARTED),
        "request_context": task.callback_params,
    }


def start_body(task: ClaimedTask) -> str:
    """process_status 1: sent when a worker starts the task."""
    return dump_json(start_fields(task))


def outcome_fields(outcome: TaskOutcome) -> JsonObject:
    """The result part of a complete callback; also what the store keeps as `result`."""
    image: JsonObject | None = None
    if outcome.image_width is not None and outcome.image_height is not None:
        image = {"width": outcome.image_width, "height": outcome.image_height}
    return {
        "result_code": outcome.result_code,
        "error_code": outcome.error_code,
        "error_info": outcome.error_info,
        "result_list": [face.to_json() for face in outcome.faces],
        "image": image,
    }


def complete_fields(task: ClaimedTask, outcome: TaskOutcome) -> JsonObject:
    fields = start_fields(task)
    fields["process_status"] = int(ProcessStatus.COMPLETED)
    fields["end_time"] = outcome.ended_at_ms
    fields["cost_time"] = round(max(outcome.ended_at_ms - task.started_at_ms, 0) / 1000.0, 3)
    fields.update(outcome_fields(outcome))
    return fields


def complete_body(task: ClaimedTask, outcome: TaskOutcome) -> str:
    """process_status 2: sent when the task finishes, success or failure."""
    return dump_json(complete_fields(task, outcome))
