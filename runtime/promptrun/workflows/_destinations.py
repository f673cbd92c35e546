"""Where the server's tool nodes may send requests: an allow-list, and addresses, not names.

A workflow is written by whoever holds a key; its tool nodes make **the server** send HTTP
requests. Left alone, that reaches what only the server can reach: its own loopback services,
the private network, the cloud's metadata service. So (pure code, no I/O here):

- ``--tool-url`` entries are origins, parsed the way the connection will be made (with yarl,
  aiohttp's own URL parser): scheme, host and port must be equal, and an entry's path, if it
  has one, must be a whole-segment prefix of the URL's path, compared after the path's dot
  segments are resolved (``/api/../admin`` is ``/admin``, ``%2e`` is ``.``). A path that
  hides a separator or a dot from that comparison (``%2f``, ``%5c``, ``\\``, ``%25`` that
  decodes to another escape) is refused, and the request goes to exactly the URL that was
  checked (:attr:`Destination.url`). Scheme and host compare in any case.
  ``http://tools.example.com@evil/``
  has the host ``evil``; ``http://tools.example.com.evil.net/`` is another host. ``*`` allows
  any host whose addresses are all public.
- A URL naming its host as an address is judged by that address. A host name is judged by every
  address it resolves to, at connection time, and the connection goes to the addresses judged
  (see :mod:`promptrun.workflows._tool_http`): one lookup, so DNS rebinding has nothing to swap.
- Refused unless an entry names the host itself: loopback, private, link-local (the metadata
  service at 169.254.169.254 among them) and unique-local (fd00:ec2::254) addresses, shared
  (carrier-grade NAT), multicast, unspecified, reserved and documentation ranges, and IPv6
  forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo), judged by that address.
- No user name or password in a URL (aiohttp would send them): credentials go in the node's
  ``headers``, which may not set ``Host`` or the framing headers either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from yarl import URL

__all__ = ["Destination", "DestinationRefused", "ToolPolicy", "address_refusal", "parse_tool_url"]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_DEFAULT_PORTS = {"http": 80, "https": 443}
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class DestinationRefused(OSError):
    """A tool URL or one of its addresses is not allowed; ``str()`` says which and why."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A tool URL as the connection sees it."""

    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress | None  # the host, when it is written as an address
    url: URL  # normalised (dot segments resolved): what the request is sent to


def _host_of(url: URL) -> str:
    return (url.host or "").lower().rstrip(".")


def parse_tool_url(text: str) -> Destination:
    """``text`` parsed as aiohttp will parse it; DestinationRefused when it cannot be a tool."""
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        raise DestinationRefused(f"{text!r} is not a URL: {exc}") from None
    if url.scheme not in _DEFAULT_PORTS:
        raise DestinationRefused(f"{text!r}: tool URLs are http:// or https://")
    if url.user is not None or url.password is not None:
        raise DestinationRefused(
            f"{text!r}: tool URLs may not carry a user name or password (user:password@host); "
            "put credentials in the node's headers"
        )
    host = _host_of(url)
    if not host:
        raise DestinationRefused(f"{text!r} has no host")
    try:
        address: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    port = url.port or _DEFAULT_PORTS[url.scheme]
    hidden = _hidden_in(url.raw_path)
    if hidden:
        raise DestinationRefused(
            f"{text!r}: its path has {hidden}, which a server may read as a path separator or "
            "a dot segment; write the path plainly"
        )
    return Destination(url.scheme, host, port, url.path or "/", address, url)


# Escapes that decode to a separator, a backslash or another escape: a path checked with them
# encoded can mean another path to the server that decodes them.
_HIDDEN = {"%2f": "an encoded '/'", "%5c": "an encoded '\\'", "%25": "an encoded '%'"}


def _hidden_in(raw_path: str) -> str | None:
    lowered = raw_path.lower()
    if "\\" in raw_path:
        return "a backslash"
    for escape, what in _HIDDEN.items():
        if escape in lowered:
            return f"{what} ({escape.upper()})"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a tool node may not reach ``address`` unless allowed by name; None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded, how = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_refusal(embedded)
            return None if inner is None else f"{how} {embedded}: {inner}"
    if address in _METADATA:
        return "the cloud metadata service"
    for reason, flagged in (
        ("a loopback address", address.is_loopback),
        ("the unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a shared (carrier-grade NAT) address", address in _SHARED),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
    ):
        if flagged:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "an IPv4-mapped form of"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 form of"
    if address.sixtofour is not None:
        return address.sixtofour, "a 6to4 form of"
    if address.teredo is not None:
        return address.teredo[1], "a Teredo form of"
    return None, ""


@dataclass(frozen=True, slots=True)
class _Entry:
    scheme: str
    host: str
    port: int
    path: str

    def matches(self, dest: Destination) -> bool:
        if (self.scheme, self.host, self.port) != (dest.scheme, dest.host, dest.port):
            return False
        prefix = self.path.rstrip("/")
        return not prefix or dest.path == prefix or dest.path.startswith(prefix + "/")


class ToolPolicy:
    """The ``--tool-url`` allow-list: origins (with an optional path), or ``*``."""

    def __init__(self, entries: tuple[str, ...] = ()) -> None:
        self.any_public = "*" in entries
        parsed = []
        for text in entries:
            if text == "*":
                continue
            try:
                dest = parse_tool_url(text)
            except DestinationRefused as exc:
                raise ValueError(f"--tool-url {text!r}: {exc}") from None
            if URL(text).query_string or URL(text).fragment:
                raise ValueError(f"--tool-url {text!r}: no query or fragment in an allow entry")
            parsed.append(_Entry(dest.scheme, dest.host, dest.port, dest.path))
        self.entries = tuple(parsed)

    def _named(self, host: str, port: int) -> bool:
        return any(e.host == host and e.port == port for e in self.entries)

    def check_url(self, text: str) -> Destination:
        """The destination of ``text`` if a tool node may call it, else DestinationRefused."""
        dest = parse_tool_url(text)
        if any(entry.matches(dest) for entry in self.entries):
            return dest
        if not self.any_public:
            raise DestinationRefused(
                f"this server does not call {text!r}: tool URLs must match a --tool-url entry "
                "(scheme, host, port, path), e.g. --tool-url https://tools.example.com, or "
                "--tool-url '*' for any public address"
            )
        if dest.address is not None:
            self.check_address(dest.host, dest.port, dest.address)
        return dest

    def check_address(self, host: str, port: int, address: IPAddress) -> None:
        """DestinationRefused unless ``host`` may be reached at ``address``."""
        if self._named(host, port):
            return  # the operator named this host: its addresses are theirs to trust
        reason = address_refusal(address)
        if reason is not None:
            what = (
                f"it is {reason}" if host == str(address) else f"it resolves to {address}, {reason}"
            )
            raise DestinationRefused(
                f"this server does not call {host}: {what}; only public addresses are "
                "allowed unless a --tool-url entry names the host"
            )
