import pytest

from facelens.core.redact import loggable_url, scrub


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://img.example/a/b.jpg?X-Amz-Signature=abc&t=1#frag", "https://img.example/a/b.jpg"),
        ("http://user:secret@host.example:8080/cb?token=t", "http://host.example:8080/cb"),
        ("HTTPS://Img.Example/x", "https://img.example/x"),
        ("http://[::1]:9000/p?q=1", "http://[::1]:9000/p"),
        ("http://127.0.0.1", "http://127.0.0.1"),
        (
            "postgresql+asyncpg://app:pw@db.internal/facelens",
            "postgresql+asyncpg://db.internal/facelens",
        ),
        ("not a url", "<malformed url>"),
        ("http://host:99999/x", "<malformed url>"),
        ("fl_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "<malformed url>"),
    ],
)
def test_loggable_url_keeps_scheme_host_and_path_only(url: str, logged: str) -> None:
    assert loggable_url(url) == logged


def test_scrub_reduces_every_url_in_free_text() -> None:
    text = (
        "fetch of 'https://u:p@cdn.example/i.jpg?sig=SECRET' failed (see http://a.example/b?c=d), "
        "db postgresql+asyncpg://app:hunter2@db/x."
    )
    scrubbed = scrub(text)
    assert scrubbed == (
        "fetch of 'https://cdn.example/i.jpg' failed (see http://a.example/b), "
        "db postgresql+asyncpg://db/x."
    )
    for secret in ("SECRET", "u:p", "c=d", "hunter2"):
        assert secret not in scrubbed


def test_scrub_cuts_api_keys_to_their_prefix() -> None:
    key = "fl_" + "Ab3-_" * 8 + "xyz"
    scrubbed = scrub(f"bad key {key} used")
    assert key not in scrubbed
    assert scrubbed == f"bad key {key[:11]}… used"


def test_scrub_leaves_plain_text_alone() -> None:
    assert scrub("task 12: succeeded (3 faces)") == "task 12: succeeded (3 faces)"
