"""What of a URL or an error text may reach a log line.

Image and callback URLs are often signed: the query string (or userinfo) carries a
token that grants access, and a database URL carries a password. Logs are read by
more people, kept longer and shipped further than the database, so a URL is logged
as scheme://host[:port]/path only, and free text is scrubbed of anything that looks
like a URL or an API key before it is written.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,30}://[^\s'\"<>]+")
"""scheme://... up to whitespace or a quote (http, https, postgresql+asyncpg, ...)."""

_API_KEY = re.compile(r"\bfl_[A-Za-z0-9_-]{20,}")
"""An API key (`fl_` + 43 url-safe characters); its 11-character prefix may be logged."""

KEY_SHOWN = 11
"""How much of a key may appear in a log: the prefix `facelens keys revoke` accepts."""


def loggable_url(url: str) -> str:
    """scheme://host[:port]/path of `url`: no userinfo, query string or fragment.

    Anything that does not parse as a URL with a host is reduced to a placeholder
    rather than echoed, since it may be a token pasted in the wrong field.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "<malformed url>"
    host = parts.hostname
    if not parts.scheme or not host:
        return "<malformed url>"
    if ":" in host:  # IPv6 literal: brackets back
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path}"


def scrub(text: str) -> str:
    """`text` with every URL reduced by `loggable_url` and every API key cut to its
    prefix. For messages and error texts whose parts are not known in advance."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(_reduce_match, text)
    if "fl_" in text:
        text = _API_KEY.sub(lambda match: match.group(0)[:KEY_SHOWN] + "…", text)
    return text


_OPENING = {")": "(", "]": "[", "}": "{"}


def _reduce_match(match: re.Match[str]) -> str:
    raw = match.group(0)
    trailing = ""
    while raw and raw[-1] in ".,;:)]}":  # sentence punctuation after a URL
        last = raw[-1]
        opening = _OPENING.get(last)
        if opening is not None and raw.count(opening) >= raw.count(last):
            break  # "http://[::1]": the bracket belongs to the URL
        trailing = last + trailing
        raw = raw[:-1]
    return loggable_url(raw) + trailing
