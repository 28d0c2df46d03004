"""Account health: tokens of accounts with posts coming up are checked before the posts are due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from channels.sandbox.suite import SandboxAccount, SandboxSuite, sandbox_token
from marketing.db import session_scope, utcnow
from marketing.models import (
    AccountHealth,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Post,
)
from marketing.settings import reset_settings
from tasks import wiring
from tests.test_publishing_states import make_posts


@pytest.fixture
def suite(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxSuite]:
    with SandboxSuite() as suite:
        make_posts(engine, 1)  # imports the sample communities
        with session_scope(engine) as s:
            accounts = [a for a in s.scalars(select(ChannelAccount)) if a.secret_name]
            for a in accounts:
                monkeypatch.setenv(
                    f"MARKETING_SECRET_{a.secret_name}", sandbox_token(a.secret_name or "")
                )
            suite.register(
                SandboxAccount(a.kind.value, a.external_id, sandbox_token(a.secret_name or ""))
                for a in accounts
            )
        for name, value in suite.settings_env().items():
            monkeypatch.setenv(name, value)
        reset_settings()
        wiring.reset()
        yield suite
        wiring.reset()


def _health(session: Session, slug: str) -> ChannelAccount:
    session.commit()
    session.expire_all()
    return session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).one()


def test_expired_token_is_shown_before_the_post_is_due(
    engine: Engine, session: Session, suite: SandboxSuite
) -> None:
    from tasks.health import check_accounts

    soon = utcnow() + timedelta(hours=2)
    fb = make_posts(engine, 10, due=soon)  # every community's Facebook Page
    yt = make_posts(engine, 1, due=soon, channel=ChannelKind.YOUTUBE)
    assert fb and yt
    broken = _health(session, "nan-ban-doi-ngoen-facebook")
    suite.graph.expire_token(broken.external_id)

    result = check_accounts()
    assert result["broken"] == 1
    assert result["checked"] >= 11  # ten Pages and a channel, plus the first fixture post's
    account = _health(session, "nan-ban-doi-ngoen-facebook")
    assert account.health == AccountHealth.NEEDS_RECONNECT
    assert "190" in (account.health_message or "")
    assert "reconnect the Page" in (account.health_message or "")
    healthy = _health(session, "trat-ban-ao-sai-facebook")
    assert healthy.health == AccountHealth.OK and healthy.health_checked_at is not None
    # Checked recently: not asked again on the next beat.
    assert check_accounts()["checked"] == 0


def test_accounts_without_upcoming_posts_are_left_alone(
    engine: Engine, session: Session, suite: SandboxSuite
) -> None:
    from tasks.health import check_accounts

    with session_scope(engine) as s:
        for campaign in s.scalars(select(Campaign)):
            campaign.status = CampaignStatus.PAUSED
    assert check_accounts()["checked"] == 0
    assert session.scalar(select(Post.id).limit(1)) is not None
