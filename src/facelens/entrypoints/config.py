"""Settings: every knob is a `FACELENS_*` environment variable with a help line.

`load_settings(environ)` is a factory (nothing is read at import), so tests build
settings from a plain dict and the CLI from `os.environ`. pydantic-settings reads the
variables (prefix, case, empty values) from that mapping, never from the process
environment behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from facelens.adapters.detection.mode_names import MODE_NAMES
from facelens.core.retry import parse_schedule

ENV_PREFIX = "FACELENS_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: `load_settings` brings the environment it was handed,
        so `Settings(...)` never picks up the process's variables (or a .env file)."""
        return (init_settings,)

    data_dir: Annotated[Path, Field(description="Directory holding the SQLite database.")] = Path(
        "data"
    )
    database_url: Annotated[
        str,
        Field(
            description="SQLAlchemy URL; default sqlite+aiosqlite:///<data dir>/facelens.db. "
            "Use postgresql+asyncpg://user@host/db for several nodes."
        ),
    ] = ""
    host: Annotated[str, Field(description="Address `serve` binds to.")] = "127.0.0.1"
    port: Annotated[int, Field(description="Port `serve` listens on.", ge=0, le=65535)] = 8000
    log_level: Annotated[str, Field(description="debug, info, warning or error.")] = "info"
    log_format: Annotated[
        Literal["text", "json"],
        Field(description="text, or json: one JSON object per line (for log shippers)."),
    ] = "text"
    metrics_token: Annotated[
        str,
        Field(description="When set, /metrics wants `Authorization: Bearer <token>`."),
    ] = ""
    metrics_port: Annotated[
        int | None,
        Field(description="`facelens worker`: serve /metrics on this port (empty = off).", ge=0),
    ] = None
    metrics_host: Annotated[
        str, Field(description="`facelens worker`: address its /metrics binds to.")
    ] = "127.0.0.1"
    worker_live_seconds: Annotated[
        float,
        Field(
            description="A worker whose last heartbeat is older than this is not live "
            "(`facelens workers`, /readyz of an API-only node, facelens_workers_live).",
            gt=0,
        ),
    ] = 30.0
    heartbeat_seconds: Annotated[
        float, Field(description="Seconds between a worker's heartbeats.", gt=0)
    ] = 5.0
    retention_days: Annotated[
        float,
        Field(
            description="Finished tasks, their callbacks and results are deleted this many "
            "days after they ended, in the background by worker processes (0 = keep "
            "everything). The ledger is kept.",
            ge=0,
        ),
    ] = 30.0

    model: Annotated[
        str,
        Field(
            description="Detector model: a registry name (centerface, retinaface-mnet025) or a "
            "path to an .onnx; anything but centerface replaces the mode presets."
        ),
    ] = "centerface"
    detect_mode: Annotated[
        str,
        Field(description="Accuracy mode when no request names one: fast, balanced or accurate."),
    ] = "balanced"
    detect_backend: Annotated[
        str,
        Field(
            description="Inference backend: auto (OpenVINO when installed), onnxruntime, openvino."
        ),
    ] = "auto"
    detect_threads: Annotated[
        int, Field(description="ONNX Runtime intra-op threads per inference.", ge=1)
    ] = 2
    score_threshold: Annotated[
        float | None,
        Field(
            description="Default face score threshold (empty = the model's default).", ge=0, le=1
        ),
    ] = None

    worker_concurrency: Annotated[
        int,
        Field(
            description="Tasks a worker analyses at once (downloads overlap); while tasks "
            "are fast it may hold up to twice that.",
            ge=1,
        ),
    ] = 4
    inference_parallelism: Annotated[
        int, Field(description="Inferences run at once per process.", ge=1)
    ] = 1
    lease_seconds: Annotated[
        float, Field(description="Task and delivery lease; renewed while work runs.", gt=0)
    ] = 60.0
    poll_interval: Annotated[
        float, Field(description="Seconds between queue polls when idle.", gt=0)
    ] = 0.5
    listen_notify: Annotated[
        bool,
        Field(
            description="PostgreSQL: submissions NOTIFY and idle workers LISTEN, so work "
            "starts at once on any node (polling stays as the fallback). Ignored on SQLite."
        ),
    ] = True
    refund_failed: Annotated[
        bool, Field(description="Refund the credit of a task whose image could not be analysed.")
    ] = True
    stop_grace_seconds: Annotated[
        float,
        Field(
            description="On SIGTERM, seconds a worker lets its in-flight tasks finish before "
            "handing the rest back to the queue.",
            ge=0,
        ),
    ] = 30.0

    retry_schedule: Annotated[
        str,
        Field(description="Callback retry delays in seconds after each failed attempt."),
    ] = "5,30,120,300"
    callback_timeout: Annotated[
        float, Field(description="Seconds a callback POST may take.", gt=0)
    ] = 10.0
    dispatcher_concurrency: Annotated[
        int, Field(description="Callbacks sent at once per process.", ge=1)
    ] = 16

    max_tasks_per_request: Annotated[
        int, Field(description="Most tasks one submission may hold.", ge=1)
    ] = 100
    max_request_bytes: Annotated[
        int, Field(description="Largest accepted request body in bytes.", ge=1024)
    ] = 1_000_000
    max_image_bytes: Annotated[int, Field(description="Largest image download in bytes.", ge=1)] = (
        20_000_000
    )
    max_image_pixels: Annotated[
        int, Field(description="Largest image in pixels, checked before decoding.", ge=1)
    ] = 50_000_000
    fetch_connect_timeout: Annotated[
        float, Field(description="Seconds to connect to an image host.", gt=0)
    ] = 5.0
    fetch_read_timeout: Annotated[
        float, Field(description="Seconds an image host may stay silent.", gt=0)
    ] = 10.0
    fetch_total_timeout: Annotated[
        float, Field(description="Seconds one image download may take in all.", gt=0)
    ] = 30.0
    max_concurrent_fetches: Annotated[
        int, Field(description="Image downloads at once per process.", ge=1)
    ] = 8
    allow_private_urls: Annotated[
        bool,
        Field(description="Allow loopback/private image and callback addresses (tests, demos)."),
    ] = False
    url_allowlist: Annotated[
        str,
        Field(description="Comma-separated hosts or CIDRs allowed even if private."),
    ] = ""

    rate_limit_rps: Annotated[
        float,
        Field(
            description="Authenticated requests per second per API key, per process "
            "(burst of one second; 0 = no limit).",
            ge=0,
        ),
    ] = 20.0
    rate_limit_tasks_per_minute: Annotated[
        int,
        Field(
            description="Tasks one API key may submit per minute, per process (0 = no limit).",
            ge=0,
        ),
    ] = 6000
    auth_failures_per_minute: Annotated[
        int,
        Field(
            description="Failed authentications per client address per minute, per process, "
            "before it gets 429 (0 = no limit).",
            ge=0,
        ),
    ] = 30

    default_account_credits: Annotated[
        int, Field(description="Credits of the account created on an empty database.", ge=0)
    ] = 1000

    max_video_bytes: Annotated[
        int,
        Field(
            description="Largest video download in bytes (streamed to a file, never in memory).",
            ge=1,
        ),
    ] = 500_000_000
    max_video_seconds: Annotated[
        int,
        Field(description="Longest video in seconds, checked before any frame is decoded.", ge=1),
    ] = 3600
    max_video_frames: Annotated[
        int,
        Field(
            description="Largest max_frames a video task may ask for (the credits it reserves).",
            ge=1,
        ),
    ] = 3600
    video_segment_seconds: Annotated[
        float,
        Field(
            description="Long videos are split into segments of this many seconds, each "
            "analysed by any worker.",
            gt=0,
        ),
    ] = 60.0
    video_download_timeout: Annotated[
        float, Field(description="Seconds one video download may take in all.", gt=0)
    ] = 600.0
    video_decode_memory_mb: Annotated[
        int, Field(description="Address-space limit of a video decoding child process, MB.", ge=256)
    ] = 3072
    video_decode_cpu_seconds: Annotated[
        int,
        Field(description="CPU-time limit of one video decoding child (a segment), seconds.", ge=1),
    ] = 900
    video_decode_stall_seconds: Annotated[
        float,
        Field(
            description="Seconds a video decoding child may stay silent before it is killed.",
            gt=0,
        ),
    ] = 60.0

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("detect_mode")
    @classmethod
    def _check_mode(cls, value: str) -> str:
        """A typo here would otherwise surface as a traceback from the detector's
        start-up (`model` is open: any .onnx path). The names come from a module of
        their own, so commands that never detect do not load NumPy for them."""
        if value not in MODE_NAMES:
            raise ValueError(f"unknown mode; known: {', '.join(MODE_NAMES)}")
        return value

    @field_validator("detect_backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        if value not in ("auto", "onnxruntime", "openvino"):
            raise ValueError("unknown backend; known: auto, onnxruntime, openvino")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'facelens.db').resolve()}"

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)

    @property
    def allowlist(self) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.url_allowlist.split(",") if item.strip())


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of
    `os.environ` (as its dotenv source does over a file)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            key if self.case_sensitive else key.lower(): value
            for key, value in self._environ.items()
            if not (self.env_ignore_empty and value == "")
        }


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from `environ` (only `FACELENS_*` keys; empty means unset), then `overrides`."""
    values: dict[str, Any] = _EnvironSource(environ or {})()
    return Settings(**{**values, **overrides})


def settings_help() -> str:
    """One line per setting, for `facelens serve --help`."""
    lines = []
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "" if default in ("", None) else f" [default: {default}]"
        lines.append(f"{ENV_PREFIX}{name.upper()}: {info.description}{shown}")
    return "\n".join(lines)
