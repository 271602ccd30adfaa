"""Secret-named values are hidden at any depth; the rest is left as it is."""

from __future__ import annotations

from watchkeeper.api.redact import REDACTED, redact, secret_key


def test_secret_keys() -> None:
    """The credential keys of connections, and keys that name a secret."""
    for name in ("password", "community", "auth_key", "privKey", "snmp-community", "api_key",
                 "client_secret", "token", "key"):
        assert secret_key(name), name
    for name in ("port", "username", "address", "metadata-key", "keyboard"):
        assert not secret_key(name), name


def test_redact_nested() -> None:
    """Values under secret keys go, in dicts inside lists inside dicts; empty ones stay."""
    attrs = {"address": "10.0.0.1", "connections": {"snmp": {"community": "c", "port": 161}},
             "list": [{"password": "p"}, 3], "token": "", "key": None}
    assert redact(attrs) == {"address": "10.0.0.1",
                             "connections": {"snmp": {"community": REDACTED, "port": 161}},
                             "list": [{"password": REDACTED}, 3], "token": "", "key": None}
    assert attrs["connections"]["snmp"]["community"] == "c"  # the input is untouched
