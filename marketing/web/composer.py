"""The composer: a whole campaign as a form, a quick single post, and previews of posts as
their channels will show them.

The form is :mod:`marketing.web.composer_form`; checking is the same as the YAML editor's and
``marketing campaign validate``'s (:func:`~marketing.web.campaign_files.check_campaign_text`,
problems worded by :func:`marketing.web.wording.problem_text`).  Without JavaScript the form
posts to ``/campaigns/compose`` and comes back with the problems next to their fields, or
with the previews; ``static/composer.js`` posts the same form to ``/campaigns/compose/check``
when a field changes and puts the problems next to the fields without reloading.

Previews (:func:`previews`) are built from the plan's posts: the Facebook and YouTube cards
of :mod:`campaigns.previews`, and the e-mail as the e-mail adapter builds it
(:meth:`channels.email.EmailAdapter.build_message`) for the first consenting subscriber of
the post's community in the campaign's audience -- the code path that sends it.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from campaigns.lifecycle import CampaignStateError
from campaigns.planning import Plan, PlannedPost
from campaigns.previews import FacebookCard, YouTubeCard, facebook_card, youtube_card
from campaigns.yamledit import CampaignDocument, NotEditable
from channels.email import Recipient, email_adapter_from_settings
from marketing.conventions import SLUG_PATTERN
from marketing.db import utcnow
from marketing.email_delivery import audience_tags
from marketing.models import Campaign, ChannelAccount, ChannelKind, Community, Subscriber, User
from marketing.problems import InvalidInput, Problem
from marketing.settings import Settings
from marketing.web.campaign_files import (
    MAX_CAMPAIGN_BYTES,
    CheckedCampaign,
    apply_campaign_text,
    check_campaign_text,
)
from marketing.web.composer_form import (
    CHOICES,
    FIELDS,
    apply_form,
    field_for,
    file_templates,
    form_values,
    shown_sections,
)
from marketing.web.deps import DB, Editor, now_of, settings_of
from marketing.web.rendering import flash, gettext_for, render
from marketing.web.staff import audit_apply
from marketing.web.wording import problem_text

router = APIRouter(include_in_schema=False)

PREVIEWS_PER_CHANNEL = 3
MAX_FIELD_CHARS = 200_000


# --- previews --------------------------------------------------------------------------------


@dataclass
class EmailPreview:
    subscriber: str  # the address it was built for
    subject: str
    sender: str
    html: str


@dataclass
class PostPreview:
    """One planned post as it will look."""

    channel: str
    community: str
    account: str
    scheduled_at: datetime
    facebook: dict[str, FacebookCard] = field(default_factory=dict)  # width -> card
    youtube: YouTubeCard | None = None
    email: EmailPreview | None = None
    email_problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "community": self.community,
            "account": self.account,
            "scheduled_at": self.scheduled_at.isoformat(),
            "facebook": {w: c.as_dict() for w, c in self.facebook.items()} or None,
            "youtube": self.youtube.as_dict() if self.youtube else None,
            "email": self.email.__dict__ if self.email else None,
            "email_problem": self.email_problem,
        }


def _email_preview(
    session: Session, settings: Settings, post: PlannedPost, sender: str
) -> tuple[EmailPreview | None, str | None]:
    # The first subscriber the post would be sent to (consent and audience as
    # marketing.email_delivery.consenting_subscribers chooses them).
    tags = audience_tags(post.content)
    subscriber = None
    for candidate in session.scalars(
        select(Subscriber)
        .where(
            Subscriber.community_id == post.community_id,
            Subscriber.unsubscribed_at.is_(None),
            Subscriber.consent_at <= utcnow(),
        )
        .order_by(Subscriber.id)
        .limit(500)
    ):
        if not tags or tags.intersection(candidate.tags or []):
            subscriber = candidate
            break
    if subscriber is None:
        return None, "no_subscriber"
    try:
        adapter = email_adapter_from_settings(settings)
        message = adapter.build_message(
            post.content,
            Recipient(subscriber_id=subscriber.id, email=subscriber.email, name=subscriber.name),
            post_id=0,
            marker="preview",
            sender_address=sender,
        )
    except Exception as exc:  # a preview never fails the page: it says why instead
        return None, str(exc)
    body = message.get_body(("html",))
    html = str(body.get_content()) if body is not None else ""
    # Looking at a preview is not opening the e-mail: the open pixel is left out.
    pixel = html_lib.escape(adapter.links.open_url(post_id=0, subscriber_id=subscriber.id))
    html = re.sub(r"<img [^>]*" + re.escape(pixel) + r"[^>]*>", "", html)
    return (
        EmailPreview(
            subscriber=subscriber.email,
            subject=str(message["Subject"]),
            sender=str(message["From"]),
            html=str(html),
        ),
        None,
    )


def previews(
    *, session: Session, plan: Plan, settings: Settings, per_channel: int = PREVIEWS_PER_CHANNEL
) -> list[PostPreview]:
    """The first posts of each channel of ``plan`` as they will look."""
    accounts = {
        a.id: a
        for a in session.scalars(
            select(ChannelAccount).where(ChannelAccount.id.in_({p.account_id for p in plan.posts}))
        )
    }
    names = dict(
        session.execute(
            select(Community.id, Community.name_th).where(
                Community.id.in_({p.community_id for p in plan.posts})
            )
        ).all()
    )
    out: list[PostPreview] = []
    for channel in ChannelKind:
        posts = sorted(
            (p for p in plan.posts if p.channel == channel),
            key=lambda p: (p.scheduled_at, p.community_slug),
        )[:per_channel]
        for post in posts:
            account = accounts.get(post.account_id)
            display = account.display_name if account else post.account_slug
            preview = PostPreview(
                channel=channel.value,
                community=names.get(post.community_id, post.community_slug),
                account=display,
                scheduled_at=post.scheduled_at,
            )
            if channel == ChannelKind.FACEBOOK:
                preview.facebook = {
                    width: facebook_card(
                        post.content, page_name=display, page_picture=None, width=width
                    )
                    for width in ("desktop", "phone")
                }
            elif channel == ChannelKind.YOUTUBE:
                preview.youtube = youtube_card(post.content, channel_name=display)
            elif channel == ChannelKind.EMAIL:
                preview.email, preview.email_problem = _email_preview(
                    session, settings, post, account.external_id if account else ""
                )
            out.append(preview)
    return out


# --- the form --------------------------------------------------------------------------------


def _submitted(form: FormData) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in FIELDS:
        value = form.get(name)
        if isinstance(value, str):
            values[name] = value[:MAX_FIELD_CHARS]
    return values


def _composer_page(
    request: Request,
    user: User,
    *,
    base: str,
    values: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    problems: list[Problem] | None = None,
    checked: CheckedCampaign | None = None,
    shown: list[PostPreview] | None = None,
    campaign: Campaign | None = None,
    width: str = "phone",
    status_code: int = 200,
) -> Response:
    if values is None or files is None:
        try:
            doc = CampaignDocument(base)
            values, files = form_values(doc), file_templates(doc)
        except NotEditable:
            values, files = {}, {}
    sections, loose = shown_sections(values, files, problems or [])
    return render(
        request,
        "composer.html",
        user=user,
        base=base,
        sections=sections,
        loose=loose,
        problems=problems or [],
        checked=checked,
        previews=shown or [],
        campaign=campaign,
        width=width if width in ("phone", "desktop") else "phone",
        choices=CHOICES,
        status_code=status_code,
    )


@router.get("/campaigns/compose")
def compose_new(request: Request, user: Editor) -> Response:
    return _composer_page(request, user, base="")


def _campaign(session: Session, slug: str) -> Campaign:
    campaign = session.scalars(select(Campaign).where(Campaign.slug == slug)).first()
    if campaign is None:
        raise HTTPException(404, f"no campaign {slug}")
    return campaign


@router.get("/campaigns/{slug}/compose")
def compose_existing(
    request: Request, user: Editor, session: DB, slug: Annotated[str, Path(pattern=SLUG_PATTERN)]
) -> Response:
    campaign = _campaign(session, slug)
    return _composer_page(request, user, base=campaign.source_text, campaign=campaign)


def composed_text(
    base: str, submitted: dict[str, str], user: User | None = None
) -> tuple[str, list[Problem]]:
    """The campaign text after the form's edits of ``base``, and problems if it cannot be."""
    try:
        doc = CampaignDocument(base)
    except NotEditable:
        _ = gettext_for(user)
        message = _("The campaign file cannot be read as YAML, so the form cannot edit it.")
        hint = _("Open the file editor and fix the file there.")
        return base, [Problem("campaign.yaml", None, None, "", message, hint)]
    apply_form(doc, submitted)
    return doc.text(), []


