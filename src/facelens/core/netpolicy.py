"""Which URLs and addresses facelens may send requests to (pure: no sockets, no DNS).

Strangers hand us URLs (images, callbacks). Without a policy they could make the
service fetch `http://169.254.169.254/` (cloud credentials), an admin panel on
localhost, or anything on the private network behind it (SSRF). The rules here are
applied by the HTTP adapter to EVERY address a host name resolves to, on every
redirect hop, and the adapter then connects to exactly the address that was checked,
so a second DNS answer (rebinding) cannot change where the request goes.

The ranges are listed explicitly rather than taken from `ipaddress.is_private` & co.,
whose meaning changed between Python patch releases; each refusal has a stable,
readable reason. Address spellings are read the way a browser (WHATWG URL) or libc's
`inet_aton` reads them, so `http://2130706433/`, `http://0x7f.1/`, `http://127.1/` are
all 127.0.0.1 here too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Refused even with allow_private or an allow-list entry: no TCP server can live at
# these (0.0.0.0 and :: even reach the local host on Linux).
_NEVER_V4: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified address"),
    (_V4("255.255.255.255/32"), "broadcast address"),
    (_V4("224.0.0.0/4"), "multicast address"),
)
_NEVER_V6: tuple[tuple[IPNetwork, str], ...] = (
    (_V6("::/128"), "unspecified address"),
    (_V6("ff00::/8"), "multicast address"),
)

# Refused unless allow_private (or allow-listed). First match gives the reason.
_SPECIAL_V4: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("127.0.0.0/8"), "loopback address"),
    (_V4("10.0.0.0/8"), "private address"),
    (_V4("172.16.0.0/12"), "private address"),
    (_V4("192.168.0.0/16"), "private address"),
    (_V4("169.254.0.0/16"), "link-local address"),
    (_V4("100.64.0.0/10"), "shared address space (CGNAT)"),
    (_V4("192.0.0.0/24"), "reserved address"),
    (_V4("192.0.2.0/24"), "documentation address"),
    (_V4("198.51.100.0/24"), "documentation address"),
    (_V4("203.0.113.0/24"), "documentation address"),
    (_V4("198.18.0.0/15"), "benchmarking address"),
    (_V4("192.88.99.0/24"), "reserved address"),
    (_V4("240.0.0.0/4"), "reserved address"),
)
_SPECIAL_V6: tuple[tuple[IPNetwork, str], ...] = (
    (_V6("::1/128"), "loopback address"),
    (_V6("fc00::/7"), "private address"),
    (_V6("fec0::/10"), "private address"),
    (_V6("fe80::/10"), "link-local address"),
    (_V6("64:ff9b:1::/48"), "private address"),
    (_V6("2001:db8::/32"), "documentation address"),
    (_V6("3fff::/20"), "documentation address"),
    (_V6("2001:2::/48"), "benchmarking address"),
    (_V6("2001::/23"), "reserved address"),
    (_V6("100::/64"), "reserved address"),
    (_V6("5f00::/16"), "reserved address"),
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_MAPPED_V6 = _V6("::ffff:0:0/96")
_NAT64_V6 = _V6("64:ff9b::/96")
_SIX_TO_FOUR_V6 = _V6("2002::/16")

_HEX_PART = re.compile(r"0[xX][0-9a-fA-F]*\Z")
_OCT_PART = re.compile(r"0[0-7]+\Z")
_DEC_PART = re.compile(r"[0-9]+\Z")
# WHATWG "forbidden host code points" plus what no DNS name contains.
_BAD_HOST_CHARS = frozenset(" \t\r\n#%/:<>?@[\\]^|*\"'`{}!$&()+,;=~")


def _v4_part(text: str) -> int | None:
    """One dot-separated part of a numeric IPv4 spelling (hex, octal or decimal)."""
    if _HEX_PART.match(text):
        return int(text[2:] or "0", 16)
    if text.startswith("0") and len(text) > 1:  # octal, as inet_aton and browsers read it
        return int(text, 8) if _OCT_PART.match(text) else None
    if _DEC_PART.match(text) and len(text) <= 20:  # longer is out of range (and slow)
        return int(text, 10)
    return None


def _strip_host(host: str) -> str:
    host = host.strip().lower()
    if host.endswith(".") and host != ".":
        host = host[:-1]
    return host


def _ends_in_number(host: str) -> bool:
    """WHATWG: a host whose last label is numeric must be an IPv4 address (or invalid)."""
    last = _strip_host(host).rsplit(".", 1)[-1]
    return bool(last) and (_DEC_PART.match(last) is not None or _HEX_PART.match(last) is not None)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_v4_part(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (5 - len(values)):
        return None
    total = last
    for index, value in enumerate(leading):
        total += value << (8 * (3 - index))
    return ipaddress.IPv4Address(total)


def parse_host_ip(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is an IP literal in any spelling, else None.

    Accepts `[v6]` (brackets optional, zone id dropped) and every IPv4 form browsers and
    `inet_aton` accept: dotted quad, decimal (`2130706433`), hex (`0x7f.1`), octal
    (`017700000001`), and short forms (`127.1`, `10.1.1`), with an optional trailing dot.
    A name like `example.com` or a malformed number like `1.2.3.256` gives None.
    """
    host = _strip_host(host)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    if not host:
        return None
    return _parse_ipv4(host)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and is routed to: mapped, NAT64, 6to4."""
    if ip in _MAPPED_V6:
        return ip.ipv4_mapped
    if ip in _NAT64_V6:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR_V6:
        return ip.sixtofour
    return None


def _first_match(ip: IPAddress, table: Sequence[tuple[IPNetwork, str]]) -> str | None:
    for network, reason in table:
        if ip.version == network.version and ip in network:
            return reason
    return None


def _classify(ip: IPAddress) -> tuple[str | None, bool]:
    """(refusal reason or None, whether even allow_private/allow-lists cannot lift it)."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))  # drop any zone id
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason, hard = _classify(inner)
            if reason is None:
                return None, False
            kind = (
                "IPv4-mapped" if ip in _MAPPED_V6 else "6to4" if ip in _SIX_TO_FOUR_V6 else "NAT64"
            )
            return f"{reason} ({kind} IPv6)", hard
        never = _first_match(ip, _NEVER_V6)
        if never:
            return never, True
        special = _first_match(ip, _SPECIAL_V6)
        if special:
            return special, False
        if ip not in _GLOBAL_UNICAST_V6:
            return "reserved address", False
        return None, False
    never = _first_match(ip, _NEVER_V4)
    if never:
        return never, True
    return _first_match(ip, _SPECIAL_V4), False


