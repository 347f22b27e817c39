"""API keys and webhook secrets: generated here, shown once, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from facelens.core.webhooks.signing import secret_from_bytes

KEY_PREFIX = "fl_"
PREFIX_LENGTH = 11
"""How much of a key is stored in clear to name it (`fl_` + 8 chars): enough to find
and revoke it, far too little to use it."""


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    prefix: str
    key_hash: str


def hash_key(key: str) -> str:
    """sha256 hex of the key; keys are 256-bit random, so no slow KDF is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(key=key, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key))


def new_webhook_secret() -> str:
    return secret_from_bytes(secrets.token_bytes(24))
