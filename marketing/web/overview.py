"""The pages that show what is going on: the dashboard, the calendar and the problems list."""

from __future__ import annotations

import calendar as calendar_module
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from marketing.health import due_posts, pipeline_health
from marketing.models import (
    AccountHealth,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Post,
    PostState,
    User,
)
from marketing.placeholders import readable
from marketing.publishing import PROBLEM_STATES
from marketing.queries import PostFilter, PostRow, find_posts
from marketing.web.deps import DB, Viewer, now_of, settings_of, today_of
from marketing.web.i18n import language_of
from marketing.web.rendering import clock_for, day_input_problem, render

router = APIRouter(include_in_schema=False)

CELL_LIMIT = 12  # posts shown in one calendar day before "and N more"
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


@dataclass(frozen=True)
class PostLine:
    """One post as the calendar and lists show it."""

    id: int
    when: datetime
    state: PostState
    channel: ChannelKind
    community_slug: str
    community_name: str
    campaign_slug: str
    campaign_name: str
    permalink: str | None
    title: str


def post_title(content: dict[str, Any], limit: int = 60, *, language: str = "th") -> str:
    """A short label for a post: its title, subject or the start of its message, as a reader
    in ``language`` sees it (merge fields as labels)."""
    for key in ("title", "subject", "message", "caption", "description"):
        value = content.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(readable(value, language).split())
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def post_line(row: PostRow, *, language: str = "th") -> PostLine:
    """A :func:`marketing.queries.find_posts` row as a PostLine, its title as read in
    ``language``."""
    post = row.post
    return PostLine(
        id=post.id,
        when=post.scheduled_at,
        state=post.state,
        channel=post.channel,
        permalink=post.permalink,
        title=post_title(post.content or {}, language=language),
        community_slug=row.community_slug,
        community_name=row.community_name_th,
        campaign_slug=row.campaign_slug,
        campaign_name=row.campaign_name,
    )


def _local_bounds(first: date, last: date, request: Request) -> tuple[datetime, datetime]:
    zone = settings_of(request).zone
    return (
        datetime.combine(first, time.min, tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
    )


@router.get("/")
def dashboard(
    request: Request,
    user: Viewer,
    session: DB,
) -> Response:
    zone = settings_of(request).zone
    now = now_of(request)
    today = now.astimezone(zone).date()
    week_start = today - timedelta(days=today.weekday())
    week_end = week_start + timedelta(days=6)
    start, end = _local_bounds(today, today, request)
    language = language_of(user.language)
    today_posts = [
        post_line(row, language=language)
        for row in find_posts(session=session, where=PostFilter(since=start, before=end), limit=200)
    ]
    start, end = _local_bounds(week_start, week_end, request)
    week: dict[date, Counter[str]] = {week_start + timedelta(days=n): Counter() for n in range(7)}
    for scheduled_at, state in session.execute(
        select(Post.scheduled_at, Post.state).where(
            Post.scheduled_at >= start, Post.scheduled_at < end
        )
    ):
        week[scheduled_at.astimezone(zone).date()][state.value] += 1
    problems = session.scalar(
        select(func.count()).select_from(Post).where(Post.state.in_(PROBLEM_STATES))
    )
    accounts = session.execute(
        select(ChannelAccount, Community.slug)
        .outerjoin(Community, Community.id == ChannelAccount.community_id)
        .where(ChannelAccount.health != AccountHealth.OK)
        .order_by(ChannelAccount.slug)
    ).all()
    account_total = session.scalar(select(func.count()).select_from(ChannelAccount)) or 0
    states = dict(session.execute(select(Post.state, func.count()).group_by(Post.state)).all())
    due = due_posts(session=session, at=now)
    pipeline = pipeline_health(session=session, now=now, settings=settings_of(request))
    drafts = session.scalar(
        select(func.count()).select_from(Campaign).where(Campaign.status == CampaignStatus.DRAFT)
    )
    return render(
        request,
        "dashboard.html",
        user=user,
        today=today,
        today_posts=today_posts,
        week=week,
        problems=problems or 0,
        unhealthy=accounts,
        account_total=account_total,
        states={s.value: states.get(s, 0) for s in PostState},
        due=due or 0,
        pipeline=pipeline,
        drafts=drafts or 0,
    )


def _parse_day(request: Request, user: User, text: str | None, today: date) -> date:
    """The day asked for (typed ``dd/mm/yyyy`` in the reader's era, or ISO from the pager);
    today if none; ValueError if ``text`` is not a day."""
    if not text:
        return today
    value = clock_for(request, user).parse_typed(text)
    return min(max(value, EARLIEST), LATEST)


@router.get("/calendar")
def calendar_page(
    request: Request,
    user: Viewer,
    session: DB,
    view: Annotated[str, Query(pattern="^(month|week)$")] = "month",
    day: Annotated[str | None, Query(max_length=10)] = None,
    community: Annotated[str | None, Query(max_length=80)] = None,
    channel: Annotated[ChannelKind | None, Query()] = None,
) -> Response:
    zone = settings_of(request).zone
    today = today_of(request)
    day_problem = ""
    try:
        anchor = _parse_day(request, user, day, today)
    except ValueError:
        anchor, day_problem = today, day_input_problem(request, user, day or "")
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        last = first + timedelta(days=6)
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
        weeks = [[first + timedelta(days=n) for n in range(7)]]
    else:
        first = anchor.replace(day=1)
        last = first.replace(day=calendar_module.monthrange(first.year, first.month)[1])
        previous = (first - timedelta(days=1)).replace(day=1)
        following = last + timedelta(days=1)
        grid_start = first - timedelta(days=first.weekday())
        grid_end = last + timedelta(days=6 - last.weekday())
        days = [grid_start + timedelta(days=n) for n in range((grid_end - grid_start).days + 1)]
        weeks = [days[i : i + 7] for i in range(0, len(days), 7)]
    start, end = _local_bounds(weeks[0][0], weeks[-1][-1], request)
    where = PostFilter(community=community, channel=channel, since=start, before=end)
    language = language_of(user.language)
    lines = [
        post_line(row, language=language)
        for row in find_posts(session=session, where=where, limit=None)
    ]
    by_day: dict[date, list[PostLine]] = defaultdict(list)
    # Posts at the same time are listed by community within a day.
    for line in sorted(lines, key=lambda p: (p.when, p.community_slug, p.id)):
        by_day[line.when.astimezone(zone).date()].append(line)
    communities = session.execute(
        select(Community.slug, Community.name_th).order_by(Community.name_th)
    ).all()
    return render(
        request,
        "calendar.html",
        user=user,
        day_problem=day_problem,
        view=view,
        anchor=anchor,
        first=first,
        last=last,
        today=today,
        previous=previous,
        following=following,
        weeks=weeks,
        by_day=by_day,
        cell_limit=CELL_LIMIT if view == "month" else 200,
        communities=communities,
        community=community or "",
        channel=channel.value if channel else "",
        channels=[c.value for c in ChannelKind],
    )


@router.get("/problems")
def problems_page(
    request: Request,
    user: Viewer,
    session: DB,
) -> Response:
    rows = session.execute(
        select(Post, Community.slug, Community.name_th, ChannelAccount.slug, Campaign.slug)
        .join(Community, Community.id == Post.community_id)
        .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .where(Post.state.in_(PROBLEM_STATES))
        .order_by(Post.state, Post.scheduled_at, Post.id)
        .limit(500)
    ).all()
    return render(request, "problems.html", user=user, rows=rows)
