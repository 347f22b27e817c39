from pathlib import Path

import pytest
from pydantic import ValidationError

from facelens.entrypoints.config import Settings, load_settings, settings_help


def test_reads_only_prefixed_keys_and_ignores_empty() -> None:
    s = load_settings(
        {"FACELENS_PORT": "9001", "PORT": "1", "FACELENS_SCORE_THRESHOLD": "", "HOME": "/x"}
    )
    assert s.port == 9001
    assert s.score_threshold is None


def test_default_database_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    s = load_settings({"FACELENS_DATA_DIR": str(tmp_path)})
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'facelens.db'}"


def test_retry_schedule_default_and_override() -> None:
    assert load_settings({}).retry_delays == (5.0, 30.0, 120.0, 300.0)
    assert load_settings({"FACELENS_RETRY_SCHEDULE": "0.1,0.2"}).retry_delays == (0.1, 0.2)
    with pytest.raises(ValidationError):
        load_settings({"FACELENS_RETRY_SCHEDULE": "soon"})


def test_every_setting_has_a_help_line() -> None:
    text = settings_help()
    for name, info in Settings.model_fields.items():
        assert info.description, name
        assert f"FACELENS_{name.upper()}:" in text


def test_only_the_given_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELENS_PORT", "1234")
    assert load_settings({}).port == 8000
    assert Settings().port == 8000


def test_overrides_win_and_strings_are_parsed_per_type() -> None:
    s = load_settings(
        {"FACELENS_PORT": "9001", "FACELENS_LISTEN_NOTIFY": "false", "FACELENS_LEASE_SECONDS": "2"},
        port=9002,
    )
    assert (s.port, s.listen_notify, s.lease_seconds) == (9002, False, 2.0)
    with pytest.raises(ValidationError):
        load_settings({"FACELENS_PORT": "70000"})
