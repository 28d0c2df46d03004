"""The JSON API (``/api/v1``) for scripts: campaigns, posts, communities and reports, behind the
same roles as the pages.  Its OpenAPI description is at ``/api/openapi.json``.

Scripts send ``Authorization: Bearer <token>`` (``marketing users token USER``).  A browser
session works too; its state-changing calls must send the session's CSRF token as
``X-CSRF-Token``.  Errors are ``{"detail": ...}``; a campaign with problems answers 422 with
every problem at its line.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import (
    ApprovalOutdated,
    CampaignStateError,
    approve_campaign,
    cancel_campaign,
    lifecycle,
    list_campaigns,
    pause_campaign,
    resume_campaign,
)
from campaigns.lifecycle import APPROVAL_HASH_LENGTH
from marketing.conventions import SLUG_PATTERN
from marketing.models import (
    Campaign,
    ChannelAccount,
    ChannelKind,
    Community,
    Highlight,
    Post,
    PostState,
    Role,
    Subscriber,
    User,
)
from marketing.post_edits import MAX_TEXT, TEXT_KEYS, change_text, reschedule, skip_occurrence
from marketing.problems import InvalidInput, Problem
from marketing.publishing import PostActionRefused, cancel_post, resolve_published, retry_post
from marketing.queries import PostFilter, PostRow, campaign_by_slug, find_post, find_posts
from marketing.reports import (
    SORT_KEYS,
    CampaignReport,
    CommunityReport,
    ProgrammeOverview,
    ReportSubjectNotFound,
    campaign_report,
    community_report,
    programme_overview,
)
from marketing.web.campaign_files import (
    APPROVE_ACTION,
    MAX_CAMPAIGN_BYTES,
    apply_campaign_text,
    approval_refusal,
    check_campaign_text,
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
from marketing.web.posts import audit_text_change
from marketing.web.report_cache import Document, DocumentCache, database_state
from marketing.web.reports import EARLIEST, LATEST, MAX_DAYS, report_period
from marketing.web.staff import audit, audit_apply

# Declares the bearer scheme in the OpenAPI description; the check itself is in deps.
bearer = HTTPBearer(auto_error=False, description="a token from `marketing users token USER`")
router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(bearer)])

MAX_ID = 2**31 - 1
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="lower-case letters, digits and '-'")]
PostId = Annotated[int, Path(ge=1, le=MAX_ID)]


class ErrorOut(BaseModel):
    detail: str


class ProblemOut(BaseModel):
    """One problem of a campaign file, where it is."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    hint: str | None

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(
            file=problem.file.rsplit("/", 1)[-1],
            line=problem.line,
            column=problem.column,
            field=problem.field,
            message=problem.message,
            hint=problem.hint,
        )


class ProblemsOut(BaseModel):
    detail: str
    problems: list[ProblemOut]


class Me(BaseModel):
    username: str
    display_name: str
    role: Role
    language: str


class CampaignOut(BaseModel):
    slug: str
    name: str
    description: str
    status: str
    timezone: str
    window_start: datetime | None
    window_end: datetime | None
    created_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    posts: dict[str, int] = Field(description="posts by state")
    approval_hash: str = Field(
        description="What approving approves: a hash of the campaign's source and every "
        "post's time, state and rendered content, as this answer shows them.  Send it back "
        "to `POST /campaigns/{slug}/approve`; the approval is refused (409) if the campaign "
        "changed in between."
    )

    @classmethod
    def of(cls, campaign: Campaign, counts: dict[str, int], approval_hash: str) -> CampaignOut:
        return cls(
            slug=campaign.slug,
            name=campaign.name,
            description=campaign.description,
            status=campaign.status.value,
            timezone=campaign.timezone,
            window_start=campaign.window_start,
            window_end=campaign.window_end,
            created_by=campaign.created_by,
            approved_by=campaign.approved_by,
            approved_at=campaign.approved_at,
            posts=counts,
            approval_hash=approval_hash,
        )


class ApprovalIn(BaseModel):
    approval_hash: str = Field(
        min_length=APPROVAL_HASH_LENGTH,
        max_length=APPROVAL_HASH_LENGTH,
        pattern="^[0-9a-f]+$",
        description="The campaign's `approval_hash` from `GET /campaigns/{slug}` when you "
        "looked at it: only that version is approved.",
    )