def _in_networks(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))
        candidates = [ip]
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
    return any(
        cand.version == net.version and cand in net for cand in candidates for net in networks
    )


def check_address(
    ip: IPAddress, allow_private: bool = False, allowlist: Iterable[IPNetwork] = ()
) -> str | None:
    """None when facelens may connect to `ip`, else why not (e.g. "loopback address").

    `allow_private` (tests, demos) or an allow-listed network lifts every refusal except
    unspecified, broadcast and multicast addresses, which never host a TCP server.
    """
    reason, hard = _classify(ip)
    if reason is None or hard:
        return reason
    if allow_private or _in_networks(ip, allowlist):
        return None
    return reason


def _check_host_form(host: str) -> None:
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            raise ValueError("malformed IPv6 address in URL")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("malformed IPv6 address in URL") from None
        return
    if _ends_in_number(host):
        if parse_host_ip(host) is None:
            raise ValueError("malformed IPv4 address in URL")
        return
    if any(char in _BAD_HOST_CHARS or ord(char) < 0x20 or ord(char) == 0x7F for char in host):
        raise ValueError("URL host contains characters not allowed in a host name")
    labels = _strip_host(host).split(".")
    if any(not label for label in labels) or len(host) > 253:
        raise ValueError("URL host is not a valid host name")


