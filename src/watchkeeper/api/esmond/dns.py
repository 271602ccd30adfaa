"""Host names in metadata filters, resolved as esmond's ``dns-match-rule`` says.

``v4v6`` (default) matches the first A and the first AAAA address, ``only-v4`` /
``only-v6`` one family, ``prefer-v4`` / ``prefer-v6`` the preferred family when it has
an address, else the other. An IP literal stands for itself (in its own family only,
so an IPv4 literal with ``only-v6`` finds nothing). Finding nothing is a 400.

Lookups go through a :class:`Resolver`, time-bounded by default and replaceable in tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final, Protocol

from watchkeeper.errors import InvalidData

RULES: Final = ("v4v6", "only-v4", "only-v6", "prefer-v4", "prefer-v6")
LOOKUP_TIMEOUT: Final = 2.0


class Resolver(Protocol):
    """The first address of ``host`` in ``family`` (AF_INET or AF_INET6), or None."""

    async def __call__(self, host: str, family: int) -> str | None: ...


async def system_resolver(host: str, family: int) -> str | None:
    """The operating system's resolver, giving up after :data:`LOOKUP_TIMEOUT` seconds."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, 80, family=family, type=socket.SOCK_STREAM),
            LOOKUP_TIMEOUT)
    except (OSError, TimeoutError, UnicodeError):
        return None
    for info in infos:
        return str(info[4][0])
    return None


async def resolve_rule(host: str, rule: str | None, resolve: Resolver) -> list[str]:
    """The addresses a host filter matches, IPv4 first (as esmond lists them)."""
    rule = rule or "v4v6"
    if rule not in RULES:
        raise InvalidData(f"Invalid dns-match-rule parameter {rule} (use one of "
                          f"{', '.join(RULES)})")
    lookup = _literal_lookup(host) or resolve
    v4 = v6 = None
    if rule in ("only-v4", "prefer-v4", "v4v6"):
        v4 = await lookup(host, socket.AF_INET)
    if rule in ("only-v6", "prefer-v6", "v4v6") or (rule == "prefer-v4" and v4 is None):
        v6 = await lookup(host, socket.AF_INET6)
    if rule == "prefer-v6" and v6 is None:
        v4 = await lookup(host, socket.AF_INET)
    found = [str(ipaddress.ip_address(a)) for a in (v4, v6) if a]
    if not found:
        raise InvalidData(f"Unable to find address for host {host} (dns-match-rule {rule})")
    return found


def _literal_lookup(host: str) -> Resolver | None:
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return None
    own = socket.AF_INET if address.version == 4 else socket.AF_INET6

    async def lookup(host: str, family: int) -> str | None:
        return str(address) if family == own else None

    return lookup
