"""Community pages: the list; one community's performance charts, highlights with their media
and consent, subscribers (and importing a CSV of them with their consent source), and channel
accounts with their health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketing.besttimes import best_times_channels, block_label
from marketing.besttimes_view import (
    LEVEL_BOUNDS,
    checked_channel,
    community_times,
    grid,
    sentence,
    start_hours,
)
from marketing.conventions import SLUG_PATTERN
from marketing.creators import CreatorRefused, add_creator_video, community_creators
from marketing.destinations import (
    DestinationRefused,
    clicks_by_destination,
    remove_destination,
    set_destination,
)
from marketing.models import (
    ChannelAccount,
    ChannelKind,
    Community,
    DestinationKind,
    ImportJob,
    ImportState,
    Subscriber,
)
from marketing.problems import InvalidInput, Problem
from marketing.publishing import PostActionRefused, account_reconnected
from marketing.reports import community_report, resolve_period
from marketing.reports import labels as report_labels
from marketing.reports.charts import Bar, Series, bar_chart, line_chart
from marketing.reports.rows import CHANNELS, CommunityReport
from marketing.thai import WEEKDAYS as THAI_WEEKDAYS
from marketing.thai import WEEKDAYS_SHORT as THAI_WEEKDAYS_SHORT
from marketing.web.deps import DB, Editor, Viewer, engine_of, now_of, settings_of, today_of
from marketing.web.i18n import ENGLISH_WEEKDAYS, Clock
from marketing.web.imports import job_problems, progress_of, save_upload, start_import
from marketing.web.rendering import (
    channel_labels,
    clock_for,
    day_input_problem,
    flash,
    gettext_for,
    render,
)
from marketing.web.report_cache import kept_ranks
from marketing.web.staff import audit
from marketing.web.wording import refusal

router = APIRouter(include_in_schema=False)


def _community(session: Session, slug: str) -> Community:
    community = session.scalars(select(Community).where(Community.slug == slug)).first()
    if community is None:
        raise HTTPException(404, f"no community {slug}")
    return community


# Communities a page of the list shows: a phone scrolls 50 cards, not a thousand (#19).
COMMUNITY_PAGE = 50


@router.get("/communities")
def communities_page(
    request: Request,
    user: Viewer,
    session: DB,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The communities by province, a page at a time: the programme grows past a thousand
    (#19), and the page counts each shown community's subscribers."""
    total = session.scalar(select(func.count()).select_from(Community)) or 0
    pages = max(1, -(-total // COMMUNITY_PAGE))
    page = min(page, pages)
    communities = session.scalars(
        select(Community)
        .order_by(Community.province, Community.name_th, Community.id)
        .offset((page - 1) * COMMUNITY_PAGE)
        .limit(COMMUNITY_PAGE)
    ).all()
    shown = [c.id for c in communities]
    subscribers = dict(
        session.execute(
            select(Subscriber.community_id, func.count())
            .where(Subscriber.community_id.in_(shown), Subscriber.unsubscribed_at.is_(None))
            .group_by(Subscriber.community_id)
        ).all()
    )
    accounts = session.scalars(
        select(ChannelAccount)
        .where(or_(ChannelAccount.community_id.in_(shown), ChannelAccount.community_id.is_(None)))
        .order_by(ChannelAccount.slug)
    ).all()
    by_community: dict[int | None, list[ChannelAccount]] = {}
    for account in accounts:
        by_community.setdefault(account.community_id, []).append(account)
    return render(
        request,
        "communities.html",
        user=user,
        communities=communities,
        subscribers=subscribers,
        accounts=by_community,
        page=page,
        pages=pages,
        total=total,
    )


def _share(part: int, whole: int) -> str:
    """``1,234 (56.7%)``."""
    return f"{part:,} ({report_labels.percent(part / whole if whole else 0.0, digits=1)})"


def performance_charts(
    report: CommunityReport,
    *,
    clock: Clock,
    gettext: Callable[[str], str],
) -> list[Markup]:
    """The community's daily interactions and reach per channel, and its channel mix, drawn
    with the reports' SVG charts."""
    _ = gettext
    days = report.period.each_day()
    index = {day: i for i, day in enumerate(days)}
    names = channel_labels(clock.language)
    charts = []
    for field, title in (
        ("interactions", _("Interactions per day")),
        ("reach", _("Reach per day (views and emails sent)")),
    ):
        values = {c.value: [0] * len(days) for c in CHANNELS}
        for point in report.trend:
            values[point.channel][index[point.day]] = getattr(point, field)
        charts.append(
            line_chart(
                title=title,
                days=days,
                series=[
                    Series(
                        names[c.value], report_labels.channel_colours()[c.value], values[c.value]
                    )
                    for c in CHANNELS
                ],
                day_label=lambda d: f"{d.day}/{d.month}/{clock.year(d.year) % 100:02d}",
            )
        )
    lines = [line for line in report.channels if line.channel != "all"]
    total = sum(line.current.interactions for line in lines)
    charts.append(
        bar_chart(
            title=_("Interactions by channel"),
            bars=[
                Bar(
                    label=names[line.channel],
                    value=line.current.interactions,
                    colour=report_labels.channel_colours()[line.channel],
                    text=_share(line.current.interactions, total),
                )
                for line in lines
            ],
        )
    )
    return charts


ENGLISH_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def chance(probability: float) -> str:
    """``97%``; never ``100%`` (or ``0%``): the model is never that sure."""
    if probability > 0.99:
        return "> 99%"
    if probability < 0.01:
        return "< 1%"
    return f"{round(probability * 100)}%"


def best_times_view(
    *, session: Session, slug: str, channel: ChannelKind, now: datetime, language: str
) -> dict[str, object]:
    """What the community page's heat map needs: the sentence, the grid, labels."""
    item = community_times(session=session, channel=channel, now=now, slug=slug)[0]
    times = item.times
    bounds = [round((b - 1) * 100) for b in LEVEL_BOUNDS]
    return {
        "channel": channel.value,
        "channels": [c.value for c in best_times_channels()],
        "sentence": sentence(item, language=language),
        "times": times,
        "from_programme": item.from_programme,
        "recommendation": times.recommendation if times else None,
        "chance": chance(times.recommendation.probability)
        if times and times.recommendation
        else "",
        "rows": grid(times) if times else [],
        "days": list(THAI_WEEKDAYS if language == "th" else ENGLISH_DAY_NAMES),
        "short_days": list(THAI_WEEKDAYS_SHORT if language == "th" else ENGLISH_WEEKDAYS),
        "hours": start_hours(),
        "label": partial(block_label, language=language),
        "bounds": bounds,
    }


@router.get("/communities/{slug}")
def community_page(
    request: Request,
    user: Viewer,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    channel: Annotated[str, Query(max_length=32)] = "facebook",
) -> Response:
    try:
        kind = checked_channel(channel)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    community = _community(session, slug)
    period = resolve_period(
        start=None, end=None, zone=settings_of(request).zone, today=today_of(request)
    )
    report = community_report(
        session=session,
        community_slug=slug,
        start=period.start,
        end=period.end,
        ranks=kept_ranks(request.app.state.report_cache, session),
    )
    clock = clock_for(request, user)
    subscribers = session.execute(
        select(
            func.count(),
            func.count(Subscriber.unsubscribed_at),
        ).where(Subscriber.community_id == community.id)
    ).one()
    sources = session.execute(
        select(Subscriber.consent_source, func.count())
        .where(Subscriber.community_id == community.id, Subscriber.unsubscribed_at.is_(None))
        .group_by(Subscriber.consent_source)
        .order_by(func.count().desc())
        .limit(20)
    ).all()
    accounts = session.scalars(
        select(ChannelAccount)
        .where(ChannelAccount.community_id == community.id)
        .order_by(ChannelAccount.kind)
    ).all()
    destinations = clicks_by_destination(
        session=session, community_id=community.id, start=period.start, end=period.end
    )
    return render(
        request,
        "community.html",
        user=user,
        community=community,
        report=report,
        charts=performance_charts(report, clock=clock, gettext=gettext_for(user)),
        subscriber_total=subscribers[0],
        unsubscribed=subscribers[1],
        sources=sources,
        accounts=accounts,
        import_summary=None,
        import_problems=[],
        best=best_times_view(
            session=session,
            slug=slug,
            channel=kind,
            now=now_of(request),
            language=clock.language,
        ),
        creators=community_creators(session=session, community_id=community.id),
        destinations=destinations,
        destination_total=sum(item.total for item in destinations),
        destination_kinds=destination_kinds(gettext_for(user)),
    )


def destination_kinds(_: Callable[[str], str]) -> dict[str, str]:
    """Each kind of destination and its name, in the reader's language."""
    return {
        DestinationKind.SHOP.value: _("Shop"),
        DestinationKind.BOOKING.value: _("Booking"),
        DestinationKind.PRODUCT.value: _("Product page"),
    }


@router.post("/communities/{slug}/destinations")
def destination_set(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    kind: Annotated[DestinationKind, Form()],
    url: Annotated[str, Form(min_length=10, max_length=2000)],
    label_th: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """Set the community's shop, booking or product page (one of each kind)."""
    community = _community(session, slug)
    _ = gettext_for(user)
    try:
        destination = set_destination(
            session=session,
            community=community,
            kind=kind,
            url=url.replace("\x00", ""),
            label_th=label_th.replace("\x00", ""),
        )
    except DestinationRefused as exc:
        words = {
            "not_a_url": _("Give the page's whole address, starting with https://"),
            "no_label": _("Give the page a label."),
        }
        flash(request, words.get(exc.code, str(exc)), "error")
    else:
        audit(
            session=session,
            user=user,
            action="community.destination",
            object_type="community",
            object_id=community.slug,
            kind=destination.kind.value,
            url=destination.url,
        )
        session.commit()
        flash(request, _("The page was saved; links to it now lead to this address."))
    return RedirectResponse(f"/communities/{community.slug}#destinations", status_code=303)


@router.post("/communities/{slug}/destinations/{kind}/remove")
def destination_remove(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    kind: Annotated[DestinationKind, Path()],
) -> Response:
    """Remove one of the community's pages: links to it stop working."""
    community = _community(session, slug)
    _ = gettext_for(user)
    if remove_destination(session=session, community=community, kind=kind):
        audit(
            session=session,
            user=user,
            action="community.destination_removed",
            object_type="community",
            object_id=community.slug,
            kind=kind.value,
        )
        session.commit()
        flash(request, _("The page was removed; links to it no longer lead anywhere."))
    return RedirectResponse(f"/communities/{community.slug}#destinations", status_code=303)


@router.post("/communities/{slug}/creators")
def creator_video_add(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    url: Annotated[str, Form(min_length=5, max_length=2000)],
) -> Response:
    """Add a creator's YouTube video to the community; its statistics come with the next
    refresh (``marketing communities creators-refresh``)."""
    community = _community(session, slug)
    _ = gettext_for(user)
    try:
        video = add_creator_video(
            session=session,
            community_slug=community.slug,
            url=url.replace("\x00", ""),
            actor=user.username,
            now=now_of(request),
        )
    except CreatorRefused as exc:
        words = {
            "not_a_video": _(
                "That is not a YouTube video address: give one like "
                "https://www.youtube.com/watch?v=… or https://youtu.be/…"
            ),
            "too_many": _("The community already has the most creator videos it may hold."),
        }
        flash(request, words.get(exc.code, str(exc)), "error")
    else:
        audit(
            session=session,
            user=user,
            action="community.creator_video",
            object_type="community",
            object_id=community.slug,
            video=video.video_id,
        )
        session.commit()
        flash(request, _("The video was added; its figures come with the next refresh."))
    return RedirectResponse(f"/communities/{community.slug}#creators", status_code=303)


@router.post("/communities/{slug}/subscribers")
def subscribers_import(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    file: UploadFile,
    consent_source: Annotated[str, Form(min_length=3, max_length=300)],
    consent_date: Annotated[str, Form(max_length=40)],
) -> Response:
    """Start importing the uploaded list in the background; its job page shows progress."""
    community = _community(session, slug)
    zone = settings_of(request).zone
    _ = gettext_for(user)
    try:
        consented = clock_for(request, user).parse_typed(consent_date)
    except ValueError:
        problem = Problem(
            _("the form"), None, None, "", day_input_problem(request, user, consent_date)
        )
        return render(
            request,
            "import_problems.html",
            user=user,
            community=community,
            problems=[problem],
            name=_("the form"),
            status_code=422,
        )
    consent_at = datetime.combine(consented, datetime.min.time(), tzinfo=zone)
    name = file.filename or "subscribers.csv"
    try:
        saved = save_upload(file.file, name=name)
    except InvalidInput as exc:
        return render(
            request,
            "import_problems.html",
            user=user,
            community=community,
            problems=exc.problems,
            name=name,
            status_code=422,
        )
    key = start_import(
        engine=engine_of(request),
        session=session,
        community=community,
        user=user,
        path=saved,
        name=name,
        consent_source=consent_source.replace("\x00", "").strip(),
        consent_at=consent_at,
    )
    return RedirectResponse(f"/imports/{key}", status_code=303)


@router.get("/imports/{key}")
def import_job_page(
    request: Request,
    user: Editor,
    session: DB,
    key: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")],
) -> Response:
    """An import's progress (the page refreshes itself until it ends), then its outcome."""
    job = session.scalars(select(ImportJob).where(ImportJob.key == key)).first()
    if job is None:
        raise HTTPException(404, "no such import")
    community = session.get(Community, job.community_id)
    finished = job.state in (ImportState.DONE, ImportState.FAILED)
    return render(
        request,
        "import_job.html",
        user=user,
        job=job,
        community=community,
        finished=finished,
        progress=None if finished else progress_of(key),
        counts=job.result.get("counts", {}),
        problems=job_problems(job),
        more=job.result.get("more", 0),
        name=job.file_name,
    )


@router.post("/accounts/{slug}/reconnected")
def reconnected(
    request: Request,
    user: Editor,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    _ = gettext_for(user)
    account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).first()
    back = "/communities"
    if account is not None and account.community_id is not None:
        community = session.get(Community, account.community_id)
        back = f"/communities/{community.slug}" if community else back
    try:
        count = account_reconnected(session=session, slug=slug)
    except PostActionRefused as exc:
        session.rollback()
        flash(request, refusal(exc.code, exc.values, states={}, _=_), "error")
        return RedirectResponse(back, status_code=303)
    audit(
        session=session,
        user=user,
        action="account.reconnected",
        object_type="account",
        object_id=slug,
        posts_rescheduled=count,
    )
    session.commit()
    flash(
        request,
        _("Account %(slug)s is marked healthy; %(count)s waiting posts go out again.")
        % {"slug": slug, "count": count},
    )
    return RedirectResponse(back, status_code=303)
