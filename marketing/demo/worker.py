"""The demo's Celery worker: ``celery -A tasks worker ...``, imported ahead and started on a word.

The demo starts this process as soon as its database exists.  It imports what the worker
needs -- Celery's worker, the tasks and every channel module, and the LINE SDK, which
``channels.line`` otherwise imports on first use, in each pool process on its first LINE
post -- while the demo seeds the database and connects the accounts, then waits.  When the
demo writes ``start`` on its standard input (the campaign approved), it runs Celery's
command line with the arguments it was given, and is ready within moments.

It does not start earlier because the worker's beat writes heartbeats from its first second,
and a SQLite transaction that read before another connection's write cannot write after it
("database is locked", at once, whatever the busy timeout): the web app's connect flows and
the campaign's approval would meet that.  On end of input without the word it exits.
"""

from __future__ import annotations

import sys
from importlib import import_module

#: Imported before the word: the worker's own start-up, and what its pool would import.
PRELOAD = (
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.worker.consumer",
    "celery.beat",
    "kombu.transport.sqlalchemy",
    "tasks",
    "linebot.v3.messaging",
)

WORD = "start"


def main(argv: list[str]) -> int:
    for name in PRELOAD:
        import_module(name)
    if sys.stdin.readline().strip() != WORD:
        return 0  # the demo went away (or stopped) before it needed the worker
    from celery.bin.celery import main as celery

    sys.argv = ["celery", *argv]
    return int(celery() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
