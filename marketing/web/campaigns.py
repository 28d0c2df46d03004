"""Campaign pages: the list, upload or edit with problems shown at their lines, the plan
preview per channel, and approve / pause / resume / cancel."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import (
    ApprovalOutdated,
    CampaignStateError,
    approve_campaign,
    campaign_report,
    cancel_campaign,
    lifecycle,
    list_campaigns,
    pause_campaign,
    resume_campaign,
)
from campaigns.lifecycle import APPROVAL_HASH_LENGTH
from marketing.campaign_versions import approval_diff
from marketing.conventions import SLUG_PATTERN
from marketing.models import Campaign, CampaignStatus, ChannelKind, Community, Post, Role, User
from marketing.problems import InvalidInput, Problem
from marketing.queries import campaign_by_slug
from marketing.web.campaign_files import (
    APPROVE_ACTION,
    MAX_CAMPAIGN_BYTES,
    CheckedCampaign,
    apply_campaign_text,
    approval_refusal,
    check_campaign_text,
    decode_upload,
    last_change,
)
from marketing.web.deps import (
    DB,
    Approver,
    Editor,
    Viewer,
    now_of,
    settings_of,
)
from marketing.web.rendering import clock_for, flash, gettext_for, render
from marketing.web.staff import audit, audit_apply

router = APIRouter(include_in_schema=False)

PREVIEW_PER_CHANNEL = 200  # rendered posts shown per channel; the counts are always whole
DETAIL_PER_CHANNEL = 100
CHANNEL_ORDER = [c for c in ChannelKind]


@dataclass
class SourceLine:
    """One line of a campaign file as the editor shows it, with the problems found there."""

    number: int
    text: str
    problems: list[Problem] = field(default_factory=list)


def source_listing(text: str, problems: list[Problem]) -> tuple[list[SourceLine], list[Problem]]:
    """The file's numbered lines with their problems, and the problems that have no line."""
    lines = [SourceLine(n, line) for n, line in enumerate(text.splitlines() or [""], start=1)]
    loose = []
    for problem in problems:
        if problem.line is not None and 1 <= problem.line <= len(lines):
            lines[problem.line - 1].problems.append(problem)
        else:
            loose.append(problem)
    return lines, loose


def _editor_page(
    request: Request,
    user: User,
    *,
    text: str,
    problems: list[Problem] | None = None,
    error: str | None = None,
    campaign: Campaign | None = None,
    status_code: int = 200,
) -> Response:
    listing, loose = source_listing(text, problems or [])
    return render(
        request,
        "campaign_edit.html",
        user=user,
        text=text,
        problems=problems or [],
        listing=listing,
        loose=loose,
        error=error,
        campaign=campaign,
        status_code=status_code,
        max_bytes=MAX_CAMPAIGN_BYTES,
    )


@router.get("/campaigns")
def campaigns_page(
    request: Request,
    user: Viewer,
    session: DB,
) -> Response:
    rows = list_campaigns(session=session)
    return render(request, "campaigns.html", user=user, rows=rows)


@router.get("/campaigns/new")
def new_campaign(request: Request, user: Editor) -> Response:
    return _editor_page(request, user, text="")


def _submitted_text(yaml: str, file: UploadFile | None) -> str:
    if file is not None and file.filename:
        data = file.file.read(MAX_CAMPAIGN_BYTES + 1)
        return decode_upload(data, file.filename)
    return yaml.replace("\r\n", "\n")


def _grouped(posts: list[Any], channel_of: Any) -> dict[ChannelKind, list[Any]]:
    groups: dict[ChannelKind, list[Any]] = defaultdict(list)
    for post in posts:
        groups[channel_of(post)].append(post)
    return {c: groups[c] for c in CHANNEL_ORDER if c in groups}


