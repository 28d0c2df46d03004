"""`marketing demo`: the whole job on embedded defaults, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.sandbox.suite import SandboxSuite
from marketing.db import make_engine
from marketing.demo.connect import connect_settings
from marketing.models import (
    AccountToken,
    ChannelAccount,
    ChannelKind,
    CommunityPerformance,
    Post,
    PostState,
    TokenKind,
)
from marketing.settings import DevelopmentSecretRefused, Settings
from marketing.token_store import load_tokens, token_cipher
from tests.test_cli import MARKETING

pytestmark = pytest.mark.slow


def run_demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    return subprocess.run(
        [MARKETING, "demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_demo_publishes_everything_and_reports_every_community(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "40 published" in first.stdout
    folder = tmp_path / "data" / "demo"
    engine = make_engine(f"sqlite:///{folder / 'marketing.sqlite3'}")
    with engine.connect() as conn:
        states = dict(conn.execute(select(Post.state, func.count()).group_by(Post.state)).all())
        totals = conn.execute(
            select(
                CommunityPerformance.community_id,
                CommunityPerformance.channel,
                func.sum(CommunityPerformance.posts),
                func.sum(CommunityPerformance.views),
                func.sum(CommunityPerformance.emails_sent),
            ).group_by(CommunityPerformance.community_id, CommunityPerformance.channel)
        ).all()
    engine.dispose()
    assert states == {PostState.PUBLISHED: 40}
    assert len(totals) == 40  # ten communities x four channels
    for _community, channel, posts, views, sent in totals:
        assert posts == 1
        assert (sent if channel == ChannelKind.EMAIL else views) > 0
    assert_connected_through_the_store(folder / "marketing.sqlite3")
    reports = sorted(p.name for p in (folder / "reports").glob("*.html"))
    assert "overview.html" in reports and len(reports) == 12
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in (folder / "reports" / "overview.html").read_text("utf-8")

    # The hint it prints works as printed, typed in the same folder (#15).
    hint = first.stdout.split("look around with:", 1)[1].strip().splitlines()[0]
    assert hint.endswith(" report overview")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env["COLUMNS"] = "200"
    looked = subprocess.run(
        ["sh", "-c", hint], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert looked.returncode == 0, looked.stderr
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in looked.stdout

    second = run_demo(tmp_path)  # a second run starts afresh and works the same
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "40 published" in second.stdout


#: What the sandboxes issue: Facebook user and Page tokens, Google access and refresh tokens.
ISSUED = re.compile(rb"EAA[A-Za-z0-9]{20}|ya29\.[A-Za-z0-9_-]{20}|1//[A-Za-z0-9_-]{20}")


#: A Fernet token as the store writes it: version byte 0x80 and a timestamp, urlsafe base64.
FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_-]+=*")


def demo_settings() -> Settings:
    """The demo's token key, as the demo's database was written with it."""
    key = connect_settings(SandboxSuite())["MARKETING_TOKEN_KEYS"]
    return Settings(token_keys=SecretStr(key), public_base_url="http://127.0.0.1:8000")


def assert_connected_through_the_store(database: Path) -> None:
    """Every Page and channel is served by the encrypted store (connected through the web
    app's flows, no secret name left), its posts went out through it, and the file holds
    none of the tokens the sandboxes issued -- only their ciphertext (#13)."""
    engine = make_engine(f"sqlite:///{database}")
    social = (ChannelKind.FACEBOOK, ChannelKind.YOUTUBE, ChannelKind.LINE)
    with Session(engine) as session:
        accounts = session.scalars(
            select(ChannelAccount).where(ChannelAccount.kind.in_(social))
        ).all()
        stored = set(session.scalars(select(AccountToken.account_id)))
        assert len(accounts) >= 21
        assert {a.id for a in accounts} <= stored
        assert [a.slug for a in accounts if a.secret_name] == []
        published = session.execute(
            select(Post.channel, Post.state, func.count())
            .join(AccountToken, AccountToken.account_id == Post.channel_account_id)
            .group_by(Post.channel, Post.state)
        ).all()
        assert sorted(published) == [
            (ChannelKind.FACEBOOK, PostState.PUBLISHED, 10),
            (ChannelKind.LINE, PostState.PUBLISHED, 10),
            (ChannelKind.YOUTUBE, PostState.PUBLISHED, 10),
        ]
        tokens = {
            a.kind: load_tokens(session=session, account_id=a.id, settings=demo_settings())
            for a in accounts
        }
    engine.dispose()
    page, channel = tokens[ChannelKind.FACEBOOK], tokens[ChannelKind.YOUTUBE]
    assert page is not None and channel is not None and channel.refresh_token is not None
    line = tokens[ChannelKind.LINE]  # pasted into the LINE form, checked against bot info
    assert line is not None and line.kind == TokenKind.LINE_CHANNEL
    plain = [
        page.access_token.get_secret_value(),
        channel.access_token.get_secret_value(),
        channel.refresh_token.get_secret_value(),
    ]
    assert [bool(ISSUED.match(t.encode())) for t in plain] == [True, True, True]
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert len(raw) > 100_000
    assert [t[:8] for t in plain if t.encode() in raw] == []
    assert line.access_token.get_secret_value().encode() not in raw
    # Outside the ciphertext (Fernet tokens, urlsafe base64 from "gAAAAA"), where a run of
    # random base64 can spell "EAA" and twenty letters by chance.
    assert ISSUED.findall(FERNET.sub(b"", raw)) == []


def test_demo_token_key_is_refused_off_this_machine() -> None:
    """The demo's development token key encrypts on this machine only, as the other
    development secrets (#13)."""
    settings = demo_settings()
    assert token_cipher(settings).decrypt(token_cipher(settings).encrypt(b"x")) == b"x"
    exposed = settings.model_copy(update={"public_base_url": "https://marketing.example.org"})
    with pytest.raises(DevelopmentSecretRefused) as refused:
        token_cipher(exposed)
    assert "MARKETING_TOKEN_KEYS" in str(refused.value)
