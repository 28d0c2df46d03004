"""Post pages: the list, one post's rendered preview and live link, the people's actions on a
post (retry, cancel, mark published; for a post still waiting: rewrite its text, skip it,
move it to another day and time), and the media files of posts and highlights."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.lifecycle import APPLY_ACTION
from campaigns.loader import media_keys
from channels.media import is_image, sniff
from marketing.media import contained
from marketing.models import (
    Attempt,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Highlight,
    Post,
    PostState,
    User,
)
from marketing.post_edits import (
    MAX_TEXT,
    TEXT_KEYS,
    change_text,
    override_of,
    reschedule,
    skip_occurrence,
)
from marketing.publishing import PostActionRefused, cancel_post, resolve_published, retry_post
from marketing.queries import PostFilter, find_posts
from marketing.search import community_ids_matching
from marketing.web.deps import DB, Editor, Viewer, now_of, settings_of
from marketing.web.i18n import language_of
from marketing.web.overview import post_line
from marketing.web.rendering import (
    STATE_LABELS,
    clock_for,
    day_input_problem,
    flash,
    gettext_for,
    render,
)
from marketing.web.staff import audit
from marketing.web.wording import refusal

router = APIRouter(include_in_schema=False)

LIST_LIMIT = 500
MAX_ID = 2**31 - 1


@router.get("/posts")
def posts_page(
    request: Request,
    user: Viewer,
    session: DB,
    campaign: Annotated[str | None, Query(max_length=80)] = None,
    community: Annotated[str | None, Query(max_length=80)] = None,
    state: Annotated[PostState | None, Query()] = None,
    channel: Annotated[ChannelKind | None, Query()] = None,
) -> Response:
    # A community by its slug, or by words of its Thai or English name or province; a
    # campaign by its slug or words of its name.
    ids = tuple(session.scalars(community_ids_matching(session, community))) if community else ()
    where = PostFilter(
        campaign=campaign,
        community=community,
        state=state,
        channel=channel,
        campaign_name=True,
        community_ids=ids,
    )
    language = language_of(user.language)
    lines = [
        post_line(row, language=language)
        for row in find_posts(session=session, where=where, limit=LIST_LIMIT)
    ]
    return render(
        request,
        "posts.html",
        user=user,
        lines=lines,
        limit=LIST_LIMIT,
        filters={
            "campaign": campaign or "",
            "community": community or "",
            "state": state.value if state else "",
            "channel": channel.value if channel else "",
        },
        states=[s.value for s in PostState],
        channels=[c.value for c in ChannelKind],
    )


def _post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise HTTPException(404, f"no post {post_id}")
    return post


@router.get("/posts/{post_id}")
def post_page(
    request: Request,
    user: Viewer,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    post = _post(session, post_id)
    account = session.get(ChannelAccount, post.channel_account_id)
    attempts = session.scalars(
        select(Attempt).where(Attempt.post_id == post.id).order_by(Attempt.number)
    ).all()
    return render(
        request,
        "post.html",
        user=user,
        post=post,
        account=account,
        attempts=attempts,
        media_keys=[k for k in media_keys(post.channel.value) if post.content.get(k)],
        override=override_of(session, post.id),
        text_keys=TEXT_KEYS.get(post.channel.value, ()),
        max_text=MAX_TEXT,
    )


def _act(request: Request, session: Session, user: User, post_id: int, action: str) -> Response:
    _ = gettext_for(user)
    post = session.get(Post, post_id)
    state = post.state.value if post else None
    audit(
        session=session,
        user=user,
        action=f"post.{action}",
        object_type="post",
        object_id=post_id,
        state=state,
    )
    session.commit()
    shown = STATE_LABELS[language_of(user.language)].get(state or "", state)
    flash(request, _("Post %(id)s is now: %(state)s.") % {"id": post_id, "state": shown})
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


def _refused(
    request: Request, session: Session, user: User, post_id: int, exc: PostActionRefused
) -> Response:
    session.rollback()
    states = STATE_LABELS[language_of(user.language)]
    flash(request, refusal(exc.code, exc.values, states=states, _=gettext_for(user)), "error")
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


@router.post("/posts/{post_id}/retry")
def retry(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    try:
        retry_post(session=session, post_id=post_id)
    except PostActionRefused as exc:
        return _refused(request, session, user, post_id, exc)
    return _act(request, session, user, post_id, "retry")


@router.post("/posts/{post_id}/cancel")
def cancel(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    try:
        cancel_post(session=session, post_id=post_id)
    except PostActionRefused as exc:
        return _refused(request, session, user, post_id, exc)
    return _act(request, session, user, post_id, "cancel")


@router.post("/posts/{post_id}/resolve")
def resolve(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    permalink: Annotated[str, Form(max_length=1000, pattern=r"^https?://\S+$")],
) -> Response:
    try:
        resolve_published(session=session, post_id=post_id, permalink=permalink)
    except PostActionRefused as exc:
        return _refused(request, session, user, post_id, exc)
    return _act(request, session, user, post_id, "resolve")


def _changed(
    request: Request,
    session: Session,
    user: User,
    post_id: int,
    action: str,
    when: datetime | None = None,
    **detail: Any,
) -> Response:
    audit(
        session=session,
        user=user,
        action=f"post.{action}",
        object_type="post",
        object_id=post_id,
        **detail,
    )
    session.commit()
    _ = gettext_for(user)
    messages = {
        "edit": _("The text of post %(id)s is changed; the campaign keeps this change."),
        "skip": _("Post %(id)s is skipped: this occurrence will not go out."),
        "reschedule": _("Post %(id)s is moved to %(when)s."),
    }
    shown = clock_for(request, user).when(when) if when is not None else ""
    flash(request, messages[action] % {"id": post_id, "when": shown})
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


def audit_text_change(*, session: Session, user: User, post_id: int, via: str) -> Post:
    """Record a post's new text also as a change applied to its campaign (the entry the
    four-eyes rule reads); the post."""
    post = _post(session, post_id)
    audit(
        session=session,
        user=user,
        action=APPLY_ACTION,
        object_type="campaign",
        object_id=post.campaign.slug,
        updated=1,
        post=post_id,
        via=f"post-edit ({via})",
    )
    return post


def edit_refusal(user: User, exc: PostActionRefused) -> str:
    """Why changing a post was refused, in ``user``'s language."""
    _ = gettext_for(user)
    states = STATE_LABELS[language_of(user.language)]
    shown = {**exc.values, "state": states.get(str(exc.values.get("state", "")), "")}
    messages = {
        "not_editable": _(
            "Post %(id)s is %(state)s: it has been taken for publishing or has gone out, so it "
            "can no longer be changed, skipped or moved."
        ),
        "no_change": _("The text is the same as before: nothing was changed."),
        "over_limits": _("The new text breaks the channel's rules (%(field)s: %(problem)s)."),
        "not_a_text": _("That is not a text of this post that can be changed."),
        "in_the_past": _("That time has passed already: choose a later one."),
    }
    template = messages.get(exc.code)
    if template is None:
        return refusal(exc.code, exc.values, states=states, _=_)
    return str(template % shown)


