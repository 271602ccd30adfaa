"""The series of a catalog indexed by subject, plugin, metric and label, for
:meth:`~watchkeeper.archive.Archive.find_series` (``GET /api/v1/series?plugin=...``).

For each term (subject ``web1``, plugin ``http``, label ``host="web1"``..., and one term
every series has) the index keeps the ids of the series carrying it, ascending, 4 bytes
an id. It is built on first use from the catalog's text forms (no key is built), then
brought up to date before each search by indexing the ids handed out since: ids only
grow, except that a failed write gives its new ids back (the catalog counts that, and the
index is then built again).

A search intersects its terms' postings, shortest first. Prefix and substrings are
tested on the texts of what is left when that is at most 1/32 of every series (or
20,000); else on every text at once, joined in one byte string: C's search for a rare
substring, numpy byte by byte for a common one. The answer is ordered by text: up to
2,000 series by sorting their texts, more by their place in a sorted order of every
series kept beside the postings (series created since are sorted apart and merged; it
is made again once they are an eighth of it).
"""

from __future__ import annotations

import heapq
import re
import sys
from array import array
from collections import defaultdict
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
_EVERY: Final = ""  # the term of every series
_ID_TYPE: Final = "i"
_FEW: Final = 20_000  # up to this many series (or an eighth), texts are tested one by one
_FEW_SORTED: Final = 2_000  # up to this many, sorted by text; more, by rank
assert array(_ID_TYPE).itemsize == np.dtype(np.int32).itemsize


