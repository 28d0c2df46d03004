"""Sending a post to many: its deliveries in batches over one session of a
:class:`channels.base.BulkSender` (e-mail today).

The deliveries (one per consenting subscriber, each sent at most once) are kept by
:mod:`marketing.email_delivery`; this module is the loop that sends them, called by the
publish task for every channel that can ``SEND_TO_MANY``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from typing import Any

from sqlalchemy import Engine

from channels.base import Account, BulkSender, BulkSession, Receipt
from channels.errors import (
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from marketing.db import utcnow
from marketing.email_delivery import (
    BatchResult,
    Outgoing,
    abandon_sending,
    delivery_counts,
    finish_batch,
    is_finished,
    prepare_deliveries,
    take_batch,
)
from marketing.publishing import Claim, Policy, record_receipt, record_reconciliation
from marketing.settings import get_settings
from marketing.variant_tests import chosen_content, decide_rest, is_rest, variant_of

log = logging.getLogger(__name__)

# When this many refusals come in a row before anything was sent, the problem is the post
# (sender, content, relay policy), not its recipients: stop and fail the post.
REFUSALS_BEFORE_STOPPING = 10


def send_bulk_post(
    *,
    engine: Engine,
    claim: Claim,
    account: Account,
    sender: BulkSender,
    batch_size: int,
    processes: int | None = None,
) -> str:
    """Send every pending delivery of a post to many; mark the post published when all have
    ended.  Channel errors that concern the whole post propagate to the caller.

    With ``processes`` above 1 (default: the ``email_sending_processes`` setting) the
    messages are rendered, signed and sent by that many forked processes, each over a
    connection of its own, while this process keeps the deliveries: every batch is marked
    ``sending`` here before a sending process gets it and settled here after it answered.
    """
    kind = claim.channel.value
    content = claim.content
    if is_rest(content):
        decided = decide_rest(engine=engine, post_id=claim.post_id, now=utcnow())
        if isinstance(decided, timedelta):  # the variants are still out: wait, send nothing
            raise RateLimited(
                "waiting for the variant test to end before sending to the rest",
                code=f"{kind}:variant-waiting",
                retry_after=max(1.0, decided.total_seconds()),
            )
        content = chosen_content(content, decided)
    problems = sender.content_problems(content)
    if problems:
        listed = "; ".join(f"{p.field} {p.message}" for p in problems)
        raise PermanentError(f"the {kind} cannot be sent: {listed}", code=f"{kind}:invalid-content")
    prepare_deliveries(
        engine=engine,
        post_id=claim.post_id,
        community_id=claim.community_id,
        content=content,
    )

    def build(outgoing: Outgoing) -> Any:
        return sender.render(
            content,
            outgoing.recipient,
            post_id=claim.post_id,
            marker=claim.marker,
            sender_address=account.external_id,
        )

    # Messages are built (pure, no I/O) on a second thread while the sending thread waits for
    # the channel's answers: building and the round trips overlap instead of adding up.  A
    # short GIL switch interval lets the sending thread take each answer at once rather
    # than up to 5 ms later (the default), when the builder holds the interpreter.
    with _switch_interval(0.0002):
        if processes is None:
            processes = get_settings().email_sending_processes
        # No more processes than batches (a small audience is sent by this process).
        pending = delivery_counts(engine=engine, post_id=claim.post_id).get("pending", 0)
        processes = min(processes, -(-pending // max(1, batch_size)))
        if processes <= 1:
            _send_in_process(
                engine=engine,
                post_id=claim.post_id,
                sender=sender,
                build=build,
                batch_size=batch_size,
                kind=kind,
            )
        else:
            _send_in_processes(
                engine=engine,
                post_id=claim.post_id,
                sender=sender,
                build=build,
                batch_size=batch_size,
                kind=kind,
                processes=processes,
            )
    counts = delivery_counts(engine=engine, post_id=claim.post_id)
    if not is_finished(counts):  # another worker's batch is still out; it will finish
        return "publishing"
    # A part of a variant test may be empty (a small audience): nothing to send is done.
    if (
        not counts.get("sent")
        and not counts.get("unconfirmed")
        and not (counts == {} and variant_of(content) is not None)
    ):
        raise PermanentError(
            f"no {kind} was sent: the community has no consenting subscriber in this audience"
            if not counts
            else f"every recipient was refused ({counts.get('failed', 0)})",
            code=f"{kind}:no-recipients",
            hint="Import subscribers with their consent (`marketing communities import`), "
            "or change the campaign's audience, then retry the post.",
        )
    record_receipt(
        engine=engine,
        claim=claim,
        receipt=Receipt(
            external_id=f"{kind}:{claim.marker}",
            permalink=None,
            published_at=utcnow(),
            raw=dict(counts),
        ),
    )
    return "published"


@dataclass
class _Progress:
    """What decides whether refusals stop a post: whether anything was sent yet, and how
    many refusals came since the last message that went out."""

    sent_any: bool = False
    refusals: int = 0


@dataclass
class _Answer:
    """A batch as its sending process left it."""

    result: BatchResult
    stop: ChannelError | None
    progress: _Progress


def _send_batch(
    session: Callable[[], BulkSession],
    build: Callable[[Outgoing], Any],
    builder: ThreadPoolExecutor,
    batch: list[Outgoing],
    progress: _Progress,
) -> _Answer:
    """Build and send the messages of one batch (which the caller marked ``sending``)."""
    result = BatchResult(sent=[], failed=[], unconfirmed=[], returned=[])
    try:
        channel = session()
    except ChannelError as error:  # no connection: the whole batch goes back to pending
        result.returned = [o.delivery_id for o in batch]
        return _Answer(result, error, progress)
    built = [builder.submit(build, outgoing) for outgoing in batch]
    stop: ChannelError | None = None
    for index, (outgoing, future) in enumerate(zip(batch, built, strict=True)):
        try:
            message = future.result()
            channel.send(message)
        except PermanentError as error:  # this recipient (or address) was refused
            result.failed.append((outgoing.delivery_id, str(error)))
            progress.refusals += 1
            if not progress.sent_any and progress.refusals >= REFUSALS_BEFORE_STOPPING:
                stop = error
        except OutcomeUnknown as error:  # the channel may have it: never resend
            result.unconfirmed.append((outgoing.delivery_id, str(error)))
        except ChannelError as error:  # transient, rate limited, auth: whole post
            stop = error
            result.returned = [o.delivery_id for o in batch[index:]]
        else:
            result.sent.append((outgoing.delivery_id, message.message_id))
            progress.sent_any, progress.refusals = True, 0
        if stop is not None:
            if not result.returned:
                result.returned = [o.delivery_id for o in batch[index + 1 :]]
            for pending in built[index + 1 :]:
                pending.cancel()
            break
    return _Answer(result, stop, progress)


def _send_in_process(
    *,
    engine: Engine,
    post_id: int,
    sender: BulkSender,
    build: Callable[[Outgoing], Any],
    batch_size: int,
    kind: str,
) -> None:
    """Every pending delivery, one batch after another, over one connection of this process."""
    progress = _Progress()
    with (
        contextlib.ExitStack() as stack,
        ThreadPoolExecutor(1, f"{kind}-build") as builder,
    ):
        opened: list[BulkSession] = []

        def session() -> BulkSession:
            if not opened:
                opened.append(stack.enter_context(sender.connect()))
            return opened[0]

        while batch := take_batch(engine=engine, post_id=post_id, size=batch_size):
            answer = _send_batch(session, build, builder, batch, progress)
            finish_batch(engine=engine, result=answer.result)
            if answer.stop is not None:
                raise answer.stop


def _send_in_processes(
    *,
    engine: Engine,
    post_id: int,
    sender: BulkSender,
    build: Callable[[Outgoing], Any],
    batch_size: int,
    kind: str,
    processes: int,
) -> None:
    """Every pending delivery, by ``processes`` forked sending processes at once.

    This process takes each batch (marking it ``sending``, committed) before handing it to
    an idle sending process and settles it when the answer comes: a batch is never handed
    out twice, and if this process dies the batches out stay ``sending`` and become
    ``unconfirmed`` (:func:`reconcile_bulk_post`).  A sending process that ends without
    answering leaves its batch ``unconfirmed`` here: it may have sent part of it.
    """
    progress = _Progress()
    stop: ChannelError | None = None
    fault: BaseException | None = None
    out: dict[Connection, list[Outgoing]] = {}
    exhausted = False

    def hand_out(idle: list[Connection]) -> None:
        nonlocal stop, exhausted
        while stop is None and fault is None and not exhausted and idle:
            batch = take_batch(engine=engine, post_id=post_id, size=batch_size)
            if not batch:
                exhausted = True
                return
            pipe = idle.pop()
            try:
                pipe.send((batch, _Progress(progress.sent_any, progress.refusals)))
            except OSError:  # that process is gone: nothing of this batch went out
                finish_batch(engine=engine, result=_returned(batch))
                stop = _stopped(kind)
                return
            out[pipe] = batch

    with _SendingProcesses(processes, sender=sender, build=build, kind=kind) as workers:
        idle = list(workers.pipes)
        hand_out(idle)
        while out:
            answered: list[BatchResult] = []
            for ready in wait(list(out)):
                assert isinstance(ready, Connection)
                batch = out.pop(ready)
                try:
                    answer: _Answer | BaseException = ready.recv()
                except (EOFError, OSError):  # it may have sent any part of the batch
                    unconfirmed = [(o.delivery_id, _STOPPED_MID_BATCH) for o in batch]
                    answered.append(
                        BatchResult(sent=[], failed=[], unconfirmed=unconfirmed, returned=[])
                    )
                    stop = stop or _stopped(kind)
                    continue
                if isinstance(answer, BaseException):  # a fault, not a channel error
                    fault = fault or answer
                    continue  # its batch stays "sending": reconciled as unconfirmed
                answered.append(answer.result)
                if answer.result.sent:
                    progress.sent_any = True
                progress.refusals = answer.progress.refusals
                stop = stop or answer.stop
                idle.append(ready)
            # The next batches go out before these are settled, so no process waits for
            # this one's database round trips.
            hand_out(idle)
            for result in answered:
                finish_batch(engine=engine, result=result)
    if fault is not None:
        raise fault
    if stop is not None:
        raise stop


_STOPPED_MID_BATCH = "the sending process stopped mid-batch; the relay may or may not have it"


def _returned(batch: list[Outgoing]) -> BatchResult:
    return BatchResult(sent=[], failed=[], unconfirmed=[], returned=[o.delivery_id for o in batch])


def _stopped(kind: str) -> TransientError:
    return TransientError(
        f"a {kind} sending process stopped; its batch is left unconfirmed and the rest "
        "will be sent on the next try",
        code=f"{kind}:sender-stopped",
        hint="the next try sends what is still pending",
    )


class _SendingProcesses:
    """``count`` forked processes, each sending the batches it is given over a connection
    of its own and answering each with an :class:`_Answer`.

    Forked (``os.fork``: a Celery pool process may not start ``multiprocessing`` children),
    so the sender (its DKIM key) and the content are inherited, never pickled; only the
    batches and answers cross the pipes.  Each process holds no other end of any pipe but
    its own, so when this process dies every sending process reads end-of-file and exits
    after the batch it is sending.
    """

    def __init__(
        self, count: int, *, sender: BulkSender, build: Callable[[Outgoing], Any], kind: str
    ) -> None:
        self.pipes: list[Connection] = []
        self.pids: list[int] = []
        try:
            for _ in range(count):
                mine, theirs = multiprocessing.Pipe()
                with warnings.catch_warnings():
                    # Python 3.12 warns about fork() beside threads; the child runs only
                    # _serve on its own thread and touches no lock the others may hold.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # the sending process: never returns into the caller's code
                    code = 1
                    try:
                        signal.signal(signal.SIGTERM, signal.SIG_DFL)
                        signal.signal(signal.SIGINT, signal.SIG_DFL)
                        _serve(theirs, [*self.pipes, mine], sender, build, kind)
                        code = 0
                    finally:
                        os._exit(code)
                theirs.close()
                self.pipes.append(mine)
                self.pids.append(pid)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> _SendingProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.close()  # end-of-file: each process says QUIT and exits
        deadline = time.monotonic() + 30
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):  # already reaped
                while os.waitpid(pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        break
                    time.sleep(0.01)
        self.pids.clear()


def _serve(
    pipe: Connection,
    inherited: list[Connection],
    sender: BulkSender,
    build: Callable[[Outgoing], Any],
    kind: str,
) -> None:
    """A sending process: send each batch that comes down ``pipe`` until end-of-file."""
    for other in inherited:
        other.close()
    with (
        contextlib.ExitStack() as stack,
        ThreadPoolExecutor(1, f"{kind}-build") as builder,
    ):
        opened: list[BulkSession] = []

        def session() -> BulkSession:
            if not opened:
                opened.append(stack.enter_context(sender.connect()))
            return opened[0]

        while True:
            try:
                batch, progress = pipe.recv()
            except (EOFError, OSError):
                return
            try:
                answer: _Answer | BaseException = _send_batch(
                    session, build, builder, batch, progress
                )
            except Exception as error:  # a fault: the parent raises it
                answer = RuntimeError(f"{type(error).__name__}: {error}")
            pipe.send(answer)
            if isinstance(answer, _Answer) and answer.stop is not None and opened:
                stack.close()  # a failed connection is not reused
                opened.clear()


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """Run the body with the interpreter's thread switch interval set to ``seconds``."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def reconcile_bulk_post(*, engine: Engine, claim: Claim, policy: Policy) -> None:
    """A worker died while sending: its in-flight batch becomes unconfirmed (the channel
    cannot be asked), and the post is rescheduled to send what is still pending."""
    doubtful = abandon_sending(engine=engine, post_id=claim.post_id)
    if doubtful:
        log.warning(
            "post %s: %s message(s) left unconfirmed by a stopped worker", claim.post_id, doubtful
        )
    record_reconciliation(engine=engine, claim=claim, found=None, error=None, policy=policy)
