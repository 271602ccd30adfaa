"""Secrets never leave through the read API: values under secret-named keys are replaced.

Inventory attributes may carry a device's ``connections`` (``{snmp: {community: ...}}``);
the inventory file should hold references there (``env:VAR``, ``file:/path``), but an
inline secret, or a reference naming a server file, must not reach a reader either. Any
value under a key of :data:`~watchkeeper.collect.credentials.SECRET_KEYS`, or a key that
names a password, secret, token or credential, is answered as :data:`REDACTED`, at any
depth.
"""

from __future__ import annotations

import re
from typing import Any, Final

from watchkeeper.collect.credentials import SECRET_KEYS

REDACTED: Final = "<redacted>"
_URL_PASSWORD: Final = re.compile(rb"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"]*):[^@/\s\"]*@")
_WORDS: Final = ("password", "passwd", "passphrase", "secret", "token", "credential",
                 "community", "private_key", "api_key")


def secret_key(name: str) -> bool:
    """Whether a mapping key names a secret (``password``, ``snmp_community``, ``authKey``)."""
    folded = name.lower().replace("-", "_")
    return folded in SECRET_KEYS or any(word in folded for word in _WORDS) or (
        folded.endswith(("auth_key", "priv_key", "authkey", "privkey")))


def redact(value: Any) -> Any:
    """``value`` with every secret-named key's value replaced (new containers; the input
    is left as it is)."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and secret_key(k) and v not in (None, "")
                else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def redact_url_passwords(encoded: bytes) -> bytes:
    """``scheme://user:password@`` in encoded text (JSON) as ``scheme://user:<redacted>@``:
    check outputs quote the URL they probed, and alarm steps carry those outputs."""
    return _URL_PASSWORD.sub(rb"\1:" + REDACTED.encode() + b"@", encoded)
