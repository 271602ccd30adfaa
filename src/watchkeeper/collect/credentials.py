"""Credentials by reference: ``env:VAR`` or ``file:/path``, resolved at poll time.

Configuration (settings, the inventory file, job configs sent to remote collectors) only
ever holds *references*; the secret is read where and when a poll needs it, so it never
travels, never lands in a report and never reaches a log. A resolved secret is a
:class:`Credential`, whose ``repr`` and ``str`` show where it came from, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from watchkeeper.errors import CollectError

SECRET_KEYS = frozenset({
    "password", "passphrase", "community", "auth_key", "priv_key", "key", "token", "secret",
})
"""Connection keys that hold secrets: the inventory file must give them as references."""

_PREFIXES = ("env:", "file:")


def is_reference(text: str) -> bool:
    """True for ``env:VAR`` and ``file:/path``."""
    return text.startswith(_PREFIXES) and len(text.partition(":")[2]) > 0


class Credential:
    """A secret and where it came from. Shows only its source: ``Credential('env:X')``."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, *, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The secret itself: pass it straight to the library that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Credential({self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credential):
            return NotImplemented
        return self._value == other._value and self.source == other.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Credential is never pickled; pass its reference instead")


def resolve_credential(
    ref: str,
    *,
    env: Mapping[str, str] | None = None,
    read: Callable[[Path], str] | None = None,
) -> Credential:
    """The secret ``ref`` points at; a plain string is its own (inline) value.

    Raises :class:`CollectError` naming the reference, never a value, when the variable
    is unset or the file unreadable.
    """
    kind, _, where = ref.partition(":")
    if kind == "env" and where:
        value = (os.environ if env is None else env).get(where)
        if value is None:
            raise CollectError(f"credential {ref}: environment variable {where} is not set")
        return Credential(value, source=ref)
    if kind == "file" and where:
        path = Path(where).expanduser()
        try:
            text = (read or _read_text)(path)
        except OSError as exc:
            raise CollectError(f"credential {ref}: cannot read {path}: "
                               f"{exc.strerror or type(exc).__name__}") from None
        return Credential(text.removesuffix("\n"), source=ref)
    return Credential(ref, source="inline")


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")
