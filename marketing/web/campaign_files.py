"""Campaign files given as text (an upload or an edit in the browser, or the JSON API).

A thin adapter over :mod:`campaigns`, which reads files from disk: the text is checked and
planned with :func:`campaigns.read_campaign` and :func:`campaigns.plan_campaign`, stored with
:func:`campaigns.lifecycle.store_plan`, and written to the campaign's file so that the web
and ``marketing campaign apply FILE`` always agree on what a campaign says:

* the web app writes only inside the data folder: a campaign given or edited in the browser
  (or through the API) is kept in ``<data folder>/campaigns/<slug>.yaml``, and template files
  it names are read from that folder.  A campaign applied from the command line keeps its
  own file untouched: an edit in the browser is written to the data folder instead, and
  becomes the campaign's source (``Campaign.source_path``) until the file is applied again;
* media are always relative to the media folder (``MARKETING_MEDIA_DIR``).

Checking runs templates that people write, so it is bounded: the text is checked first in a
worker process (:func:`marketing.bounded.run_bounded`) with :data:`CHECK_SECONDS` and
:data:`CHECK_MEMORY_BYTES`, at most :data:`CONCURRENT_CHECKS` at a time, and only a text that
passes there is checked again here to build the plan.  A check that passes a bound is a
problem for the person who wrote it, never a frozen or exhausted server.

Approval is four-eyes: whoever applied a change since the campaign's last approval (or created
it, if it was never approved) cannot approve it (:func:`approval_refusal`).  And it approves
only what the approver was shown (:func:`campaigns.approval_hash`); when an approval comes too
late, :func:`last_change` says who changed the campaign, when and how much.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import CampaignStateError, lifecycle, read_campaign
from campaigns.lifecycle import (
    FOUR_EYES_APPLIED,
    FOUR_EYES_CREATED,
    ApplySummary,
    PostChanges,
    four_eyes_refusal,
    post_changes,
    store_plan,
)
from campaigns.planning import Plan
from marketing.besttimes import schedule_snapshot
from marketing.bounded import BoundExceeded, TimeUp, run_bounded
from marketing.db import make_engine
from marketing.models import AuditLog, Campaign, User
from marketing.plan_reference import plan_from_database
from marketing.problems import InvalidInput, Problem
from marketing.settings import Settings

MAX_CAMPAIGN_BYTES = 2_000_000
CHECK_SECONDS = 30.0  # a campaign of a year of daily posts to every community checks in ~2 s
CHECK_MEMORY_BYTES = 512 * 1024 * 1024
CONCURRENT_CHECKS = 2  # bounded checks at once in one web process (one per core)
_checks = threading.BoundedSemaphore(CONCURRENT_CHECKS)
# Called in the waiting thread once a bounded check's worker runs: lets a test or a
# measurement know that a check is in progress.
check_started: list[Callable[[], None]] = []
APPLY_ACTION = lifecycle.APPLY_ACTION  # the audit log's actions (the four-eyes rule reads them)
APPROVE_ACTION = lifecycle.APPROVE_ACTION


def campaign_folder(settings: Settings) -> Path:
    """Where campaigns first given through the web are kept."""
    return settings.data_dir / "campaigns"


def decode_upload(data: bytes, name: str) -> str:
    """The text of an uploaded campaign file; InvalidInput if it is too large or not UTF-8."""
    if len(data) > MAX_CAMPAIGN_BYTES:
        raise InvalidInput(
            [Problem(name, None, None, "", f"is larger than {MAX_CAMPAIGN_BYTES:,} bytes")]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Problem(name, None, None, "", "is not UTF-8 text", "save the file as UTF-8")]
        ) from exc


def _target(slug: str, settings: Settings) -> Path:
    """The file a web edit of campaign ``slug`` is written to: always in the data folder
    (``slug`` is a checked slug, so it names a file directly in that folder)."""
    return campaign_folder(settings) / f"{slug}.yaml"


def _differs(path: Path, text: str) -> bool:
    """Whether file ``path`` is missing or holds something other than ``text``."""
    try:
        return path.is_symlink() or path.read_text(encoding="utf-8") != text
    except (OSError, UnicodeDecodeError):
        return True


@dataclass
class CheckedCampaign:
    """A campaign text that has no problem: its plan, its file, and what applying changes."""

    text: str
    path: Path
    plan: Plan
    changes: PostChanges
    campaign: Campaign | None  # the stored campaign of the same slug, if any


def _bound_problem(message: str, hint: str) -> InvalidInput:
    return InvalidInput([Problem("campaign.yaml", None, None, "", message, hint)])


def _problems_in_worker(url: str, text: str, settings: Settings, now: datetime) -> list[Problem]:
    """In the worker process: the problems of campaign ``text`` (empty if none)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            try:
                check_campaign_text(
                    session=session, text=text, settings=settings, now=now, bounded=False
                )
            except InvalidInput as exc:
                return list(exc.problems)
            except TimeUp as exc:
                if exc.problem is not None:
                    return [exc.problem]
                raise
            finally:
                session.rollback()
        return []
    finally:
        engine.dispose()


def _started() -> None:
    for hook in check_started:
        hook()


