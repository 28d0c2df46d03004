"""The email endpoints, open to anyone holding a link: the open pixel, click redirects and
one-click unsubscribe (RFC 8058).

Each verifies the token the email adapter signed (:class:`channels.tracking.TrackingLinks`)
for its own kind; a forged, tampered or misplaced token -- or one for a post or subscriber
that no longer exists -- gets 404 and records nothing.  A signature alone is not enough:
the subscriber must in fact have been sent the post (its delivery is sending, sent or
unconfirmed), and a click redirects only to one of the post's own links
(:func:`channels.email.click_targets`).  So should the tracking secret ever leak, a forged
token still cannot record events for people who never got the email, unsubscribe them, or
turn our address into a redirect to any other site.  What is recorded goes through
:func:`marketing.performance.record_email_event` and is rolled up at once, so reports show it.

Destination links
    ``/go/<token>`` (:meth:`channels.tracking.TrackingLinks.go_url`) leads to one of a
    community's shop, booking or product pages, as the destination is registered *now*
    (the token names the destination, never an address), with the UTM parameters of the
    channel the link was posted on; a forged or altered token, a destination removed or
    not of the token's community, or a channel we do not have gets 404.  A person's click
    is counted per destination, channel and day (:mod:`marketing.destinations`); link
    previews, robots and HEAD requests are redirected uncounted, and so are more than
    :data:`REPEATS` clicks from one address on one destination and channel in an hour.

Unsubscribing
    GET shows a confirmation page with a button and changes nothing (mail scanners and link
    previews fetch GETs).  POST -- a mail client's one-click ``List-Unsubscribe=One-Click``
    or the page's button -- withdraws consent and answers 200 with a page, never a redirect
    (RFC 8058 section 3.2), needing no cookie.  Unsubscribing twice records it once.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from limits import parse
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.formatting import tracked_url
from channels import registry
from channels.email import Recipient, click_targets
from channels.tracking import TokenKind, TrackingLinks, TrackingToken
from marketing.destinations import is_preview, record_click
from marketing.models import (
    Community,
    CommunityDestination,
    Delivery,
    DeliveryState,
    EmailEventKind,
    Post,
    Subscriber,
)
from marketing.performance import record_email_event, rollup
from marketing.web.deps import DB, client_address, now_of
from marketing.web.rendering import render
from marketing.web.throttle import address_key

router = APIRouter(include_in_schema=False)

# A 1x1 transparent GIF (42 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
Token = Annotated[str, Path()]
MAX_TOKEN = 4096  # a click token carries its URL; nothing we sign is longer
# Deliveries whose message went to the relay (or may have): only their links are honoured.
HANDED_OVER = (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNCONFIRMED)


def _verified(
    request: Request,
    session: Session,
    token: str,
    kind: TokenKind,
) -> tuple[TrackingToken, Post, Subscriber]:
    links: TrackingLinks = request.app.state.links
    found = links.verify(token, kind=kind) if len(token) <= MAX_TOKEN else None
    if found is None:
        raise HTTPException(404, "this link is not valid")
    post = session.get(Post, found.post_id) if found.post_id < 2**31 else None
    subscriber = (
        session.get(Subscriber, found.subscriber_id) if found.subscriber_id < 2**31 else None
    )
    if post is None or subscriber is None:
        raise HTTPException(404, "this link is no longer valid")
    delivered = session.scalar(
        select(Delivery.id).where(
            Delivery.post_id == post.id,
            Delivery.subscriber_id == subscriber.id,
            Delivery.state.in_(HANDED_OVER),
        )
    )
    if delivered is None:  # signed, but this email was never sent to this person
        raise HTTPException(404, "this link is not valid")
    return found, post, subscriber


def _record(
    session: Session,
    post: Post,
    subscriber: Subscriber,
    kind: EmailEventKind,
    url: str | None = None,
) -> None:
    keys = record_email_event(
        session=session, post_id=post.id, subscriber_id=subscriber.id, kind=kind, url=url
    )
    rollup(session=session, keys=keys)
    session.commit()


@router.get("/e/open/{token}")
def email_open(token: Token, request: Request, session: DB) -> Response:
    _found, post, subscriber = _verified(request, session, token, "open")
    _record(session, post, subscriber, EmailEventKind.OPEN)
    return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)


@router.get("/e/click/{token}")
def email_click(token: Token, request: Request, session: DB) -> Response:
    found, post, subscriber = _verified(request, session, token, "click")
    target = found.url or ""
    links: TrackingLinks = request.app.state.links
    sent_links = click_targets(
        post.content,
        Recipient(subscriber.id, subscriber.email, subscriber.name),
        unsubscribe_url=links.unsubscribe_url(post_id=post.id, subscriber_id=subscriber.id),
    )
    if not target.startswith(("https://", "http://")) or target not in sent_links:
        raise HTTPException(404, "this link is not valid")
    _record(session, post, subscriber, EmailEventKind.CLICK, url=target)
    return RedirectResponse(target, status_code=302, headers=NO_CACHE)


#: utm_campaign of a destination link written outside any campaign.
NO_CAMPAIGN = "glo"
#: Clicks counted from one address and browser (user agent) on one destination and channel:
#: more in the same hour are redirected but not counted (one person pressing again, a script
#: looping).  The browser is part of the key because many phones share one address behind a
#: mobile carrier's NAT.
REPEATS = parse("10 per hour")


def _counted_again(request: Request, destination_id: int, channel: str) -> bool:
    """True while this address may still add to the destination's count this hour (counted
    in the sign-in throttle's storage: Redis when configured, shared by every process)."""
    limiter = FixedWindowRateLimiter(request.app.state.throttle.storage)
    window = str(int(now_of(request).timestamp() // REPEATS.get_expiry()))
    address = address_key(client_address(request))
    agent = request.headers.get("user-agent", "").encode("utf-8", "replace")
    browser = hashlib.sha256(agent).hexdigest()[:16]
    return limiter.hit(REPEATS, "go", address, browser, str(destination_id), channel, window)


@router.api_route("/go/{token}", methods=["GET", "HEAD"])
def destination_go(token: Token, request: Request, session: DB) -> Response:
    links: TrackingLinks = request.app.state.links
    found = links.verify_go(token) if len(token) <= MAX_TOKEN else None
    destination = (
        session.get(CommunityDestination, found.destination_id)
        if found is not None and found.destination_id < 2**31
        else None
    )
    if (
        found is None
        or destination is None
        or destination.community_id != found.community_id
        or found.channel not in registry.kinds()
    ):
        raise HTTPException(404, "this link is not valid")
    community = session.get(Community, destination.community_id)
    assert community is not None  # the foreign key
    target = tracked_url(
        destination.url,
        channel=found.channel,
        campaign=found.campaign or NO_CAMPAIGN,
        community=community.slug,
    )
    if not target.startswith(("https://", "http://")):
        raise HTTPException(404, "this link is not valid")
    # A HEAD is a link checker's, never a person's.
    if (
        request.method == "GET"
        and not is_preview(request.headers.get("user-agent"))
        and _counted_again(request, destination.id, found.channel)
    ):
        day = now_of(request).astimezone(ZoneInfo(community.timezone)).date()
        record_click(session=session, destination=destination, channel=found.channel, day=day)
        session.commit()
    return RedirectResponse(target, status_code=302, headers=NO_CACHE)


def _page(
    request: Request,
    post: Post,
    subscriber: Subscriber,
    session: Session,
    *,
    done: bool,
    token: str,
) -> Response:
    community = session.get(Community, post.community_id)
    return render(
        request,
        "unsubscribe.html",
        user=None,
        public=True,
        community=community,
        email=subscriber.email,
        done=done,
        action=f"/e/unsubscribe/{token}",
    )


@router.get("/e/unsubscribe/{token}")
def unsubscribe_page(token: Token, request: Request, session: DB) -> Response:
    _found, post, subscriber = _verified(request, session, token, "unsubscribe")
    response = _page(
        request, post, subscriber, session, done=subscriber.unsubscribed_at is not None, token=token
    )
    response.headers.update(NO_CACHE)
    return response


@router.post("/e/unsubscribe/{token}")
def unsubscribe(token: Token, request: Request, session: DB) -> Response:
    # Any body is accepted: RFC 8058's "List-Unsubscribe=One-Click" or the page's own form.
    _found, post, subscriber = _verified(request, session, token, "unsubscribe")
    if subscriber.unsubscribed_at is None:
        _record(session, post, subscriber, EmailEventKind.UNSUBSCRIBE)
    response = _page(request, post, subscriber, session, done=True, token=token)
    response.headers.update(NO_CACHE)
    return response