def _edit_refused(
    request: Request, session: Session, user: User, post_id: int, exc: PostActionRefused
) -> Response:
    session.rollback()
    flash(request, edit_refusal(user, exc), "error")
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


Text = Annotated[str | None, Form(max_length=MAX_TEXT)]


@router.post("/posts/{post_id}/edit")
def edit(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    message: Text = None,
    title: Text = None,
    description: Text = None,
    subject: Text = None,
    preheader: Text = None,
    html: Text = None,
) -> Response:
    sent = {
        "message": message,
        "title": title,
        "description": description,
        "subject": subject,
        "preheader": preheader,
        "html": html,
    }
    text = {k: v.replace("\r\n", "\n") for k, v in sent.items() if v is not None}
    found = session.get(Post, post_id)
    was_approved = found is not None and found.campaign.status != CampaignStatus.DRAFT
    try:
        before = change_text(
            session=session, post_id=post_id, text=text, actor=user.username, now=now_of(request)
        )
    except PostActionRefused as exc:
        return _edit_refused(request, session, user, post_id, exc)
    post = audit_text_change(session=session, user=user, post_id=post_id, via="web")
    if was_approved and post.campaign.status == CampaignStatus.DRAFT:
        _ = gettext_for(user)
        flash(
            request,
            _("The campaign is a draft again: it must be approved again before it publishes."),
        )
    return _changed(request, session, user, post_id, "edit", keys=sorted(before), before=before)