def check_within_bounds(*, session: Session, text: str, settings: Settings, now: datetime) -> None:
    """Check ``text`` in a worker process bounded in time and memory; InvalidInput with its
    problems, or with the bound it passed."""
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return  # a private in-memory database cannot be opened by another process
    if not _checks.acquire(timeout=CHECK_SECONDS):
        raise _bound_problem(
            "ระบบกำลังตรวจแคมเปญอื่นอยู่หลายรายการ จึงยังตรวจแคมเปญนี้ไม่ได้",
            "รอสักครู่แล้วกดตรวจอีกครั้ง",
        )
    try:
        problems = run_bounded(
            _problems_in_worker,
            url.render_as_string(hide_password=False),
            text,
            settings,
            now,
            seconds=CHECK_SECONDS,
            memory_bytes=CHECK_MEMORY_BYTES,
            on_start=_started,
        )
    except BoundExceeded as exc:
        if exc.kind == "time":
            if exc.problem is not None:
                raise InvalidInput([exc.problem]) from None
            raise _bound_problem(
                f"การตรวจแคมเปญใช้เวลาเกิน {CHECK_SECONDS:.0f} วินาที จึงหยุดตรวจ",
                "ตรวจคำสั่งวนซ้ำ (for) ในเทมเพลตที่ซ้อนกันหลายชั้น หรือลดจำนวนโพสต์ แล้วตรวจอีกครั้ง",
            ) from None
        if exc.kind == "memory":
            raise _bound_problem(
                f"การตรวจแคมเปญใช้หน่วยความจำเกิน {CHECK_MEMORY_BYTES // 2**20:,} MB จึงหยุดตรวจ",
                "ลดขนาดข้อความหรือรายการที่เทมเพลตสร้าง หรือลดจำนวนโพสต์ แล้วตรวจอีกครั้ง",
            ) from None
        raise _bound_problem(
            "ตรวจแคมเปญไม่สำเร็จเพราะข้อผิดพลาดภายในระบบ",
            "ลองอีกครั้ง ถ้ายังไม่ได้ให้แจ้งผู้ดูแลระบบ",
        ) from exc
    finally:
        _checks.release()
    if problems:
        raise InvalidInput(problems)


def check_campaign_text(
    *,
    session: Session,
    text: str,
    settings: Settings,
    now: datetime | None = None,
    bounded: bool = True,
) -> CheckedCampaign:
    """Check and plan campaign ``text`` without writing anything; InvalidInput with every
    problem (each at its line) if it has any.  ``bounded``: check in a worker process first
    (see the module)."""
    now = now or datetime.now(UTC)
    if "\x00" in text:
        raise InvalidInput(
            [Problem("campaign.yaml", None, None, "", "contains a NUL character (not text)")]
        )
    if bounded:
        check_within_bounds(session=session, text=text, settings=settings, now=now)
    folder = campaign_folder(settings)
    root = settings.media_root
    first = read_campaign(text, file="campaign.yaml", base_dir=folder, media_root=root)
    path = _target(first.slug, settings)
    definition = read_campaign(text, file=str(path), base_dir=path.parent, media_root=root)
    plan = plan_from_database(
        session=session,
        definition=definition,
        now=now,
        best_times=lambda: schedule_snapshot(session=session, now=now),
    )
    campaign = session.scalars(select(Campaign).where(Campaign.slug == plan.slug)).first()
    changes = post_changes(
        session=session,
        campaign_id=campaign.id if campaign else None,
        posts=plan.posts,
        now=now,
    )
    return CheckedCampaign(text=text, path=path, plan=plan, changes=changes, campaign=campaign)


def apply_campaign_text(
    *,
    session: Session,
    text: str,
    user: User,
    settings: Settings,
    now: datetime | None = None,
) -> ApplySummary:
    """Store campaign ``text`` as a draft with its posts and write it to its file, in the
    caller's transaction; InvalidInput or CampaignStateError (nothing written) if it cannot."""
    now = now or datetime.now(UTC)
    checked = check_campaign_text(session=session, text=text, settings=settings, now=now)
    summary = store_plan(session=session, plan=checked.plan, actor=user.username, now=now)
    if summary.changed or _differs(checked.path, text):
        try:
            checked.path.parent.mkdir(parents=True, exist_ok=True)
            if checked.path.is_symlink():  # never write through a link out of the folder
                checked.path.unlink()
            checked.path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CampaignStateError(
                f"cannot write the campaign file {checked.path}: {exc.strerror}",
                "ask an administrator to make the folder writable by the web app",
            ) from exc
    return summary


@dataclass(frozen=True)
class CampaignChange:
    """One change applied to a campaign through the web app or the API (from the audit log)."""

    actor: str
    at: datetime
    added: int
    updated: int
    cancelled: int


def last_change(*, session: Session, slug: str) -> CampaignChange | None:
    """The latest change applied to ``slug`` through the web app or the API, if any."""
    entry = session.scalars(
        select(AuditLog)
        .where(
            AuditLog.object_type == "campaign",
            AuditLog.object_id == slug,
            AuditLog.action == APPLY_ACTION,
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    ).first()
    if entry is None:
        return None
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    counts = {k: int(entry.detail.get(k) or 0) for k in ("added", "updated", "cancelled")}
    return CampaignChange(actor=entry.actor, at=at, **counts)


def approval_refusal(
    *, session: Session, campaign: Campaign, user: User, _: Callable[[str], str] = str
) -> str | None:
    """Why ``user`` may not approve ``campaign`` (four-eyes), or None if they may; ``_``
    translates (the API answers in the code's English)."""
    code = four_eyes_refusal(session=session, campaign=campaign, actor=user.username)
    if code == FOUR_EYES_APPLIED:
        return _("you applied a change to this campaign: another approver must approve it")
    if code == FOUR_EYES_CREATED:
        return _("you created this campaign: another approver must approve it")
    return None
