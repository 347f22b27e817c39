import base64
import hashlib
import hmac

from facelens.core.webhooks.signing import secret_from_bytes, sign, verify, webhook_headers

SECRET = secret_from_bytes(b"0123456789abcdef01234567")


def test_signature_matches_standard_webhooks_definition() -> None:
    body = b'{"task_id":"1"}'
    expected = hmac.new(
        b"0123456789abcdef01234567", b"msg_1_1.1700000000." + body, hashlib.sha256
    ).digest()
    assert sign(SECRET, "msg_1_1", 1700000000, body) == "v1," + base64.b64encode(expected).decode()


def test_verify_accepts_own_headers_and_rejects_tampering() -> None:
    body = b'{"a":1}'
    headers = webhook_headers(SECRET, "msg_7_2", 1700000000, body)
    assert verify(SECRET, headers, body, now_s=1700000010)
    assert not verify(SECRET, headers, b'{"a":2}', now_s=1700000010)
    assert not verify(secret_from_bytes(b"x" * 24), headers, body, now_s=1700000010)
    assert not verify(SECRET, headers, body, now_s=1700000000 + 3600)  # stale timestamp


def test_verify_accepts_any_of_several_signatures() -> None:
    body = b"{}"
    headers = webhook_headers(SECRET, "msg_1_1", 100, body)
    headers["webhook-signature"] = "v1,bogus " + headers["webhook-signature"]
    assert verify(SECRET, headers, body, now_s=100)