# Handlers are plain ``def``: FastAPI runs them in its thread pool, so a slow check never holds
# the event loop (and other people's requests) -- checks are bounded besides, see
# marketing.web.campaign_files.
@router.post("/campaigns/check")
def check_campaign(
    request: Request,
    user: Editor,
    session: DB,
    yaml: Annotated[str, Form(max_length=MAX_CAMPAIGN_BYTES)] = "",
    file: UploadFile | None = None,
) -> Response:
    text = yaml
    try:
        text = _submitted_text(yaml, file)
        checked = check_campaign_text(
            session=session, text=text, settings=settings_of(request), now=now_of(request)
        )
    except InvalidInput as exc:
        return _editor_page(request, user, text=text, problems=exc.problems, status_code=422)
    finally:
        session.rollback()
    return _preview_page(request, user, checked)


def _preview_page(request: Request, user: User, checked: CheckedCampaign) -> Response:
    plan = checked.plan
    posts = sorted(plan.posts, key=lambda p: (p.scheduled_at, p.community_slug, p.channel))
    return render(
        request,
        "campaign_preview.html",
        user=user,
        checked=checked,
        plan=plan,
        definition=plan.definition,
        by_channel=_grouped(posts, lambda p: ChannelKind(p.channel)),
        per_channel=PREVIEW_PER_CHANNEL,
        changes=checked.changes,
    )


@router.post("/campaigns/apply")
def apply_campaign(
    request: Request,
    user: Editor,
    session: DB,
    yaml: Annotated[str, Form(max_length=MAX_CAMPAIGN_BYTES)],
) -> Response:
    text = yaml.replace("\r\n", "\n")
    try:
        summary = apply_campaign_text(
            session=session,
            text=text,
            user=user,
            settings=settings_of(request),
            now=now_of(request),
        )
    except InvalidInput as exc:
        session.rollback()
        return _editor_page(request, user, text=text, problems=exc.problems, status_code=422)
    except CampaignStateError as exc:
        session.rollback()
        return _editor_page(request, user, text=text, error=str(exc), status_code=409)
    audit_apply(session=session, summary=summary, user=user, via="web")
    session.commit()
    _ = gettext_for(user)
    if not summary.changed:
        flash(request, _("Nothing changed: the campaign is already as the file says."))
    else:
        flash(
            request,
            _(
                "Campaign saved as a draft: %(added)s posts added, %(updated)s updated, "
                "%(cancelled)s cancelled. It is published only after an approver approves it."
            )
            % {"added": summary.added, "updated": summary.updated, "cancelled": summary.cancelled},
        )
    return RedirectResponse(f"/campaigns/{summary.slug}", status_code=303)


def _campaign(session: Session, slug: str) -> Campaign:
    campaign = campaign_by_slug(session=session, slug=slug)
    if campaign is None:
        raise HTTPException(404, f"no campaign {slug}")
    return campaign