@router.post("/posts/{post_id}/skip")
def skip(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    try:
        skip_occurrence(session=session, post_id=post_id, actor=user.username, now=now_of(request))
    except PostActionRefused as exc:
        return _edit_refused(request, session, user, post_id, exc)
    return _changed(request, session, user, post_id, "skip")


@router.post("/posts/{post_id}/reschedule")
def move(
    request: Request,
    user: Editor,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    day: Annotated[str, Form(max_length=10)],
    at: Annotated[str, Form(max_length=5, pattern=r"^[0-2]?[0-9][:.][0-5][0-9]$")],
) -> Response:
    """Move a waiting post to ``day`` (typed in the reader's era, or ISO) at ``at`` (HH:MM),
    in the app's time zone."""
    clock = clock_for(request, user)
    try:
        new_day = clock.parse_typed(day)
        hour, minute = (int(part) for part in at.replace(".", ":").split(":"))
        when = datetime.combine(new_day, time(hour, minute), tzinfo=clock.zone)
    except ValueError:
        flash(request, day_input_problem(request, user, day), "error")
        return RedirectResponse(f"/posts/{post_id}", status_code=303)
    try:
        before = reschedule(
            session=session,
            post_id=post_id,
            when=when,
            actor=user.username,
            now=now_of(request),
        )
    except PostActionRefused as exc:
        return _edit_refused(request, session, user, post_id, exc)
    return _changed(
        request,
        session,
        user,
        post_id,
        "reschedule",
        when=when,
        to=when.astimezone(UTC).isoformat(),
        before=before.astimezone(UTC).isoformat(),
    )


def media_file(request: Request, path: str) -> Response:
    """Media file ``path`` if it is a file inside the media root (checked again here: a
    stored path may predate that rule or have been changed in the database).  Only an
    image (by suffix and by content) is shown inline; anything else is a download, and the
    browser is told not to guess types."""
    root = settings_of(request).media_root
    real = contained(path, root=root)
    if real is None:
        raise HTTPException(404, "the media file is not in the media folder of this server")
    headers = {"X-Content-Type-Options": "nosniff"}
    image = is_image(real)
    if image is not None:
        return FileResponse(real, media_type=image, headers=headers)
    media_type = sniff(real)
    if media_type is None or not media_type.startswith("video/"):
        media_type = "application/octet-stream"
    return FileResponse(
        real,
        media_type=media_type,
        headers=headers,
        filename=real.name,
        content_disposition_type="attachment",
    )


@router.get("/media/post/{post_id}/{key}")
def post_media(
    request: Request,
    user: Viewer,
    session: DB,
    post_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    key: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$")],
) -> Response:
    # Only a file that the post itself names, under a key that holds media: never any path.
    post = _post(session, post_id)
    value = post.content.get(key)
    if key not in media_keys(post.channel.value) or not isinstance(value, str):
        raise HTTPException(404, "this post has no such media")
    return media_file(request, value)


@router.get("/media/highlight/{highlight_id}/{index}")
def highlight_media(
    request: Request,
    user: Viewer,
    session: DB,
    highlight_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    index: Annotated[int, Path(ge=0, le=100)],
) -> Response:
    highlight = session.get(Highlight, highlight_id)
    if highlight is None or index >= len(highlight.media or []):
        raise HTTPException(404, "no such media")
    return media_file(request, highlight.media[index])
