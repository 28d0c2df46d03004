"""Run a function in a worker process, bounded in time and memory.

Some work runs code that people write (campaign templates): the sandbox refuses the known
ways to ask for too much (:mod:`campaigns.sandbox`), but loops nested deep enough can still
run for hours, and the web app must stay responsive.  :func:`run_bounded` runs such work in
a child process:

* the child's address space is limited (``RLIMIT_AS``) to what it had at start plus
  ``memory_bytes``: past it, allocations fail with :class:`MemoryError` in the child;
* at ``seconds`` the child gets ``SIGALRM``, which raises :class:`TimeUp` (a
  :class:`BaseException`, so no ``except Exception`` on the way mistakes it for an ordinary
  failure) where the child is at; ``TimeUp.at_template`` says which template was running;
* a child that does not answer ``GRACE_SECONDS`` later is killed.

Children are forked from a ``forkserver`` (started once, with the campaign modules preloaded,
and single-threaded, so forking it is safe however many threads the web app runs): a check
costs a fork and a database connection, not a new interpreter.  On systems without
``fork`` (not Linux), ``spawn`` is used.

The function may call :func:`report` to send the parent a progress message; the child waits
until the parent has handled it (``on_message``), so a parent that watches progress also sees
the child stand still while it looks.

The caller gets the function's return value, or :class:`BoundExceeded` saying which bound was
passed.  Exceptions raised in the child come back as :class:`BoundExceeded` with kind
``"failed"``: the function should return its expected failures as values.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, Literal, TypeVar

from channels.registry import CHANNEL_MODULES

T = TypeVar("T")

GRACE_SECONDS = 5.0
# The channel modules too: checking a campaign reads every channel's spec, and their SDKs
# take seconds to import on a busy machine -- time a check's bound is not meant for.
_PRELOAD = [
    "campaigns",
    "marketing.web.campaign_files",
    "sqlalchemy",
    "jinja2",
    "yaml",
    *CHANNEL_MODULES,
]

Kind = Literal["time", "memory", "failed"]


class BoundExceeded(Exception):
    """The work in the child process passed a bound (``kind``), or failed unexpectedly."""

    def __init__(self, kind: Kind, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: Kind = kind
        self.detail = detail
        self.problem: Any = None  # for "time": where the work was, if the function said


class TimeUp(BaseException):
    """Raised in the child when its time is up; ``template`` and ``line`` say where a
    template was being rendered at that moment (else None)."""

    def __init__(self, template: str | None = None, line: int | None = None) -> None:
        super().__init__(template, line)
        self.template = template
        self.line = line
        self.problem: Any = None  # filled in by whoever can say where (campaigns.templates)

    @classmethod
    def at(cls, frame: FrameType | None) -> TimeUp:
        """A TimeUp naming the innermost template running in ``frame``'s stack, if any."""
        while frame is not None:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                line = template.get_corresponding_lineno(frame.f_lineno)
                return cls(template.filename or template.name, line)
            frame = frame.f_back
        return cls()


def _context() -> Any:
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _address_space() -> int:
    """This process's current address space in bytes (0 if unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


_parent: Connection | None = None  # in a child: the connection to the parent


def report(message: Any) -> None:
    """In a child of :func:`run_bounded`: send ``message`` (picklable) to the parent and wait
    until it has been handled; elsewhere: nothing."""
    if _parent is not None:
        _parent.send(("message", message))
        _parent.recv()


def _raise_time_up(signum: int, frame: FrameType | None) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    raise TimeUp.at(frame)


def _child(
    answer: Connection,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float,
    memory_bytes: int,
) -> None:
    global _parent
    _parent = answer
    try:
        current = _address_space()
        if current:
            limit = current + memory_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.signal(signal.SIGALRM, _raise_time_up)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result: tuple[str, Any] = ("ok", function(*args, **kwargs))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except TimeUp as exc:
        result = ("time", exc.problem)
    except MemoryError:
        result = ("memory", None)
    except Exception as exc:  # reported to the parent; the child's traceback stays here
        result = ("failed", f"{type(exc).__name__}: {exc}")
    try:
        answer.send(result)
    except MemoryError:
        answer.send(("memory", None))
    finally:
        answer.close()


def run_bounded(
    function: Callable[..., T],
    /,
    *args: Any,
    seconds: float,
    memory_bytes: int,
    on_start: Callable[[], None] | None = None,
    on_message: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> T:
    """``function(*args, **kwargs)`` run in a child process within ``seconds`` and
    ``memory_bytes`` more memory; BoundExceeded if it passes either or fails.

    ``function`` and its arguments must be picklable (a module-level function).  A
    :class:`TimeUp` that the function lets out with a ``problem`` comes back as
    ``BoundExceeded("time")`` whose ``detail`` is empty and whose ``problem`` is that
    problem.  ``on_start`` is called in the waiting thread once the child runs, and
    ``on_message`` with each message the function :func:`report`s."""
    context = _context()
    receive, send = context.Pipe(duplex=True)
    child = context.Process(
        target=_child,
        args=(send, function, args, kwargs, seconds, memory_bytes),
        name="bounded-check",
        daemon=True,
    )
    child.start()
    send.close()
    try:
        if on_start is not None:
            on_start()
        deadline = time.monotonic() + seconds + GRACE_SECONDS
        while True:
            if not receive.poll(max(0.0, deadline - time.monotonic())):
                raise BoundExceeded("time", "the worker process did not answer")
            try:
                kind, value = receive.recv()
            except EOFError:
                # Died without a word: killed for memory by the system, or crashed.
                raise BoundExceeded(
                    "memory", "the worker process ended without an answer"
                ) from None
            if kind != "message":
                break
            if on_message is not None:
                on_message(value)
            receive.send("go on")
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(GRACE_SECONDS)
        with contextlib.suppress(ValueError):
            child.close()
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    error = BoundExceeded(kind, value if kind == "failed" else "")
    error.problem = value if kind == "time" else None
    raise error