def _check(
    request: Request, session: Session, text: str
) -> tuple[CheckedCampaign | None, list[Problem]]:
    try:
        checked = check_campaign_text(
            session=session, text=text, settings=settings_of(request), now=now_of(request)
        )
    except InvalidInput as exc:
        return None, list(exc.problems)
    return checked, []


@router.post("/campaigns/compose")
async def compose_submit(request: Request, user: Editor, session: DB) -> Response:
    form = await request.form(max_part_size=MAX_CAMPAIGN_BYTES)
    base = str(form.get("base") or "")[:MAX_CAMPAIGN_BYTES].replace("\r\n", "\n")
    action = str(form.get("action") or "check")
    width = str(form.get("width") or "phone")
    # Reading, writing and checking YAML take time: never on the event loop.
    return await run_in_threadpool(
        _compose, request, user, session, base, _submitted(form), action, width
    )


def _compose(
    request: Request,
    user: User,
    session: Session,
    base: str,
    values: dict[str, str],
    action: str,
    width: str,
) -> Response:
    text, problems = composed_text(base, values, user)
    files = {} if problems else file_templates(CampaignDocument(base))

    def again(problems: list[Problem]) -> Response:
        session.rollback()
        return _composer_page(
            request,
            user,
            base=base,
            values=values,
            files=files,
            problems=problems,
            status_code=422,
        )

    if problems:
        return again(problems)
    if action == "apply":
        try:
            summary = apply_campaign_text(
                session=session,
                text=text,
                user=user,
                settings=settings_of(request),
                now=now_of(request),
            )
        except InvalidInput as exc:
            return again(list(exc.problems))
        except CampaignStateError as exc:
            return again([Problem("campaign.yaml", None, None, "", str(exc))])
        audit_apply(session=session, summary=summary, user=user, via="web")
        session.commit()
        _ = gettext_for(user)
        flash(
            request,
            _(
                "Campaign saved as a draft: %(added)s posts added, %(updated)s updated, "
                "%(cancelled)s cancelled. It is published only after an approver approves it."
            )
            % {"added": summary.added, "updated": summary.updated, "cancelled": summary.cancelled},
        )
        return RedirectResponse(f"/campaigns/{summary.slug}", status_code=303)
    checked, problems = _check(request, session, text)
    if checked is None:
        return again(problems)
    shown = previews(session=session, plan=checked.plan, settings=settings_of(request))
    session.rollback()
    # The checked text becomes the form's base: the next edit is made to it.
    return _composer_page(
        request,
        user,
        base=text,
        checked=checked,
        shown=shown,
        width=width,
        campaign=checked.campaign,
    )


