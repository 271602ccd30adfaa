"""The text forms of Python 2.7, which esmond's tools printed their human output in.

esmond-client 4.2.1 runs on Python 2.7 and prints ``'{0}: {1}'.format(key, value)``: a
float is ``str()``'d to 12 significant digits (``0.40109100000000003`` prints
``0.401091``), and a histogram, a dict decoded from JSON, prints as its ``repr``, with
``u''`` keys in the order of Python 2's hash table (``{u'41.10': 2, u'41.00': 98}``).
Its ``-o json`` is ``json.dumps`` of rows made by ``dict(source=..., ...)``, so their
members, too, come in hash-table order. :func:`py2_str`, :func:`py2_kwargs_order` and
:func:`py2_json_order` reproduce these, so the ``esmond-ps-*`` human and JSON output is
esmond's byte for byte; the orders come from the same string hash and open addressing as
CPython 2.7's ``dict`` (checked against Python 2.7.18 in tests/unit/cli/test_archive_py2.py).
"""

from __future__ import annotations

import math
from typing import Final

_MASK: Final = (1 << 64) - 1
_MIN_SIZE: Final = 8
_PERTURB_SHIFT: Final = 5


def py2_str(value: object) -> str:
    """``str(value)`` as Python 2.7 gives it for a value decoded from JSON."""
    if isinstance(value, float):
        return _float_str(value)
    if isinstance(value, str):
        return value
    return py2_repr(value)


def py2_repr(value: object) -> str:
    """``repr(value)`` as Python 2.7 gives it (strings are unicode, as JSON decodes them)."""
    if isinstance(value, float):
        return _float_repr(value)
    if isinstance(value, str):
        return _unicode_repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(py2_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{py2_repr(k)}: {py2_repr(value[k])}"
                          for k in py2_dict_order(list(value)))
        return "{" + items + "}"
    return repr(value)  # int, bool, None: as in Python 2


def _float_str(value: float) -> str:
    # float_str: 'g' with 12 digits and ".0" added when it looks like an integer; with
    # that flag 2.7 switches to an exponent one digit earlier than '%.12g' (12 digits
    # before the point: 657470729473.4 prints 6.57470729473e+11).
    if not math.isfinite(value):
        return _float_repr(value)
    text = f"{value:.12g}"
    if "e" not in text and len(text.lstrip("-").split(".")[0]) == 12:
        mantissa, exponent = f"{value:.11e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return text if any(c in text for c in ".e") else text + ".0"


def _float_repr(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)  # 2.7 and 3 both give the shortest repr that reads back


def _unicode_repr(text: str) -> str:
    quote = '"' if "'" in text and '"' not in text else "'"
    out = ["u", quote]
    for char in text:
        code = ord(char)
        if char in (quote, "\\"):
            out.append("\\" + char)
        elif char in "\t\n\r":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r"}[char])
        elif code < 0x20 or 0x7F <= code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code >= 0x10000:
            out.append(f"\\U{code:08x}")
        elif code >= 0x100:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append(quote)
    return "".join(out)


def py2_hash(text: str) -> int:
    """Python 2.7's hash of a unicode string (no hash randomization, 64-bit build), as
    the unsigned number its dict indexes with."""
    if not text:
        return 0
    x = (ord(text[0]) << 7) & _MASK
    for char in text:
        x = ((1_000_003 * x) & _MASK) ^ ord(char)
    x ^= len(text)
    return _MASK - 1 if x == _MASK else x  # -1 is reserved for errors in C: -2 instead


def py2_dict_order(keys: list[str]) -> list[str]:
    """The order Python 2.7 iterates a dict whose string keys were inserted in ``keys``'
    order (as its json module inserts an object's members)."""
    table: list[str | None] = [None] * _MIN_SIZE
    for used, key in enumerate(dict.fromkeys(keys), start=1):
        _insert(table, key)
        if used * 3 >= len(table) * 2:  # no deletions, so fill == used
            size = _MIN_SIZE
            while size <= used * (2 if used > 50_000 else 4):
                size <<= 1
            old = [k for k in table if k is not None]
            table = [None] * size
            for moved in old:
                _insert(table, moved)
    return [k for k in table if k is not None]


def py2_kwargs_order(keys: list[str]) -> list[str]:
    """The order Python 2.7 iterates ``dict(k1=..., k2=..., ...)`` called with ``keys`` in
    that order: the interpreter collects the keyword arguments last to first into one dict,
    which ``dict()`` merges into a new table sized for them at once."""
    collected = py2_dict_order(keys[::-1])
    size = _MIN_SIZE
    if len(collected) * 3 >= size * 2:
        while size <= len(collected) * 2:
            size <<= 1
    table: list[str | None] = [None] * size
    for key in collected:
        _insert(table, key)
    return [k for k in table if k is not None]


def py2_json_order(value: object) -> object:
    """``value`` with every nested object's members in Python 2's order for it (as decoded
    from JSON), so ``json.dumps`` writes what Python 2's did."""
    if isinstance(value, dict):
        return {k: py2_json_order(value[k]) for k in py2_dict_order(list(value))}
    if isinstance(value, list):
        return [py2_json_order(v) for v in value]
    return value


def _insert(table: list[str | None], key: str) -> None:
    mask = len(table) - 1
    perturb = py2_hash(key)
    i = perturb & mask
    while table[i & mask] is not None:
        i = ((i << 2) + i + perturb + 1) & _MASK
        perturb >>= _PERTURB_SHIFT
    table[i & mask] = key