class CampaignIn(BaseModel):
    yaml: str = Field(max_length=MAX_CAMPAIGN_BYTES, description="the campaign file's text")

    @field_validator("yaml")
    @classmethod
    def _text(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("contains a NUL character (not text)")
        return value.replace("\r\n", "\n")


class ChangesOut(BaseModel):
    add: int
    update: int
    cancel: int
    unchanged: int
    kept: int


class CheckOut(BaseModel):
    ok: bool
    slug: str | None
    posts: int
    communities: list[str]
    notes: list[str]
    changes: ChangesOut | None
    problems: list[ProblemOut]


class ApplyOut(BaseModel):
    slug: str
    status: str
    created: bool
    added: int
    updated: int
    cancelled: int
    unchanged: int
    kept: int
    back_to_draft: bool
    notes: list[str]


class PostOut(BaseModel):
    id: int
    campaign: str
    community: str
    channel: str
    account: str
    state: str
    scheduled_at: datetime
    published_at: datetime | None
    permalink: str | None
    external_id: str | None
    attempts: int
    last_error: str | None
    action_hint: str | None
    content: dict[str, Any]


class ResolveIn(BaseModel):
    permalink: str = Field(
        max_length=1000, pattern=r"^https?://\S+$", description="where the post is on the channel"
    )


class AccountOut(BaseModel):
    slug: str
    channel: str
    external_id: str
    display_name: str
    community: str | None
    health: str
    health_message: str | None
    health_checked_at: datetime | None


class CommunityOut(BaseModel):
    slug: str
    name_th: str
    name_en: str
    province: str
    description: str
    tags: list[str]
    timezone: str
    website: str | None
    subscribers: int = Field(description="subscribers who have not unsubscribed")
    unsubscribed: int
    highlights: int
    accounts: list[AccountOut]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
REFUSED: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


def _refused(session: Session, status: int, message: str) -> JSONResponse:
    session.rollback()
    return JSONResponse({"detail": message}, status_code=status)


@router.get("/me", response_model=Me)
def me(user: Viewer) -> Me:
    """Who the token or session belongs to."""
    return Me(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        language=user.language,
    )


def _campaign_out(session: Session, campaign: Campaign) -> CampaignOut:
    counts = dict(
        session.execute(
            select(Post.state, func.count())
            .where(Post.campaign_id == campaign.id)
            .group_by(Post.state)
        ).all()
    )
    shown = lifecycle.approval_hash(session=session, slug=campaign.slug)
    return CampaignOut.of(campaign, {s.value: n for s, n in counts.items()}, shown)


def _campaign(session: Session, slug: str) -> Campaign:
    campaign = campaign_by_slug(session=session, slug=slug)
    if campaign is None:
        raise HTTPException(404, f"no campaign {slug!r}")
    return campaign


@router.get("/campaigns", response_model=list[CampaignOut])
def campaigns(user: Viewer, session: DB) -> list[CampaignOut]:
    """Every campaign with its posts by state."""
    return [
        CampaignOut.of(
            c,
            {s.value: n for s, n in counts.items()},
            lifecycle.approval_hash(session=session, slug=c.slug),
        )
        for c, counts in list_campaigns(session=session)
    ]


@router.get("/campaigns/{slug}", response_model=CampaignOut, responses=NOT_FOUND)
def campaign(slug: Slug, user: Viewer, session: DB) -> Any:
    """One campaign."""
    return _campaign_out(session, _campaign(session, slug))


@router.post("/campaigns/check", response_model=CheckOut)
def check(
    body: CampaignIn,
    request: Request,
    user: Editor,
    session: DB,
) -> CheckOut:
    """Check and plan a campaign file without storing anything."""
    try:
        checked = check_campaign_text(
            session=session, text=body.yaml, settings=settings_of(request), now=now_of(request)
        )
    except InvalidInput as exc:
        return CheckOut(
            ok=False,
            slug=None,
            posts=0,
            communities=[],
            notes=[],
            changes=None,
            problems=[ProblemOut.of(p) for p in exc.problems],
        )
    finally:
        session.rollback()
    changes = checked.changes
    return CheckOut(
        ok=True,
        slug=checked.plan.slug,
        posts=len(checked.plan.posts),
        communities=checked.plan.communities,
        notes=checked.plan.notes,
        changes=ChangesOut(
            add=len(changes.inserts),
            update=len(changes.updates),
            cancel=len(changes.cancels),
            unchanged=changes.unchanged,
            kept=changes.kept,
        ),
        problems=[],
    )


class PreviewOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]
    previews: list[dict[str, Any]] = Field(
        description="the first posts of each channel as they will look: the Facebook card "
        "(desktop and phone: text before See more), the YouTube card (title cut at 100), "
        "the e-mail built for a real subscriber of the community"
    )