@router.post("/campaigns/compose/check")
async def compose_check(request: Request, user: Editor, session: DB) -> Response:
    """The form's problems by field, in the user's words (for ``static/composer.js``)."""
    form = await request.form(max_part_size=MAX_CAMPAIGN_BYTES)
    base = str(form.get("base") or "")[:MAX_CAMPAIGN_BYTES].replace("\r\n", "\n")
    text, problems = composed_text(base, _submitted(form), user)
    if not problems:
        _checked, problems = await run_in_threadpool(_check, request, session, text)
        session.rollback()
    return JSONResponse(problems_by_field(problems, user) | {"yaml": text})


def problems_by_field(problems: list[Problem], user: User | None) -> dict[str, Any]:
    """``problems`` worded for ``user`` (as ``marketing campaign validate`` words them),
    grouped by the form field they belong to (``""``: none)."""
    _ = gettext_for(user)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for problem in problems:
        message, hint = problem_text(problem, _)
        grouped.setdefault(field_for(problem) or "", []).append(
            {"field": problem.field, "line": problem.line, "message": message, "hint": hint}
        )
    return {"ok": not problems, "problems": grouped}


# --- quick composer ----------------------------------------------------------------------


def quick_campaign_text(
    *,
    slug: str,
    name: str,
    communities: list[str],
    message: str,
    link: str,
    when: datetime,
    zone: str,
) -> str:
    """A campaign of one Facebook post at ``when`` to ``communities``, as YAML."""
    doc = CampaignDocument("")
    local = when.astimezone(ZoneInfo(zone))
    doc.set(("slug",), slug)
    doc.set(("name",), name)
    doc.set(("timezone",), zone)
    doc.set(("window", "start"), local.date())
    doc.set(("window", "end"), local.date())
    doc.set(("communities",), communities)
    doc.set(("channels", "facebook", "account"), "community")
    doc.set(("channels", "facebook", "message"), message)
    if link.strip():
        doc.set(("channels", "facebook", "link"), link.strip())
    doc.set(("schedule", "at"), [local.isoformat(timespec="minutes")])
    return doc.text()


