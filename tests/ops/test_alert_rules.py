"""deploy/: the alert rules load and behave (promtool's own unit tests), the example
Prometheus config parses, and the dashboard and the alerts name only metrics that a
real facelens process exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from facelens.adapters.metrics import Metrics, ProcessInfo
from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store
from tests.ops.metric_names import exposed_series
from tests.ops.promtool import DEPLOY, promtool

FACELENS_SERIES = re.compile(r"\b(?:facelens|process)_[a-z0-9_]+\b")
NOT_SERIES = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring)\s*\([^)]*\)|\"[^\"]*\"")
"""Label matchers, grouping clauses and strings: label names, not series names."""


def series_named(expr: str) -> set[str]:
    return set(FACELENS_SERIES.findall(NOT_SERIES.sub(" ", expr)))


def test_alert_rules_pass_promtool_check() -> None:
    output = promtool("check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert "SUCCESS" in output


def test_alert_rules_unit_tests_pass() -> None:
    """alerts_test.yml: each alert quiet on healthy series, firing on broken ones."""
    output = promtool("test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")
    assert "SUCCESS" in output


def test_example_scrape_config_parses() -> None:
    promtool("check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml"))


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


async def test_dashboard_and_alerts_name_only_exposed_metrics(tmp_path: Path) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "facelens.json").read_text())
    dashboard_exprs = list(_dashboard_exprs(dashboard))
    assert len(dashboard_exprs) >= 15
    url = f"sqlite+aiosqlite:///{tmp_path / 'facelens.db'}"
    await upgrade(url)
    store = await open_store(url)
    try:
        metrics = Metrics(ProcessInfo(version="test", role="serve"))
        exposed = await exposed_series(metrics, store)
    finally:
        await store.close()
    assert "facelens_workers_live" in exposed  # the queue gauges were read
    for where, exprs in (("dashboard", dashboard_exprs), ("alerts", _alert_exprs())):
        named = set().union(*(series_named(expr) for expr in exprs))
        assert named, where
        unknown = named - exposed
        assert not unknown, f"{where} names metrics no process exposes: {sorted(unknown)}"


def test_dashboard_covers_what_an_operator_asks_for() -> None:
    """Throughput, latency by stage, queue depth and age, callbacks, error codes."""
    dashboard = json.loads((DEPLOY / "grafana" / "facelens.json").read_text())
    text = "\n".join(_dashboard_exprs(dashboard))
    for needle in (
        "facelens_tasks_finished_total",
        "facelens_stage_duration_seconds_bucket",
        "facelens_queue_depth",
        "facelens_oldest_queued_seconds",
        "facelens_callbacks_total",
        "by (error_code)",
    ):
        assert needle in text, needle
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_series_names_are_told_apart_from_label_names() -> None:
    expr = 'sum by (process_status) (rate(facelens_callbacks_total{outcome="failed"}[5m]))'
    assert series_named(expr) == {"facelens_callbacks_total"}