def _split_netloc(netloc: str) -> tuple[str, str]:
    """(host, port text) of a netloc without userinfo; brackets kept on IPv6 hosts."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            return netloc, ""
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            return host, rest  # junk after "]": reported as a bad port
        return host, rest[1:]
    host, _, port_text = netloc.partition(":")
    return host, port_text


def validate_url(url: str) -> str:
    """Check a URL's form (not its addresses) and return it unchanged.

    Raises ValueError naming the problem: too long, whitespace or control characters,
    a scheme other than http/https, no host, credentials (`user:pass@`), a bad port or a
    malformed host. The API uses this to answer 100010 at submission; the HTTP adapter
    applies it again to every URL it requests, redirects included.
    """
    if not isinstance(url, str):
        raise ValueError("URL must be a string")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("URL contains whitespace or control characters")
    if any(0xD800 <= ord(char) <= 0xDFFF for char in url):  # JSON "\ud800": no UTF-8 form
        raise ValueError("URL contains an unpaired UTF-16 surrogate")
    if "\\" in url:
        raise ValueError("URL contains a backslash")
    try:
        parts = urlsplit(url)
    except ValueError:  # urllib refuses unbalanced or invalid [brackets]
        raise ValueError("malformed IPv6 address in URL") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValueError("URL scheme must be http or https")
    netloc = parts.netloc
    if "@" in netloc:
        raise ValueError("URL must not contain credentials (user:password@)")
    host, port_text = _split_netloc(netloc)
    if not host:
        raise ValueError("URL has no host")
    if port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError("URL port must be a number from 1 to 65535")
    _check_host_form(host)
    return url


def _parse_allow_entry(entry: str) -> tuple[str | None, IPNetwork | None]:
    """An allow-list entry is a CIDR/IP (`10.0.0.0/8`, `fd00::1`) or a host name."""
    text = entry.strip()
    if not text:
        raise ValueError("empty allow-list entry")
    try:
        return None, ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    name = _strip_host(text)
    bare = name[2:] if name.startswith("*.") else name
    if not bare or _ends_in_number(bare) or any(c in _BAD_HOST_CHARS for c in bare):
        raise ValueError(f"allow-list entry {entry!r} is neither a host name nor a CIDR")
    return name, None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Where requests may go: built once from settings, shared by every request.

    `allowlist` holds host names (exact, or `*.example.com` for its subdomains) and
    IPs/CIDRs. An allow-listed host may resolve to private addresses; an allow-listed
    network may be connected to whatever name led there. Bad entries raise ValueError
    at construction, so a typo in the configuration fails at start-up, not silently.
    """

    allow_private: bool = False
    allowlist: tuple[str, ...] = ()
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = tuple(self.allowlist)
        parsed = [_parse_allow_entry(entry) for entry in entries]
        names = [name for name, _ in parsed if name is not None]
        object.__setattr__(self, "allowlist", entries)
        object.__setattr__(self, "_hosts", frozenset(n for n in names if not n.startswith("*.")))
        object.__setattr__(self, "_suffixes", tuple(n[1:] for n in names if n.startswith("*.")))
        object.__setattr__(self, "_networks", tuple(net for _, net in parsed if net is not None))

    def host_allowlisted(self, host: str) -> bool:
        """Whether the host name itself is on the allow-list."""
        name = _strip_host(host)
        return name in self._hosts or any(name.endswith(suffix) for suffix in self._suffixes)

    def check_ip(self, ip: IPAddress) -> str | None:
        """The refusal reason for one address regardless of host name, or None."""
        return check_address(ip, self.allow_private, self._networks)

    def decide(self, host: str, ips: Sequence[IPAddress]) -> str | None:
        """None when a request to `host` may go to these resolved addresses, else why not.

        Every address must pass, not just the one we will use: a name that resolves to
        one public and one private address is refused as a whole.
        """
        if not ips:
            return "host has no address"
        lifted = self.allow_private or self.host_allowlisted(host)
        for ip in ips:
            reason = check_address(ip, lifted, self._networks)
            if reason is not None:
                return reason
        return None