class SeriesIndex:
    """Postings of one :class:`Catalog`'s series, kept up to date by :meth:`find`."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._postings: dict[str, array[int]] = {}
        self._upto = 0  # ids below this are indexed
        self._forgotten = -1  # the catalog's count of forgets when built (-1: not built)
        self._texts = _JoinedTexts()
        self._rank: Ids = np.empty(0, dtype=np.int32)  # of ids below its length, by text

    def find(self, query: SeriesQuery, limit: int | None, offset: int) -> tuple[list[int], int]:
        """The ids of a page of the series meeting ``query``, in key order, and how many
        meet it."""
        self._update()
        ids = self._candidates(query)
        if query.kind is not None:
            ids = ids[self._catalog.kinds[ids] == KIND_CODES[query.kind]]
        if query.prefix or query.match:
            ids = self._texts_hold(ids, query.prefix, query.match)
        end = len(ids) if limit is None else min(len(ids), offset + limit)
        return self._first(ids, end)[offset:], len(ids)

    def nbytes(self) -> int:
        """Memory held: postings (with their terms), joined texts and ranks."""
        postings = sys.getsizeof(self._postings) + sum(
            sys.getsizeof(term) + sys.getsizeof(ids) for term, ids in self._postings.items())
        texts = len(self._texts.blob) + self._texts.starts.nbytes
        return postings + texts + self._rank.nbytes

    def _candidates(self, query: SeriesQuery) -> Ids:
        terms = _query_terms(query) or [_EVERY]
        lists = []
        for term in terms:
            posting = self._postings.get(term)
            if posting is None:
                return np.empty(0, dtype=np.int32)
            lists.append(posting)
        lists.sort(key=len)
        ids = np.array(lists[0], dtype=np.int32)  # a copy: the arrays may grow later
        for posting in lists[1:]:
            ids = _both(ids, np.frombuffer(posting, dtype=np.int32))
        return ids  # no view of a posting is left: the arrays may grow again

    def _texts_hold(self, ids: Ids, prefix: str, parts: tuple[str, ...]) -> Ids:
        """Those of ``ids`` whose text starts with ``prefix`` and holds every part."""
        if len(ids) <= max(_FEW, self._upto // 32):  # cheaper than reading every text
            text_of = self._catalog.text_of
            return np.array([sid for sid in ids.tolist()
                             if (text := text_of(sid)) is not None and text.startswith(prefix)
                             and all(part in text for part in parts)], dtype=np.int32)
        texts = self._texts
        texts.extend(self._catalog, self._upto)
        for part, at_start in ((prefix, True), *((part, False) for part in parts)):
            if part:
                ids = _both(texts.holding(part, at_start=at_start), ids)
        return ids

    def _first(self, ids: Ids, end: int) -> list[int]:
        """The ``end`` first of ``ids`` by text."""
        text_of = self._catalog.text_of
        if len(ids) <= _FEW_SORTED:
            found = [(text_of(sid) or "", sid) for sid in ids.tolist()]
            page = heapq.nsmallest(end, found) if end < len(found) // 8 else sorted(found)[:end]
            return [sid for _, sid in page]
        ranked = len(self._rank)
        if self._upto - ranked > ranked // 8:
            self._rank = _ranks(self._catalog, self._upto)
            ranked = self._upto
        old, new = ids[ids < ranked], ids[ids >= ranked]
        ranks = self._rank[old]
        if end < len(old):
            keep = np.argpartition(ranks, end - 1)[:end]
            old, ranks = old[keep], ranks[keep]
        first_old = [(text_of(sid) or "", sid) for sid in old[np.argsort(ranks)].tolist()]
        first_new = heapq.nsmallest(end, [(text_of(sid) or "", sid) for sid in new.tolist()])
        return [sid for _, sid in heapq.merge(first_old, first_new)][:end]

    def _update(self) -> None:
        catalog = self._catalog
        if catalog.forgotten != self._forgotten:
            self._postings, self._upto, self._forgotten = {}, 0, catalog.forgotten
            self._texts = _JoinedTexts()
            self._rank = np.empty(0, dtype=np.int32)
        if self._upto >= catalog.next_id:
            return
        # Lists first, then one extend per term: a third faster than appending to arrays.
        added: defaultdict[str, list[int]] = defaultdict(list)
        every = added[_EVERY]
        text_of = catalog.text_of
        for sid in range(self._upto, catalog.next_id):
            text = text_of(sid)
            if text is None:
                continue
            every.append(sid)
            head, brace, rest = text.partition("{")
            subject, plugin, metric = head.split("/")
            added["s:" + subject].append(sid)
            added["p:" + plugin].append(sid)
            added["m:" + metric].append(sid)
            if not brace:
                continue
            if "\\" in rest:  # an escape: a value may hold '",'
                labels = [m.group() for m in _LABEL.finditer(rest, 0, len(rest) - 1)]
            else:  # a="x",b="y"}: without escapes no value holds '"'
                labels = [label + '"' for label in rest[:-2].split('",')]
            for label in labels:
                added["l:" + label].append(sid)
        postings = self._postings
        for term, sids in added.items():
            posting = postings.get(term)
            if posting is None:
                posting = postings[term] = array(_ID_TYPE)
            posting.extend(sids)
        self._upto = catalog.next_id


class _JoinedTexts:
    """The texts of ids ``[0, n)`` in one UTF-8 byte string, each after a ``\\n`` (no
    text holds a raw newline: the text form escapes it), and where each starts."""

    def __init__(self) -> None:
        self.blob = b"\n"
        self.starts = np.zeros(0, dtype=np.int64)

    def extend(self, catalog: Catalog, upto: int) -> None:
        known = len(self.starts)
        if upto <= known:
            return
        encoded = [(catalog.text_of(sid) or "").encode() + b"\n" for sid in range(known, upto)]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = len(self.blob) + np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self.starts = np.concatenate((self.starts, starts))
        self.blob += b"".join(encoded)

    def holding(self, part: str, *, at_start: bool) -> Ids:
        """Ids (ascending) whose text holds ``part`` (or starts with it); not empty."""
        needle = part.encode()
        if b"\n" in needle:  # in no text
            return np.empty(0, dtype=np.int32)
        data = np.frombuffer(self.blob, dtype=np.uint8)
        if at_start:  # the bytes at each start, then after, while they match
            at = self.starts[self.starts + len(needle) <= len(data)]
            first = 0
        elif self.blob.count(needle) <= _FEW:  # C's search; a Python step per match
            found, at_ = [], self.blob.find(needle)
            while at_ >= 0:
                found.append(at_)
                at_ = self.blob.find(needle, at_ + 1)
            at, first = np.array(found, dtype=np.int64), len(needle)
        else:  # many: numpy, a pass per byte of the needle over what is left
            at, first = np.flatnonzero(data[: len(data) - len(needle) + 1] == needle[0]), 1
        for j in range(first, len(needle)):
            at = at[data[at + j] == needle[j]]
        del data  # a view of the blob, which extend() replaces
        sids = np.searchsorted(self.starts, at, side="right") - 1
        return np.unique(sids).astype(np.int32)


def _both(few: Ids, many: Ids) -> Ids:
    """The ids in both ascending arrays: each of ``few`` looked up in ``many``."""
    if not len(many):
        return many
    at = np.minimum(np.searchsorted(many, few), len(many) - 1)
    kept: Ids = few[many[at] == few]
    return kept


def _ranks(catalog: Catalog, upto: int) -> Ids:
    """Each id's place among ids ``[0, upto)`` sorted by text."""
    texts = [catalog.text_of(sid) or "" for sid in range(upto)]
    rank = np.empty(upto, dtype=np.int32)
    rank[sorted(range(upto), key=texts.__getitem__)] = np.arange(upto, dtype=np.int32)
    return rank


def _query_terms(query: SeriesQuery) -> list[str]:
    terms = [tag + value for tag, value in (("s:", query.subject), ("p:", query.plugin),
                                            ("m:", query.metric)) if value]
    terms.extend("l:" + _label_text(name, value) for name, value in query.labels)
    return terms


def _label_text(name: str, value: str) -> str:
    """``name="value"`` as the text form of a key writes it (the value escaped)."""
    text = str(SeriesKey(subject="_", plugin="_", metric="_", labels=((name, value),)))
    return text[len("_/_/_{"):-1]
