"""Post pages: the list, one post's rendered preview and live link, the people's actions on a
post (retry, cancel, mark published), and the media files of posts and highlights."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.loader import media_keys
from channels.media import is_image, sniff
from marketing.media import contained
from marketing.models import (
    Attempt,
    ChannelAccount,
    ChannelKind,
    Highlight,
    Post,
    PostState,
    User,
)
from marketing.publishing import PostActionRefused, cancel_post, resolve_published, retry_post
from marketing.queries import PostFilter, find_posts
from marketing.web.deps import DB, Editor, Viewer, settings_of
from marketing.web.i18n import language_of
from marketing.web.overview import post_line
from marketing.web.rendering import STATE_LABELS, flash, gettext_for, render
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
    where = PostFilter(campaign=campaign, community=community, state=state, channel=channel)
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
