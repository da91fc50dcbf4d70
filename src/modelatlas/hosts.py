"""Which Host headers a local server answers: loopback names and addresses, plus the ones it was
told about. A DNS-rebinding page reaches 127.0.0.1 under the attacker's own name (its Host header
and its Origin then agree, so a same-origin check passes); refusing unknown Host values stops it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = frozenset({"localhost"})


def host_name(host_header: str | None) -> str | None:
    """The name or address of a Host header without its port, brackets, case or trailing dot;
    None when the header is missing or malformed."""
    text = (host_header or "").strip().lower()
    if not text:
        return None
    if text.startswith("["):  # [::1]:8765
        address, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return None
        return address or None
    if text.count(":") > 1:  # a bare IPv6 address (no port possible without brackets)
        return text
    name, colon, port = text.partition(":")
    if colon and not _is_port(":" + port):
        return None
    return name.rstrip(".") or None


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


def is_loopback_name(name: str) -> bool:
    """localhost, 127.0.0.0/8, ::1 (and 127.x written as an IPv4-mapped IPv6 address)."""
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def host_allowed(host_header: str | None, allowed: Iterable[str] = ()) -> bool:
    """Whether a request with this Host header is for us: a loopback host or one of ``allowed``
    (names or addresses, compared without port, brackets, case or trailing dot)."""
    name = host_name(host_header)
    if name is None:
        return False
    if is_loopback_name(name):
        return True
    return any(name == host_name(extra) for extra in allowed)
