"""The web app for tests: users, a signed-in test client that fills in CSRF tokens, sample
data with an email post, and a real uvicorn server in a thread for the browser tests."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from marketing.cli.communities import SAMPLE
from marketing.db import session_scope, utcnow
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Delivery,
    DeliveryState,
    Post,
    Role,
    Subscriber,
)
from marketing.reference import import_reference
from marketing.web import create_app
from marketing.web.staff import create_user, issue_token
from tests.support.services import free_port, wait_until

PASSWORD = "correct-horse-battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: "Now" for the web app in tests that upload campaigns with fixed dates (2031): those dates
#: stay in its future whatever day the suite runs on.
NOW = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def clock_at(moment: datetime) -> Callable[[], datetime]:
    """A clock for :func:`marketing.web.create_app` that always says ``moment``."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return lambda: moment


def same_week_pair(today: date, *, ahead: int = 14) -> tuple[date, date]:
    """A Tuesday at least ``ahead`` days after ``today`` and the Wednesday after it: by
    construction in one Monday-to-Sunday week and one month, whatever ``today`` is."""
    tuesday = today + timedelta(days=ahead)
    tuesday += timedelta(days=(1 - tuesday.weekday()) % 7)
    if (tuesday + timedelta(days=1)).month != tuesday.month:  # the 30th or 31st
        tuesday += timedelta(days=7)
    return tuesday, tuesday + timedelta(days=1)


def add_user(engine: Engine, username: str, role: Role, *, language: str = "th") -> None:
    with session_scope(engine) as session:
        create_user(
            session=session, username=username, password=PASSWORD, role=role, language=language
        )


def token_for(engine: Engine, username: str) -> str:
    from marketing.web.staff import find_user

    with session_scope(engine) as session:
        return issue_token(session=session, user=find_user(session=session, username=username))


def import_sample(engine: Engine) -> None:
    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)


EMAIL_LINK = "https://example.org/ผ้าทอ?utm_source=email"


def email_post(
    engine: Engine, *, slug: str = "news", community: str = "nan-ban-doi-ngoen", sent: bool = True
) -> int:
    """An approved campaign with one email post to ``community`` (linking to EMAIL_LINK);
    its id.  ``sent``: it went to every subscriber of the community (a delivery each)."""
    now = utcnow()
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == slug)).first()
        if campaign is None:
            campaign = Campaign(
                slug=slug,
                name="ข่าวชุมชน",
                source_text="-",
                source_hash="-",
                status=CampaignStatus.APPROVED,
            )
            session.add(campaign)
        found = session.scalars(select(Community).where(Community.slug == community)).one()
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.kind == ChannelKind.EMAIL)
        ).first()
        assert account is not None, "the sample has a programme-wide email account"
        count = len(session.scalars(select(Post.id)).all())
        post = Post(
            campaign=campaign,
            community_id=found.id,
            channel_account_id=account.id,
            channel=ChannelKind.EMAIL,
            idempotency_key=f"{slug}-{community}-{count}",
            occurrence_key=str(count),
            scheduled_at=now - timedelta(hours=1),
            next_try_at=now - timedelta(hours=1),
            content={
                "subject": "ข่าวจากชุมชน",
                "html": f'<p>สวัสดีค่ะ <a href="{EMAIL_LINK}">ผ้าทอ</a></p>',
            },
            content_hash="-",
        )
        session.add(post)
        session.flush()
        if sent:
            for subscriber_id in session.scalars(
                select(Subscriber.id).where(Subscriber.community_id == found.id)
            ):
                session.add(
                    Delivery(
                        post_id=post.id,
                        subscriber_id=subscriber_id,
                        state=DeliveryState.SENT,
                        sent_at=now,
                    )
                )
        return post.id


def subscribers_of(engine: Engine, community: str) -> list[int]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Subscriber.id)
                .join(Community, Community.id == Subscriber.community_id)
                .where(Community.slug == community)
                .order_by(Subscriber.id)
            )
        )


class WebClient:
    """A test client for one browser: it signs in and sends each form's CSRF token."""

    def __init__(self, app: FastAPI) -> None:
        self.http = TestClient(app, follow_redirects=False)
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def refresh_csrf(self, path: str = "/account") -> str:
        found = CSRF.search(self.http.get(path).text)
        assert found, f"no CSRF token on {path}"
        self.csrf = found[1]
        return self.csrf

    def sign_in(self, username: str, password: str = PASSWORD) -> WebClient:
        token = CSRF.search(self.http.get("/login").text)
        assert token
        answer = self.http.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token[1], "next": "/"},
        )
        assert answer.status_code == 303, answer.text[:500]
        self.refresh_csrf()
        return self

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A form post with the session's CSRF token."""
        return self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


def imported(client: WebClient, answer: Any) -> Any:
    """The job page of the subscriber import that ``answer`` started, once it has ended."""
    from marketing.web.imports import wait_for

    assert answer.status_code == 303, answer.text[:800]
    location = answer.headers["location"]
    assert location.startswith("/imports/"), location
    assert wait_for(location.removeprefix("/imports/"), timeout=120), "the import did not end"
    page = client.get(location)
    assert page.status_code == 200, page.text[:800]
    return page


class ServerThread:
    """The app under a real uvicorn server on a free port, in a thread of this process."""

    def __init__(self, app: FastAPI, *, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=20, what="uvicorn to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        deadline = time.monotonic() + 10
        self.thread.join(max(0.0, deadline - time.monotonic()))


@contextmanager
def served(
    engine: Engine, *, clock: Callable[[], datetime] | None = None
) -> Iterator[ServerThread]:
    server = ServerThread(create_app(engine=engine, clock=clock)).start()
    try:
        yield server
    finally:
        server.stop()
