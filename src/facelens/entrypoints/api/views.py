"""Storage views -> wire JSON for the query endpoints."""

from __future__ import annotations

from facelens.core.domain import DeliveryView, JsonObject, TaskStatus, TaskView, Usage

_PROCESS_STATUS = {
    TaskStatus.QUEUED: 0,
    TaskStatus.RUNNING: 1,
    TaskStatus.SUCCEEDED: 2,
    TaskStatus.FAILED: 2,
}


def delivery_json(view: DeliveryView) -> JsonObject:
    return {
        "process_status": int(view.process_status),
        "status": str(view.status),
        "attempts": view.attempts,
        "next_attempt_time": view.next_attempt_at_ms,
        "last_http_status": view.last_http_status,
        "last_error": view.last_error,
        "redelivered_at": view.redelivered_at_ms,
        "history": [
            {
                "time": attempt.attempted_at_ms,
                "http_status": attempt.http_status,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in view.history
        ],
    }


def task_json(view: TaskView) -> JsonObject:
    """The complete-callback fields plus `status`, `deliveries` and the request."""
    result = view.result or {}
    ended = view.ended_at_ms
    started = view.started_at_ms
    cost = round((ended - started) / 1000.0, 3) if ended is not None and started else None
    return {
        "task_id": str(view.id),
        "creation_id": view.creation_id,
        "status": str(view.status),
        "process_status": _PROCESS_STATUS[view.status],
        "create_time": view.created_at_ms,
        "start_time": started,
        "end_time": ended,
        "cost_time": cost,
        "timings": view.timings,
        "result_code": result.get("result_code"),
        "error_code": result.get("error_code", ""),
        "error_info": result.get("error_info", ""),
        "result_list": result.get("result_list", []),
        "image": result.get("image"),
        "request_context": view.callback_params,
        **_video_fields(view, result),
        "options": view.options.to_json(),
        "deliveries": [delivery_json(d) for d in view.deliveries],
    }


def _video_fields(view: TaskView, result: JsonObject) -> JsonObject:
    """The task's URL under its own name; a video task adds `video`, `tracks` and, while
    it runs, `progress` {"frames_done", "frames_total"}."""
    if view.video is None:
        return {"target_image_url": view.image_url}
    fields: JsonObject = {
        "target_video_url": view.image_url,
        "video": result.get("video"),
        "tracks": result.get("tracks", []),
    }
    if view.progress is not None and view.status is TaskStatus.RUNNING:
        done, total = view.progress
        fields["progress"] = {"frames_done": done, "frames_total": total}
    return fields


def usage_json(usage: Usage) -> JsonObject:
    return {
        "tasks": dict(usage.tasks_by_status),
        "credits_charged": usage.credits_charged,
        "credits_refunded": usage.credits_refunded,
    }
