"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Headers: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`). The account's secret is
`whsec_<base64 key>`, the form the reference libraries accept, so receivers can verify
with an off-the-shelf `standardwebhooks` implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"


def secret_from_bytes(raw: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded)


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The `webhook-signature` value for one message."""
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": sign(secret, msg_id, timestamp_s, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now_s: int,
    tolerance_s: int = 300,
) -> bool:
    """Receiver-side check: a matching v1 signature with a fresh timestamp."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    raw_ts = lowered.get("webhook-timestamp", "")
    if not msg_id or not raw_ts.isdigit() or abs(now_s - int(raw_ts)) > tolerance_s:
        return False
    expected = sign(secret, msg_id, int(raw_ts), body).split(",", 1)[1]
    for candidate in lowered.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False
