"""The series of a catalog indexed by subject, plugin, metric and label, for
:meth:`~watchkeeper.archive.Archive.find_series` (``GET /api/v1/series?plugin=...``).

For each term (subject ``web1``, plugin ``http``, label ``host="web1"``...) the index
keeps the ids of the series carrying it, ascending, 4 bytes an id. It is built on first
use from the catalog's text forms (no key is built), then brought up to date before each
search by indexing the ids handed out since: ids only grow, except that a failed write
gives its new ids back (the catalog counts that, and the index is then built again).

A search intersects its terms' postings, shortest first, tests what is left for the
prefix, the substrings and the kind, and sorts only the page it answers.
"""

from __future__ import annotations

import heapq
import re
from array import array
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import SeriesQuery
from watchkeeper.archive.backends._catalog import KIND_CODES, Catalog
from watchkeeper.model import SeriesKey

Ids = npt.NDArray[np.int32]
# One label of a text form, as SeriesKey writes it (value escaped): matched one after
# another from the brace, a match never starts inside a value.
_LABEL: Final = re.compile(r'[A-Za-z_][A-Za-z0-9_]*="(?:[^"\\]|\\.)*"')
_ID_TYPE: Final = "i"
assert array(_ID_TYPE).itemsize == np.dtype(np.int32).itemsize


class SeriesIndex:
    """Postings of one :class:`Catalog`'s series, kept up to date by :meth:`find`."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._postings: dict[str, array[int]] = {}
        self._upto = 0  # ids below this are indexed
        self._forgotten = -1  # the catalog's count of forgets when built (-1: not built)

    def find(self, query: SeriesQuery, limit: int | None, offset: int) -> tuple[list[int], int]:
        """The ids of a page of the series meeting ``query``, in key order, and how many
        meet it."""
        self._update()
        ids = self._candidates(query)
        catalog = self._catalog
        if query.kind is not None:
            ids = ids[catalog.kinds[ids] == KIND_CODES[query.kind]]
        text_of = catalog.text_of
        prefix, parts = query.prefix, query.match
        found = [(text, sid) for sid in ids.tolist()
                 if (text := text_of(sid)) is not None and text.startswith(prefix)
                 and all(part in text for part in parts)]
        end = len(found) if limit is None else min(len(found), offset + limit)
        # A small page of many: a heap instead of sorting every text.
        page = heapq.nsmallest(end, found) if end < len(found) // 8 else sorted(found)[:end]
        return [sid for _, sid in page[offset:]], len(found)

    def _candidates(self, query: SeriesQuery) -> Ids:
        terms = _query_terms(query)
        if not terms:
            return np.arange(self._upto, dtype=np.int32)  # ids without a series drop later
        lists = []
        for term in terms:
            posting = self._postings.get(term)
            if posting is None:
                return np.empty(0, dtype=np.int32)
            lists.append(posting)
        lists.sort(key=len)
        ids = np.array(lists[0], dtype=np.int32)  # a copy: the arrays may grow later
        for posting in lists[1:]:
            other = np.frombuffer(posting, dtype=np.int32)
            at = np.minimum(np.searchsorted(other, ids), len(other) - 1)
            ids = ids[other[at] == ids]
            del other, at  # the view must go before the array may grow again
        return ids

    def _update(self) -> None:
        catalog = self._catalog
        if catalog.forgotten != self._forgotten:
            self._postings, self._upto, self._forgotten = {}, 0, catalog.forgotten
        postings = self._postings
        text_of = catalog.text_of
        for sid in range(self._upto, catalog.next_id):
            text = text_of(sid)
            if text is None:
                continue
            for term in _text_terms(text):
                posting = postings.get(term)
                if posting is None:
                    posting = postings[term] = array(_ID_TYPE)
                posting.append(sid)
        self._upto = max(self._upto, catalog.next_id)


def _text_terms(text: str) -> list[str]:
    """The terms of a series' text form ``subject/plugin/metric{labels}``."""
    head, brace, rest = text.partition("{")
    subject, plugin, metric = head.split("/")
    terms = ["s:" + subject, "p:" + plugin, "m:" + metric]
    if brace:
        terms.extend("l:" + m.group() for m in _LABEL.finditer(rest, 0, len(rest) - 1))
    return terms


def _query_terms(query: SeriesQuery) -> list[str]:
    terms = [tag + value for tag, value in (("s:", query.subject), ("p:", query.plugin),
                                            ("m:", query.metric)) if value]
    terms.extend("l:" + _label_text(name, value) for name, value in query.labels)
    return terms


def _label_text(name: str, value: str) -> str:
    """``name="value"`` as the text form of a key writes it (the value escaped)."""
    text = str(SeriesKey(subject="_", plugin="_", metric="_", labels=((name, value),)))
    return text[len("_/_/_{"):-1]