@router.post("/campaigns/preview", response_model=PreviewOut)
def preview(
    body: CampaignIn,
    request: Request,
    user: Editor,
    session: DB,
) -> PreviewOut:
    """The posts of a campaign file as their channels will show them; stores nothing."""
    from marketing.web.composer import previews

    try:
        checked = check_campaign_text(
            session=session, text=body.yaml, settings=settings_of(request), now=now_of(request)
        )
        shown = previews(session=session, plan=checked.plan, settings=settings_of(request))
    except InvalidInput as exc:
        return PreviewOut(ok=False, problems=[ProblemOut.of(p) for p in exc.problems], previews=[])
    finally:
        session.rollback()
    return PreviewOut(ok=True, problems=[], previews=[p.as_dict() for p in shown])


@router.post(
    "/campaigns",
    response_model=ApplyOut,
    responses={422: {"model": ProblemsOut}, 409: {"model": ErrorOut}},
)
def apply(
    body: CampaignIn,
    request: Request,
    user: Editor,
    session: DB,
) -> Any:
    """Store a campaign file as a draft with its posts (or update it); it is published only
    after an approver approves it."""
    try:
        summary = apply_campaign_text(
            session=session,
            text=body.yaml,
            user=user,
            settings=settings_of(request),
            now=now_of(request),
        )
    except InvalidInput as exc:
        session.rollback()
        out = ProblemsOut(
            detail=f"{len(exc.problems)} problem(s); nothing was stored",
            problems=[ProblemOut.of(p) for p in exc.problems],
        )
        return JSONResponse(out.model_dump(), status_code=422)
    except CampaignStateError as exc:
        return _refused(session, 409, str(exc))
    audit_apply(session=session, summary=summary, user=user, via="api")
    session.commit()
    return ApplyOut(
        slug=summary.slug,
        status=summary.status.value,
        created=summary.created,
        added=summary.added,
        updated=summary.updated,
        cancelled=summary.cancelled,
        unchanged=summary.unchanged,
        kept=summary.kept,
        back_to_draft=summary.back_to_draft,
        notes=summary.notes,
    )


def _moved(session: Session, user: User, slug: str, action: str, **detail: Any) -> CampaignOut:
    audit(
        session=session,
        user=user,
        action=action,
        object_type="campaign",
        object_id=slug,
        via="api",
        **detail,
    )
    session.commit()
    return _campaign_out(session, _campaign(session, slug))


@router.post("/campaigns/{slug}/approve", response_model=CampaignOut, responses=REFUSED)
def approve(slug: Slug, body: ApprovalIn, user: Approver, session: DB) -> Any:
    """Approve a draft as you saw it: send the `approval_hash` of `GET /campaigns/{slug}`.
    Refused (409) if the campaign changed since (say who changed it and look again), if it
    has problems now, or if you applied a change to it yourself (four-eyes)."""
    found = _campaign(session, slug)
    refusal = approval_refusal(session=session, campaign=found, user=user)
    if refusal:
        return _refused(session, 409, refusal)
    try:
        approve_campaign(
            session=session, slug=slug, actor=user.username, shown_hash=body.approval_hash
        )
    except ApprovalOutdated as exc:
        change = last_change(session=session, slug=slug)
        what = (
            f": {change.actor} applied a new version at {change.at.isoformat()} "
            f"({change.added} posts added, {change.updated} changed, {change.cancelled} "
            "cancelled)"
            if change
            else ""
        )
        return _refused(
            session,
            409,
            f"{exc.message}{what}; GET /api/v1/campaigns/{slug}, check it, then approve "
            "with its new approval_hash",
        )
    except InvalidInput as exc:
        return _refused(session, 409, "; ".join(str(p) for p in exc.problems[:10]))
    except CampaignStateError as exc:
        return _refused(session, 409, str(exc))
    return _moved(session, user, slug, APPROVE_ACTION)