@router.get("/campaigns/{slug}")
def campaign_page(
    request: Request,
    user: Viewer,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    campaign = _campaign(session, slug)
    report = campaign_report(session=session, slug=slug, upcoming=10)
    rows = session.execute(
        select(Post, Community.name_th)
        .join(Community, Community.id == Post.community_id)
        .where(Post.campaign_id == campaign.id)
        .order_by(Post.scheduled_at, Community.slug, Post.id)
    ).all()
    refusal = (
        approval_refusal(session=session, campaign=campaign, user=user, _=gettext_for(user))
        if user.role.allows(Role.APPROVER)
        else None
    )
    # The approve form carries what this page shows; the approval is refused if it changed.
    shown = lifecycle.approval_hash(session=session, slug=slug)
    # What changed since the last approval, for a draft (the approver's view).
    draft = campaign.status == CampaignStatus.DRAFT
    diff = approval_diff(session=session, campaign=campaign) if draft else None
    return render(
        request,
        "campaign.html",
        user=user,
        campaign=campaign,
        report=report,
        by_channel=_grouped(list(rows), lambda row: row[0].channel),
        per_channel=DETAIL_PER_CHANNEL,
        refusal=refusal,
        approval_hash=shown,
        diff=diff,
    )


@router.get("/campaigns/{slug}/edit")
def edit_campaign(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    campaign = _campaign(session, slug)
    return _editor_page(request, user, text=campaign.source_text, campaign=campaign)


@router.get("/campaigns/{slug}/source")
def campaign_source(
    user: Viewer,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    campaign = _campaign(session, slug)
    return PlainTextResponse(
        campaign.source_text,
        media_type="text/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}.yaml"'},
    )


def _act(
    request: Request,
    session: Session,
    user: User,
    slug: str,
    action: str,
    **detail: Any,
) -> Response:
    audit(
        session=session,
        user=user,
        action=f"campaign.{action}",
        object_type="campaign",
        object_id=slug,
        **detail,
    )
    session.commit()
    return RedirectResponse(f"/campaigns/{slug}", status_code=303)


def _refused(request: Request, session: Session, slug: str, message: str) -> Response:
    session.rollback()
    flash(request, message, "error")
    return RedirectResponse(f"/campaigns/{slug}", status_code=303)


def _outdated(request: Request, session: Session, user: User, slug: str) -> str:
    """Why an approval came too late, in the user's language: who changed what, and when."""
    _ = gettext_for(user)
    change = last_change(session=session, slug=slug)
    if change is None:
        return str(
            _("the campaign changed after you opened its page; look at it again, then approve")
        )
    return str(
        _(
            "%(who)s applied a new version at %(when)s (%(added)s posts added, %(updated)s "
            "changed, %(cancelled)s cancelled) after you opened its page; look at it again, "
            "then approve"
        )
        % {
            "who": change.actor,
            "when": clock_for(request, user).when(change.at),
            "added": change.added,
            "updated": change.updated,
            "cancelled": change.cancelled,
        }
    )


@router.post("/campaigns/{slug}/approve")
def approve(
    request: Request,
    user: Approver,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    approval_hash: Annotated[str, Form(max_length=APPROVAL_HASH_LENGTH)] = "",
) -> Response:
    _ = gettext_for(user)
    campaign = _campaign(session, slug)
    refusal = approval_refusal(session=session, campaign=campaign, user=user, _=_)
    if refusal:
        return _refused(request, session, slug, _("Not approved: %(why)s.") % {"why": refusal})
    try:
        approve_campaign(session=session, slug=slug, actor=user.username, shown_hash=approval_hash)
    except ApprovalOutdated:
        why = _outdated(request, session, user, slug)
        return _refused(request, session, slug, _("Not approved: %(why)s.") % {"why": why})
    except InvalidInput as exc:
        lines = "; ".join(str(p) for p in exc.problems[:5])
        return _refused(request, session, slug, _("Not approved: %(why)s.") % {"why": lines})
    except CampaignStateError as exc:
        return _refused(request, session, slug, _("Not approved: %(why)s.") % {"why": exc})
    flash(request, _("Approved: its posts go out at their times."))
    return _act(request, session, user, slug, APPROVE_ACTION.removeprefix("campaign."))


@router.post("/campaigns/{slug}/pause")
def pause(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    _ = gettext_for(user)
    try:
        pause_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(request, session, slug, str(exc))
    flash(request, _("Paused: nothing more is published until it is resumed."))
    return _act(request, session, user, slug, "pause")


@router.post("/campaigns/{slug}/resume")
def resume(
    request: Request,
    user: Approver,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    _ = gettext_for(user)
    try:
        resume_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(request, session, slug, str(exc))
    flash(request, _("Resumed: posts whose time has passed go out now."))
    return _act(request, session, user, slug, "resume")


@router.post("/campaigns/{slug}/cancel")
def cancel(
    request: Request,
    user: Approver,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    _ = gettext_for(user)
    try:
        count = cancel_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(request, session, slug, str(exc))
    flash(request, _("Cancelled: %(count)s posts will not be published.") % {"count": count})
    return _act(request, session, user, slug, "cancel", posts_cancelled=count)
