"""The beat scheduler, made to survive a broker restart.

Celery's beat keeps one producer for its whole life.  After Redis restarts, that producer
can be left on a channel whose connection is gone, and every later send fails (seen here as
``AttributeError: 'NoneType' object has no attribute 'hostname'`` deep in kombu): beat keeps
ticking but rings nothing, and queued posts wait forever.  This scheduler drops the producer
and its connection after a failed send, so the next tick connects afresh.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery.beat import PersistentScheduler

log = logging.getLogger(__name__)


class ResilientScheduler(PersistentScheduler):  # type: ignore[misc]
    """A persistent (file-backed) scheduler that renews its broker connection after a
    failed send."""

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        log.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            log.error(
                "beat: could not send %s (%s); renewing the broker connection", entry.name, exc
            )
            self.renew_connection()

    def renew_connection(self) -> None:
        """Forget the cached producer and connection; the next send makes new ones."""
        producer = self.__dict__.pop("producer", None)
        connection = self.__dict__.pop("connection", None)
        for resource in (producer, connection):
            if resource is not None:
                with contextlib.suppress(Exception):
                    resource.close()
