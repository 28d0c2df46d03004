"""`marketing demo`: the whole job on embedded defaults, as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketing.db import make_engine
from marketing.models import ChannelKind, CommunityPerformance, Post, PostState
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
    assert "30 published" in first.stdout
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
    assert states == {PostState.PUBLISHED: 30}
    assert len(totals) == 30  # ten communities x three channels
    for _community, channel, posts, views, sent in totals:
        assert posts == 1
        assert (sent if channel == ChannelKind.EMAIL else views) > 0
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
    assert "30 published" in second.stdout
