"""The SSRF rules, pure: address ranges, numeric spellings, allow-lists, URL forms."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facelens.core.netpolicy import (
    AddressPolicy,
    check_address,
    embedded_ipv4,
    parse_host_ip,
    validate_url,
)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


REFUSED = [
    ("127.0.0.1", "loopback address"),
    ("127.255.255.254", "loopback address"),
    ("10.0.0.1", "private address"),
    ("10.255.255.255", "private address"),
    ("172.16.0.1", "private address"),
    ("172.31.255.255", "private address"),
    ("192.168.1.1", "private address"),
    ("169.254.169.254", "link-local address"),
    ("169.254.0.1", "link-local address"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.255", "shared address space (CGNAT)"),
    ("192.0.0.8", "reserved address"),
    ("192.0.2.10", "documentation address"),
    ("198.51.100.7", "documentation address"),
    ("203.0.113.99", "documentation address"),
    ("198.18.0.1", "benchmarking address"),
    ("198.19.255.255", "benchmarking address"),
    ("240.0.0.1", "reserved address"),
    ("::1", "loopback address"),
    ("fc00::1", "private address"),
    ("fd12:3456::1", "private address"),
    ("fe80::1", "link-local address"),
    ("febf::1", "link-local address"),
    ("fec0::1", "private address"),
    ("2001:db8::1", "documentation address"),
    ("::ffff:127.0.0.1", "loopback address (IPv4-mapped IPv6)"),
    ("::ffff:7f00:1", "loopback address (IPv4-mapped IPv6)"),
    ("::ffff:10.1.2.3", "private address (IPv4-mapped IPv6)"),
    ("::ffff:169.254.169.254", "link-local address (IPv4-mapped IPv6)"),
    ("2002:7f00:1::1", "loopback address (6to4 IPv6)"),
    ("2002:c0a8:101::", "private address (6to4 IPv6)"),
    ("64:ff9b::a9fe:a9fe", "link-local address (NAT64 IPv6)"),
    ("64:ff9b::10.0.0.1", "private address (NAT64 IPv6)"),
    ("64:ff9b:1::1", "private address"),
    ("::7f00:1", "reserved address"),  # IPv4-compatible (deprecated)
    ("2001::1", "reserved address"),  # Teredo
    ("100::1", "reserved address"),
    ("4000::1", "reserved address"),  # outside global unicast 2000::/3
]

ALWAYS_REFUSED = [
    ("0.0.0.0", "unspecified address"),
    ("0.1.2.3", "unspecified address"),
    ("255.255.255.255", "broadcast address"),
    ("224.0.0.1", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("::", "unspecified address"),
    ("ff02::1", "multicast address"),
    ("::ffff:0.0.0.0", "unspecified address (IPv4-mapped IPv6)"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.15.255.255",
    "172.32.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "192.169.0.1",
    "169.253.255.255",
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_special_ranges_are_refused_with_their_reason(address: str, reason: str) -> None:
    assert check_address(ip(address)) == reason


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_allow_private_lifts_the_refusal(address: str, reason: str) -> None:
    assert check_address(ip(address), allow_private=True) is None


@pytest.mark.parametrize(("address", "reason"), ALWAYS_REFUSED)
def test_non_unicast_is_refused_even_with_allow_private(address: str, reason: str) -> None:
    assert check_address(ip(address)) == reason
    assert check_address(ip(address), allow_private=True) == reason
    everything = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    assert check_address(ip(address), allowlist=everything) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(ip(address)) is None


def test_zone_ids_do_not_hide_link_local() -> None:
    assert check_address(ipaddress.IPv6Address("fe80::1%eth0")) == "link-local address"


def test_embedded_ipv4() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:1.2.3.4")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::102:304")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2002:102:304::")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1")) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
        ("0x00000000000000000000007f.1", "127.0.0.1"),
        ("000000000000000000000000000000000177.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("4294967295", "255.255.255.255"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[0:0:0:0:0:ffff:7f00:1]", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("[FE80::1]", "fe80::1"),
    ],
)
def test_numeric_spellings_parse_like_a_browser(host: str, expected: str) -> None:
    assert parse_host_ip(host) == ip(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "images.test",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.256",
        "4294967296",
        "08",
        "0x1g",
        "1..2",
        "",
        "[not-v6]",
        "1.2.3.4x",
        "9" * 5000,
    ],
)
def test_non_addresses_parse_to_none(host: str) -> None:
    assert parse_host_ip(host) is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_spelling_agrees(value: int) -> None:
    address = ipaddress.IPv4Address(value)
    a, b, c, d = address.packed
    for spelling in (
        str(value),
        hex(value),
        "0" + oct(value)[2:],
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{hex(a)}.{oct(b).replace('o', '')}.{c}.{d}",
    ):
        assert parse_host_ip(spelling) == address, spelling


# allow-lists


def test_allowlist_by_cidr_lifts_only_that_network() -> None:
    policy = AddressPolicy(allowlist=("10.20.0.0/16", "fd00::/8"))
    assert policy.decide("internal.example", [ip("10.20.1.2")]) is None
    assert policy.decide("internal.example", [ip("fd00::5")]) is None
    assert policy.decide("internal.example", [ip("::ffff:10.20.1.2")]) is None
    assert policy.decide("internal.example", [ip("10.21.1.2")]) == "private address"
    assert policy.decide("x.example", [ip("127.0.0.1")]) == "loopback address"


def test_allowlist_by_host_name() -> None:
    policy = AddressPolicy(allowlist=("images.corp", "*.cdn.corp"))
    assert policy.decide("images.corp", [ip("10.0.0.5")]) is None
    assert policy.decide("IMAGES.CORP.", [ip("10.0.0.5")]) is None
    assert policy.decide("a.cdn.corp", [ip("192.168.0.5")]) is None
    assert policy.decide("cdn.corp", [ip("192.168.0.5")]) == "private address"
    assert policy.decide("evil.example", [ip("10.0.0.5")]) == "private address"
    assert policy.decide("images.corp.evil.example", [ip("10.0.0.5")]) == "private address"
    assert policy.decide("images.corp", [ip("0.0.0.0")]) == "unspecified address"


def test_every_resolved_address_must_pass() -> None:
    policy = AddressPolicy()
    assert policy.decide("mixed.example", [ip("8.8.8.8"), ip("127.0.0.1")]) == "loopback address"
    assert policy.decide("public.example", [ip("8.8.8.8"), ip("2606:4700::1")]) is None
    assert policy.decide("empty.example", []) == "host has no address"


def test_allow_private_policy() -> None:
    policy = AddressPolicy(allow_private=True)
    assert policy.decide("localhost", [ip("127.0.0.1"), ip("::1")]) is None
    assert policy.check_ip(ip("169.254.169.254")) is None
    assert AddressPolicy().check_ip(ip("169.254.169.254")) == "link-local address"


@pytest.mark.parametrize("entry", ["", "1.2.3.4.5", "bad host", "http://x/", "10.0.0.0/33"])
def test_bad_allowlist_entries_fail_at_construction(entry: str) -> None:
    with pytest.raises(ValueError):
        AddressPolicy(allowlist=(entry,))


def test_policy_is_a_hashable_value() -> None:
    one = AddressPolicy(allowlist=("10.0.0.0/8",))
    assert one == AddressPolicy(allowlist=("10.0.0.0/8",))
    assert hash(one) == hash(AddressPolicy(allowlist=("10.0.0.0/8",)))
    assert AddressPolicy(allowlist=["a.example"]).allowlist == ("a.example",)  # type: ignore[arg-type]


# URL forms


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.jpg",
        "https://example.com:8443/a.jpg?x=1&y=2#frag",
        "HTTPS://Example.COM/",
        "http://127.0.0.1:8080/a",
        "http://[::1]:8080/a",
        "http://images.test/",
        "http://xn--4ca0b.com/",
        "http://bücher.example/",
        "http://a_b.example/",
        "http://example.com:/",
    ],
)
def test_valid_urls_are_returned_unchanged(url: str) -> None:
    assert validate_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/a.jpg", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme must be http or https"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("example.com/a.jpg", "scheme must be http or https"),
        ("http:///a.jpg", "no host"),
        ("http://", "no host"),
        ("http:example.com", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://example.com@127.0.0.1/", "credentials"),
        ("http://example.com:0/", "port"),
        ("http://example.com:65536/", "port"),
        ("http://example.com:http/", "port"),
        ("http://[::1]x/", "port"),
        ("http://example.com/" + "a" * 2048, "longer than 2048"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\n", "whitespace"),
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http://example.com/a\ud800.jpg", "surrogate"),
        ("http://1.2.3.4.5/", "malformed IPv4"),
        ("http://256.1.1.1/", "malformed IPv4"),
        ("http://[::1/", "malformed IPv6"),
        ("http://[zz::1]/", "malformed IPv6"),
        ("http://[fe80::1%25eth0]/", "malformed IPv6"),
        ("http://exa%6dple.com/", "not allowed in a host name"),
        ("http://a..b/", "not a valid host name"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_url(url)


def test_validate_url_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        validate_url(None)  # type: ignore[arg-type]