def quick_time(*, now: datetime, zone: ZoneInfo, at: str) -> datetime:
    """``now`` (a few minutes ahead, so it is in the future when applied) or today's ``at``
    (``18:00``; tomorrow's if that has passed) in ``zone``; ValueError if ``at`` is no time."""
    if not at.strip():
        return (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    clock = time.fromisoformat(at.strip())
    local_now = now.astimezone(zone)
    moment = datetime.combine(local_now.date(), clock, tzinfo=zone)
    if moment <= local_now:
        moment += timedelta(days=1)
    return moment


@router.get("/campaigns/quick")
def quick_page(request: Request, user: Editor, session: DB) -> Response:
    communities = session.execute(
        select(Community.slug, Community.name_th).order_by(Community.slug)
    ).all()
    return render(
        request, "composer_quick.html", user=user, communities=communities, problems=[], values={}
    )


@router.post("/campaigns/quick")
def quick_submit(
    request: Request,
    user: Editor,
    session: DB,
    name: Annotated[str, Form(max_length=300)],
    message: Annotated[str, Form(max_length=MAX_FIELD_CHARS)],
    communities: Annotated[list[str], Form(max_length=10_000)],
    link: Annotated[str, Form(max_length=1000)] = "",
    at: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    _ = gettext_for(user)
    settings = settings_of(request)
    now = now_of(request)
    rows = session.execute(select(Community.slug, Community.name_th).order_by(Community.slug)).all()
    values = {"name": name, "message": message, "link": link, "at": at, "communities": communities}
    try:
        when = quick_time(now=now, zone=settings.zone, at=at)
    except ValueError:
        return render(
            request,
            "composer_quick.html",
            user=user,
            communities=rows,
            values=values,
            problems=[_("Write the time as 18:00, or leave it empty for now.")],
            status_code=422,
        )
    who = re.sub(r"[^a-z0-9-]", "-", user.username)
    stem = f"post-{when.astimezone(settings.zone):%Y%m%d-%H%M}-{who}"[:72].rstrip("-")
    taken = set(session.scalars(select(Campaign.slug).where(Campaign.slug.startswith(stem))))
    slug = next(
        s for n in range(1, 10_000) if (s := stem if n == 1 else f"{stem}-{n}") not in taken
    )
    text = quick_campaign_text(
        slug=slug,
        name=name,
        communities=communities,
        message=message,
        link=link,
        when=when,
        zone=settings.zone.key,
    )
    try:
        summary = apply_campaign_text(
            session=session, text=text, user=user, settings=settings, now=now
        )
    except InvalidInput as exc:
        session.rollback()
        return render(
            request,
            "composer_quick.html",
            user=user,
            communities=rows,
            values=values,
            problems=[" ".join(problem_text(p, _)).strip() for p in exc.problems],
            status_code=422,
        )
    audit_apply(session=session, summary=summary, user=user, via="web")
    session.commit()
    flash(request, _("The post is saved as a draft campaign of one post; an approver approves it."))
    return RedirectResponse(f"/campaigns/{summary.slug}", status_code=303)


@router.get("/media/draft")
def composer_media(
    request: Request,
    user: Editor,
    path: Annotated[str, Query(min_length=1, max_length=1000)],
) -> Response:
    """A media file named in a campaign being composed (inside the media folder only)."""
    from marketing.web.posts import media_file

    return media_file(request, path)