@router.post("/campaigns/{slug}/pause", response_model=CampaignOut, responses=REFUSED)
def pause(slug: Slug, user: Editor, session: DB) -> Any:
    """Stop publishing a campaign until it is resumed."""
    _campaign(session, slug)
    try:
        pause_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(session, 409, str(exc))
    return _moved(session, user, slug, "campaign.pause")


@router.post("/campaigns/{slug}/resume", response_model=CampaignOut, responses=REFUSED)
def resume(slug: Slug, user: Approver, session: DB) -> Any:
    """Publish a paused campaign again."""
    _campaign(session, slug)
    try:
        resume_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(session, 409, str(exc))
    return _moved(session, user, slug, "campaign.resume")


@router.post("/campaigns/{slug}/cancel", response_model=CampaignOut, responses=REFUSED)
def cancel(slug: Slug, user: Approver, session: DB) -> Any:
    """Cancel a campaign and every post of it not yet handed to a channel."""
    _campaign(session, slug)
    try:
        count = cancel_campaign(session=session, slug=slug)
    except CampaignStateError as exc:
        return _refused(session, 409, str(exc))
    return _moved(session, user, slug, "campaign.cancel", posts_cancelled=count)


def _post_out(row: PostRow) -> PostOut:
    post = row.post
    return PostOut(
        id=post.id,
        campaign=row.campaign_slug,
        community=row.community_slug,
        channel=post.channel.value,
        account=row.account_slug,
        state=post.state.value,
        scheduled_at=post.scheduled_at,
        published_at=post.published_at,
        permalink=post.permalink,
        external_id=post.external_id,
        attempts=post.attempt_count,
        last_error=post.last_error,
        action_hint=post.action_hint,
        content=post.content,
    )


