"""The tool-URL allow-list and the address rules, on plain data."""

from __future__ import annotations

import ipaddress

import pytest

from promptrun.workflows._destinations import (
    DestinationRefused,
    ToolPolicy,
    address_refusal,
    parse_tool_url,
)

ALLOWED = ToolPolicy(("https://tools.example.com", "http://127.0.0.1:9000/api/"))


@pytest.mark.parametrize(
    "url",
    [
        "https://tools.example.com/run",
        "https://TOOLS.example.com./x?q=1",
        "https://tools.example.com:443/",
        "http://127.0.0.1:9000/api",
        "http://127.0.0.1:9000/api/deep/er",
    ],
)
def test_urls_whose_parsed_origin_and_path_match_an_entry_are_allowed(url: str) -> None:
    ALLOWED.check_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://tools.example.com@other-host/", "user name or password"),
        ("https://tools.example.com:pw@other-host/", "user name or password"),
        ("https://tools.example.com.evil.net/", "must match a --tool-url entry"),
        ("http://tools.example.com/", "must match a --tool-url entry"),
        ("https://tools.example.com:8443/", "must match a --tool-url entry"),
        ("http://127.0.0.1:9000/apix", "must match a --tool-url entry"),
        ("http://127.0.0.1:9000/api/../admin", "must match a --tool-url entry"),
        ("http://127.0.0.1:9001/api/", "must match a --tool-url entry"),
        ("ftp://tools.example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
    ],
)
def test_prefix_tricks_and_other_origins_are_refused(url: str, why: str) -> None:
    with pytest.raises(DestinationRefused, match=why):
        ALLOWED.check_url(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "the cloud metadata service"),
        ("fd00:ec2::254", "the cloud metadata service"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.1", "a private address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1: a loopback address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped form of 169.254.169.254: the cloud metadata"),
        ("64:ff9b::7f00:1", "a NAT64 form of 127.0.0.1: a loopback address"),
        ("2002:a00:1::", "a 6to4 form of 10.0.0.1: a private address"),
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address: str, reason: str) -> None:
    found = address_refusal(ipaddress.ip_address(address))
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_any_public_allows_public_literals_and_refuses_internal_ones() -> None:
    policy = ToolPolicy(("*",))
    policy.check_url("http://93.184.216.34/x")
    policy.check_url("https://any.example.org/")  # a name: judged by its addresses later
    for url in ("http://127.0.0.1/", "http://[::ffff:7f00:1]/", "http://[fd00:ec2::254]/"):
        with pytest.raises(DestinationRefused, match="only public addresses are allowed"):
            policy.check_url(url)


def test_a_host_named_by_an_entry_may_resolve_to_any_address() -> None:
    policy = ToolPolicy(("*", "http://tools.internal:8080"))
    policy.check_address("tools.internal", 8080, ipaddress.ip_address("10.0.0.5"))
    with pytest.raises(DestinationRefused, match=r"resolves to 10\.0\.0\.5, a private address"):
        policy.check_address("other.internal", 8080, ipaddress.ip_address("10.0.0.5"))
    with pytest.raises(DestinationRefused):
        policy.check_address("tools.internal", 9090, ipaddress.ip_address("10.0.0.5"))


def test_with_no_entries_tool_nodes_call_nothing_and_the_message_says_how_to_allow() -> None:
    with pytest.raises(DestinationRefused, match=r"e.g. --tool-url https://tools.example.com"):
        ToolPolicy().check_url("https://tools.example.com/")


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("tools.example.com", "http:// or https://"),
        ("http://u:p@tools.example.com", "user name or password"),
        ("https://tools.example.com/?x=1", "no query or fragment"),
    ],
)
def test_bad_allow_list_entries_are_refused_at_start(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        ToolPolicy((entry,))


def test_a_url_parses_the_way_aiohttp_will_send_it() -> None:
    dest = parse_tool_url("HTTP://Example.COM./a/../b")
    assert (dest.scheme, dest.host, dest.port, dest.path) == ("http", "example.com", 80, "/b")
    assert parse_tool_url("http://[::1]:8/").address == ipaddress.ip_address("::1")
