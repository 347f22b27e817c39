"""`facelens worker --metrics-port` on a port already taken: one clear line and exit
status 1, not a traceback."""

from __future__ import annotations

import socket

import pytest

from facelens import __version__
from facelens.adapters.metrics import Metrics, ProcessInfo
from facelens.entrypoints.config import load_settings
from facelens.entrypoints.metrics_server import serve_metrics


async def test_a_busy_metrics_port_exits_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings({"FACELENS_METRICS_PORT": str(port)})
        metrics = Metrics(ProcessInfo(version=__version__, role="worker"), worker_slots=1)
        with pytest.raises(SystemExit) as stopped:
            async with serve_metrics(metrics, settings):
                pass
    assert str(stopped.value.code).startswith(f"cannot serve /metrics on 127.0.0.1:{port}: ")
