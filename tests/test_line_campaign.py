"""A campaign's ``line:`` block, planned against the database (SQLite and PostgreSQL): one
LINE post per community and time on the programme's Official Account, its card's link
carrying LINE's UTM values, its content within LINE's limits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import plan_file
from channels.line import LineLimits
from marketing.cli.communities import SAMPLE
from marketing.models import ChannelAccount, ChannelKind
from marketing.problems import InvalidInput
from marketing.reference import import_reference

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

CAMPAIGN = """\
slug: line-songkran-2027
name: สงกรานต์ชุมชน 2570 ทางไลน์
timezone: Asia/Bangkok
window:
  start: 2027-04-01
  end: 2027-04-30
communities: all
channels:
  line:
    account: {account}
    text: |
      สงกรานต์นี้ชวนเที่ยว{{{{ community.name_th }}}} จังหวัด{{{{ community.province }}}}
    card_title: "เที่ยว{{{{ community.name_th }}}}"
    card_body: "{{{{ community.description }}}}"
    link: "https://community.example.org/{{{{ community.slug }}}}"
    card_button: ดูโปรแกรม
schedule:
  at:
    - key: announce
      time: 2027-04-05T10:00:00+07:00
"""


@pytest.fixture
def sample(session: Session) -> Session:
    """The sample communities and accounts, the programme's LINE account (glo-line) among
    them."""
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def test_a_line_block_plans_one_post_per_community_with_the_tracked_link(
    sample: Session, tmp_path: Path
) -> None:
    path = tmp_path / "line.yaml"
    path.write_text(CAMPAIGN.format(account="glo-line"), encoding="utf-8")

    plan = plan_file(session=sample, path=path, now=NOW)

    assert len(plan.posts) == 10
    assert {p.channel for p in plan.posts} == {ChannelKind.LINE}
    for post in plan.posts:
        content = post.content
        assert content["text"].startswith("สงกรานต์นี้ชวนเที่ยว")
        assert content["target"] == "broadcast" and content["card_button"] == "ดูโปรแกรม"
        query = parse_qs(urlsplit(content["link"]).query)
        assert (query["utm_source"], query["utm_medium"]) == (["line"], ["messaging"])
        assert LineLimits.content_problems(content) == []


def test_a_line_block_on_an_account_that_is_not_a_line_id_is_refused(
    sample: Session, tmp_path: Path
) -> None:
    account = sample.scalars(select(ChannelAccount).where(ChannelAccount.slug == "glo-line")).one()
    account.external_id = "not a LINE id"
    sample.commit()
    path = tmp_path / "line.yaml"
    path.write_text(CAMPAIGN.format(account="glo-line"), encoding="utf-8")

    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=path, now=NOW)

    assert "not a LINE Official Account id" in str(caught.value.problems)
