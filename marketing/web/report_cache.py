"""The programme overview, built once per rollup: a cache of finished documents keyed on the
database's state (#19).

Building the overview of 1,000 communities costs about a fifth of a second of one core (the
figures of every community, channel and period in Python, then a table of 1,000 rows); twenty
staff opening it at once queued for seconds.  Its figures change only when the performance
summaries do, which every rollup records by raising
:class:`~marketing.models.ReportGeneration` in its own transaction.  So the finished document
(HTML, CSV or JSON bytes) is kept per

    (summaries' generation, the communities' names and provinces, period, sort, format,
     language, era, time zone)

and a request only reads the generation and the communities (a few milliseconds) to know
whether the kept one still holds.  The key is the database's state, not something a process
is told: every web process (``marketing serve --workers N``) keeps its own copy and notices a
rollup committed by any worker, task or other process at its next request.  A document is
built by one request at a time per key; others asking for the same key meanwhile wait for it
rather than build it again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.models import Community
from marketing.performance import report_generation
from marketing.reports.period import Period
from marketing.reports.queries import all_ranks
from marketing.reports.rows import Rank

T = TypeVar("T")

MAX_BYTES = 64 * 1024 * 1024  # per web process: some sixty overviews of 1,000 communities


@dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str


def database_state(session: Session) -> tuple[int, str]:
    """What the overview's figures and names depend on: the summaries' generation and a
    digest of every community's slug, names and province (a renamed, added or removed
    community changes it; no rollup needed)."""
    digest = hashlib.blake2b(digest_size=16)
    for row in session.execute(
        select(
            Community.id, Community.slug, Community.name_th, Community.name_en, Community.province
        ).order_by(Community.id)
    ):
        digest.update(repr(tuple(row)).encode())
    # The generation first: a rollup committed between the two reads leaves a document at
    # least as new as its key, never older.
    return report_generation(session=session), digest.hexdigest()


class DocumentCache:
    """Finished documents (and other values built from the summaries) by key, the least
    recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0  # how many values were built (tests read it)

    def get_or_build(self, key: Hashable, build: Callable[[], Document]) -> Document:
        """The document kept under ``key``, or ``build()`` kept under it."""
        return self.value(key, build, lambda document: len(document.body))

    def value(self, key: Hashable, build: Callable[[], T], size: Callable[[T], int]) -> T:
        """The value kept under ``key``, or ``build()`` kept under it (``size`` its bytes,
        near enough).  Requests asking for a key being built wait for that build."""
        found = self._get(key)
        if found is not None:
            return cast(T, found)
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            found = self._get(key)
            if found is None:
                made = build()
                self.builds += 1
                self._put(key, made, size(made))
                found = made
        with self._lock:
            self._building.pop(key, None)
        return cast(T, found)

    def _get(self, key: Hashable) -> object | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
            return found[0]

    def _put(self, key: Hashable, value: object, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._kept:
                self._size -= self._kept.pop(key)[1]
            self._kept[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _key, (_value, dropped) = self._kept.popitem(last=False)
                self._size -= dropped

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._size = 0


def kept_ranks(cache: DocumentCache, session: Session) -> Callable[[Period], Mapping[int, Rank]]:
    """Every community's ranks over a period, computed once per rollup: one community's
    page otherwise ranks all of them in SQL each time (a scan of every community's records
    of the period, the page's main cost at 1,000 communities)."""

    def ranks(period: Period) -> Mapping[int, Rank]:
        key = ("ranks", database_state(session), period.start, period.end)
        return cache.value(key, lambda: all_ranks(session, period), lambda r: 200 * len(r))

    return ranks
