"""Series texts a bulk write creates, checked and split into columns all at once.

A columnar write naming 100,000 new series spent ~1 s of the server's CPU on them, most
of it per series in Python: a regular expression, a :class:`SeriesKey` and a
:class:`NewSeries` each, then a tuple of eight fields for SQLite. Here the texts are
joined and handled by a few passes of C code over the whole: one regular expression
checks that every text is canonical, and ``str`` splits and replacements give the
subject, plugin, metric and labels (as JSON) of every series row (D52).

The passes rely on the canonical form with *plain* label values: no ``"``, ``\\`` nor
control characters, no ``,`` or ``}`` first and no ``=`` last. Then ``"`` appears only
around values, and ``",`` ends a label that another follows, ``"}`` the last one and
``="`` a label's name, and nothing else does. A batch with any other text takes the
one-by-one way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import Final

_NAME: Final = r"[A-Za-z0-9_.:@-]+"  # as SeriesKey.make checks
_LABEL_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
# Plain: not starting with "," or "}", nor ending with "=" (see the module's docstring).
_VALUE: Final = r'(?![,}])(?:[^"\\\x00-\x1f]*[^"\\\x00-\x1f=])?'
_LABEL: Final = rf'{_LABEL_NAME}="{_VALUE}"'
_TEXT: Final = rf"{_NAME}/{_NAME}/{_NAME}(?:\{{{_LABEL}(?:,{_LABEL})*+\}})?+"
# Possessive repeats (*+): nothing to backtrack into, and no state kept per text (3x faster).
_TEXTS: Final = re.compile(rf"{_TEXT}(?:\n{_TEXT})*+")
_LABEL_NAMES: Final = re.compile(rf'[{{,]({_LABEL_NAME})="{_VALUE}"')


def all_plain(texts: Sequence[str]) -> bool:
    """Whether every text is a series' canonical text form with plain label values
    (see the module's docstring): one match over all of them."""
    if not texts:
        return True
    joined = "\n".join(texts)
    # A text holding a newline would pass as two lines: count them.
    if joined.count("\n") != len(texts) - 1 or _TEXTS.fullmatch(joined) is None:
        return False
    # Labels must be in name order, each once; only texts with two or more ('",') can fail.
    for text in (t for t in texts if '",' in t):
        names = _LABEL_NAMES.findall(text, text.index("{"))
        if any(a >= b for a, b in itertools.pairwise(names)):
            return False
    return True


def key_columns(texts: Sequence[str]) -> tuple[Sequence[str], Sequence[str], Sequence[str],
                                                 list[str]]:
    """The subject, plugin, metric and labels (JSON ``[["name","value"],...]``, as
    ``msgspec.json.encode(key.labels)`` gives it) of texts :func:`all_plain` accepts."""
    if not texts:
        return [], [], [], []
    parts = list(map(str.partition, texts, repeat("{")))
    names = "/".join(map(itemgetter(0), parts)).split("/")  # names hold no "/"
    # Each line 'a="1",b="2"}' (the first '{' is gone) or empty: '[["a","1"],["b","2"]]'
    # or '[]'. The last line's end is left over.
    labels = ("\n".join(map(itemgetter(2), parts)) + "\n").replace('",', '"],["').replace(
        '="', '","').replace('"}', '"]]').replace("\n", '\n[["')
    as_json = ('[["' + labels).replace('[["\n', '[]\n').split("\n")
    as_json.pop()
    return names[0::3], names[1::3], names[2::3], as_json
