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
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.models import Community
from marketing.performance import report_generation

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
    """Finished documents by key, the least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._documents: OrderedDict[Hashable, Document] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0  # how many documents were built (tests and the benchmark read it)

    def get_or_build(self, key: Hashable, build: Callable[[], Document]) -> Document:
        found = self._get(key)
        if found is not None:
            return found
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            found = self._get(key)
            if found is None:
                found = build()
                self.builds += 1
                self._put(key, found)
        with self._lock:
            self._building.pop(key, None)
        return found

    def _get(self, key: Hashable) -> Document | None:
        with self._lock:
            found = self._documents.get(key)
            if found is not None:
                self._documents.move_to_end(key)
            return found

    def _put(self, key: Hashable, document: Document) -> None:
        if len(document.body) > self.max_bytes:
            return
        with self._lock:
            self._documents[key] = document
            self._size += len(document.body)
            while self._size > self.max_bytes:
                _key, dropped = self._documents.popitem(last=False)
                self._size -= len(dropped.body)

    def clear(self) -> None:
        with self._lock:
            self._documents.clear()
            self._size = 0