@router.get("/posts", response_model=list[PostOut])
def posts(
    user: Viewer,
    session: DB,
    campaign: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
    community: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
    state: PostState | None = None,
    channel: ChannelKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[PostOut]:
    """Posts in time order, filtered."""
    where = PostFilter(campaign=campaign, community=community, state=state, channel=channel)
    rows = find_posts(session=session, where=where, limit=limit, offset=offset)
    return [_post_out(row) for row in rows]


def _one_post(session: Session, post_id: int) -> PostOut:
    row = find_post(session=session, post_id=post_id)
    if row is None:
        raise HTTPException(404, f"no post {post_id}")
    return _post_out(row)


@router.get("/posts/{post_id}", response_model=PostOut, responses=NOT_FOUND)
def post(post_id: PostId, user: Viewer, session: DB) -> Any:
    """One post with its rendered content."""
    return _one_post(session, post_id)


def _post_action(session: Session, user: User, post_id: int, action: str, call: Any) -> Any:
    try:
        call()
    except PostActionRefused as exc:
        status = 404 if "there is no post" in str(exc) else 409
        return _refused(session, status, str(exc))
    audit(
        session=session,
        user=user,
        action=f"post.{action}",
        object_type="post",
        object_id=post_id,
        via="api",
    )
    session.commit()
    return _one_post(session, post_id)


@router.post("/posts/{post_id}/retry", response_model=PostOut, responses=REFUSED)
def retry(post_id: PostId, user: Editor, session: DB) -> Any:
    """Send a failed, unconfirmed or waiting post out again."""
    return _post_action(
        session, user, post_id, "retry", lambda: retry_post(session=session, post_id=post_id)
    )


@router.post("/posts/{post_id}/cancel", response_model=PostOut, responses=REFUSED)
def cancel_one(
    post_id: PostId,
    user: Editor,
    session: DB,
) -> Any:
    """Cancel a post that has not gone out."""
    return _post_action(
        session, user, post_id, "cancel", lambda: cancel_post(session=session, post_id=post_id)
    )


@router.post("/posts/{post_id}/resolve", response_model=PostOut, responses=REFUSED)
def resolve(
    post_id: PostId,
    body: ResolveIn,
    user: Editor,
    session: DB,
) -> Any:
    """Record that an unconfirmed post is in fact on the channel, at ``permalink``."""
    return _post_action(
        session,
        user,
        post_id,
        "resolve",
        lambda: resolve_published(session=session, post_id=post_id, permalink=body.permalink),
    )


class PostTextIn(BaseModel):
    text: dict[str, Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        description="the content keys to rewrite and their new text: Facebook `message`; "
        "YouTube `title`, `description`; e-mail `subject`, `preheader`, `html`",
        min_length=1,
        max_length=len(TEXT_KEYS["email"]),
    )


class RescheduleIn(BaseModel):
    at: datetime = Field(description="the new time, with its offset: 2031-04-14T18:00:00+07:00")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its offset, e.g. +07:00")
        return value


def _edit_action(session: Session, user: User, post_id: int, action: str, call: Any) -> Any:
    try:
        detail = call()
    except PostActionRefused as exc:
        status = 404 if exc.code == "no_post" else 409
        return _refused(session, status, str(exc))
    audit(
        session=session,
        user=user,
        action=f"post.{action}",
        object_type="post",
        object_id=post_id,
        via="api",
        **detail,
    )
    if action == "edit":
        audit_text_change(session=session, user=user, post_id=post_id, via="api")
    session.commit()
    return _one_post(session, post_id)


@router.post("/posts/{post_id}/edit", response_model=PostOut, responses=REFUSED)
def edit_text(
    post_id: PostId, body: PostTextIn, user: Editor, session: DB, request: Request
) -> Any:
    """Rewrite the text of one waiting post (kept over re-planning); an approved campaign goes
    back to draft.  409 once the post is taken for publishing."""

    def call() -> dict[str, Any]:
        before = change_text(
            session=session,
            post_id=post_id,
            text=body.text,
            actor=user.username,
            now=now_of(request),
        )
        return {"keys": sorted(before), "before": before}

    return _edit_action(session, user, post_id, "edit", call)


@router.post("/posts/{post_id}/skip", response_model=PostOut, responses=REFUSED)
def skip(post_id: PostId, user: Editor, session: DB, request: Request) -> Any:
    """Skip one waiting post (this occurrence only; kept over re-planning)."""

    def call() -> dict[str, Any]:
        skip_occurrence(session=session, post_id=post_id, actor=user.username, now=now_of(request))
        return {}

    return _edit_action(session, user, post_id, "skip", call)


@router.post("/posts/{post_id}/reschedule", response_model=PostOut, responses=REFUSED)
def move(post_id: PostId, body: RescheduleIn, user: Editor, session: DB, request: Request) -> Any:
    """Move one waiting post to ``at`` (kept over re-planning)."""

    def call() -> dict[str, Any]:
        before = reschedule(
            session=session, post_id=post_id, when=body.at, actor=user.username, now=now_of(request)
        )
        return {
            "to": body.at.astimezone(UTC).isoformat(),
            "before": before.astimezone(UTC).isoformat(),
        }

    return _edit_action(session, user, post_id, "reschedule", call)


def _communities_out(session: Session, where: Any = None) -> list[CommunityOut]:
    query = select(Community).order_by(Community.slug)
    if where is not None:
        query = query.where(where)
    found = session.scalars(query).all()
    ids = [c.id for c in found]
    subscribers = {
        cid: (int(total), int(gone))
        for cid, total, gone in session.execute(
            select(Subscriber.community_id, func.count(), func.count(Subscriber.unsubscribed_at))
            .where(Subscriber.community_id.in_(ids))
            .group_by(Subscriber.community_id)
        )
    }
    highlights = dict(
        session.execute(
            select(Highlight.community_id, func.count())
            .where(Highlight.community_id.in_(ids))
            .group_by(Highlight.community_id)
        ).all()
    )
    accounts: dict[int, list[AccountOut]] = {}
    for account in session.scalars(
        select(ChannelAccount)
        .where(ChannelAccount.community_id.in_(ids))
        .order_by(ChannelAccount.slug)
    ):
        assert account.community_id is not None
        accounts.setdefault(account.community_id, []).append(_account_out(account, None))
    out = []
    for c in found:
        total, gone = subscribers.get(c.id, (0, 0))
        out.append(
            CommunityOut(
                slug=c.slug,
                name_th=c.name_th,
                name_en=c.name_en,
                province=c.province,
                description=c.description,
                tags=list(c.tags or []),
                timezone=c.timezone,
                website=c.website,
                subscribers=total - gone,
                unsubscribed=gone,
                highlights=int(highlights.get(c.id, 0)),
                accounts=[
                    a.model_copy(update={"community": c.slug}) for a in accounts.get(c.id, [])
                ],
            )
        )
    return out


def _account_out(account: ChannelAccount, community: str | None) -> AccountOut:
    return AccountOut(
        slug=account.slug,
        channel=account.kind.value,
        external_id=account.external_id,
        display_name=account.display_name,
        community=community,
        health=account.health.value,
        health_message=account.health_message,
        health_checked_at=account.health_checked_at,
    )


@router.get("/communities", response_model=list[CommunityOut])
def communities(user: Viewer, session: DB) -> list[CommunityOut]:
    """Every community with its accounts, subscriber and highlight counts."""
    return _communities_out(session)


@router.get("/communities/{slug}", response_model=CommunityOut, responses=NOT_FOUND)
def community(slug: Slug, user: Viewer, session: DB) -> Any:
    """One community."""
    found = _communities_out(session, Community.slug == slug)
    if not found:
        raise HTTPException(404, f"no community {slug!r}")
    return found[0]


@router.get("/communities/{slug}/best-times", responses=NOT_FOUND)
def community_best_times(
    request: Request,
    slug: Slug,
    user: Viewer,
    session: DB,
    channel: Annotated[str, Query(max_length=32)] = "facebook",
) -> dict[str, Any]:
    """When the community's posts do best on ``channel``: the recommended two-hour block with
    its lift, probability and confidence, and all 84 blocks of the week (rates per view,
    against the community's average; see docs/reports.md)."""
    from marketing.besttimes_view import (
        CommunityNotFound,
        as_json,
        checked_channel,
        community_times,
    )

    try:
        kind = checked_channel(channel)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        item = community_times(session=session, channel=kind, now=now_of(request), slug=slug)[0]
    except CommunityNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return as_json(item)


Day = Annotated[date | None, Query(ge=EARLIEST, le=LATEST)]


@router.get(
    "/reports/overview", response_model=ProgrammeOverview, responses={400: {"model": ErrorOut}}
)
def overview_report(
    request: Request,
    user: Viewer,
    session: DB,
    start: Annotated[Day, Query(alias="from")] = None,
    end: Annotated[Day, Query(alias="to")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 28,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORT_KEYS) + ")$")] = "rate",
    reverse: bool = False,
) -> Any:
    """Every community side by side for a period of local days (default: the last 28)."""
    period = report_period(request, start, end, days)

    def build() -> Document:
        report = programme_overview(
            session=session, start=period.start, end=period.end, sort=sort, reverse=reverse
        )
        return Document(report.model_dump_json(by_alias=True).encode(), "application/json")

    # The same kept answers as the overview page's (#19): until the next rollup, outcomes
    # import or change of a community's names.
    cache: DocumentCache = request.app.state.report_cache
    key = ("api-overview", database_state(session), period.start, period.end, sort, reverse)
    found = cache.get_or_build(key, build)
    return Response(found.body, media_type=found.media_type)


@router.get(
    "/reports/community/{slug}",
    response_model=CommunityReport,
    responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)
def community_report_api(
    request: Request,
    slug: Slug,
    user: Viewer,
    session: DB,
    start: Annotated[Day, Query(alias="from")] = None,
    end: Annotated[Day, Query(alias="to")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 28,
) -> Any:
    """One community's channels, change, rank and best posts for a period."""
    period = report_period(request, start, end, days)
    try:
        return community_report(
            session=session, community_slug=slug, start=period.start, end=period.end
        )
    except ReportSubjectNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/reports/campaign/{slug}", response_model=CampaignReport, responses=NOT_FOUND)
def campaign_report_api(
    slug: Slug,
    user: Viewer,
    session: DB,
) -> Any:
    """One campaign: what was published where, what needs a person, what it achieved."""
    try:
        return campaign_report(session=session, campaign_slug=slug)
    except ReportSubjectNotFound as exc:
        raise HTTPException(404, str(exc)) from None
