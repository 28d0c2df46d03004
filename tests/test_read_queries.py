"""marketing.queries: the reads the API, the pages and the command line share -- a campaign by
its slug, posts by a filter.  Both databases; the three callers list the same posts."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import product

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.db import session_scope
from marketing.models import Campaign, ChannelKind, Community, Post, PostState, Role
from marketing.queries import PostFilter, campaign_by_slug, find_post, find_posts
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, token_for
from tests.test_publishing_states import make_posts


@pytest.fixture
def slugs(engine: Engine) -> tuple[str, str]:
    """Two campaigns: one of 5 Facebook posts, one of 3 YouTube posts, at mixed times and
    states (some posts share a time, so the order by id is tested too)."""
    facebook = make_posts(engine, 5, channel=ChannelKind.FACEBOOK, due=NOW)
    youtube = make_posts(engine, 3, channel=ChannelKind.YOUTUBE, due=NOW - timedelta(hours=2))
    with session_scope(engine) as session:
        for i, post_id in enumerate(facebook):
            session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(
                    scheduled_at=NOW + timedelta(hours=(5 - i) // 2),
                    state=(PostState.PUBLISHED, PostState.FAILED)[i % 2],
                )
            )
        session.execute(update(Post).where(Post.id == youtube[0]).values(state=PostState.PUBLISHED))
        found = {
            channel: slug
            for channel, slug in session.execute(
                select(Post.channel, Campaign.slug)
                .join(Campaign, Campaign.id == Post.campaign_id)
                .where(Post.id.in_([facebook[0], youtube[0]]))
            )
        }
    return found[ChannelKind.FACEBOOK], found[ChannelKind.YOUTUBE]


def test_a_campaign_by_its_slug(session: Session, slugs: tuple[str, str]) -> None:
    found = campaign_by_slug(session=session, slug=slugs[0])
    assert found is not None and found.slug == slugs[0]
    assert campaign_by_slug(session=session, slug="no-such-campaign") is None


def _expected(session: Session, where: PostFilter) -> list[int]:
    rows = session.execute(
        select(Post, Campaign.slug, Community.slug)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .join(Community, Community.id == Post.community_id)
    ).all()
    kept = [
        post
        for post, campaign, community in rows
        if (where.campaign in (None, campaign))
        and (where.community in (None, community))
        and (where.state in (None, post.state))
        and (where.channel in (None, post.channel))
    ]
    return [p.id for p in sorted(kept, key=lambda p: (p.scheduled_at, p.id))]


def test_posts_by_every_combination_of_filters_in_time_order(
    session: Session, slugs: tuple[str, str]
) -> None:
    communities = sorted(
        set(
            session.scalars(
                select(Community.slug).join(Post, Post.community_id == Community.id)
            ).all()
        )
    )
    combinations = product(
        (None, *slugs, "no-such-campaign"),
        (None, communities[0]),
        (None, PostState.PUBLISHED, PostState.FAILED),
        (None, ChannelKind.FACEBOOK, ChannelKind.YOUTUBE),
    )
    nonempty = 0
    for campaign, community, state, channel in combinations:
        where = PostFilter(campaign=campaign, community=community, state=state, channel=channel)
        found = [row.post.id for row in find_posts(session=session, where=where, limit=100)]
        assert found == _expected(session, where), where
        nonempty += bool(found)
    assert nonempty > 20  # the filters were tried on posts, not only on nothing
    everything = [row.post.id for row in find_posts(session=session, limit=100)]
    assert len(everything) == 8
    assert [r.post.id for r in find_posts(session=session, limit=3, offset=2)] == everything[2:5]


def test_posts_scheduled_within_a_time_range(session: Session, slugs: tuple[str, str]) -> None:
    every = find_posts(session=session, limit=None)
    times = sorted({row.post.scheduled_at for row in every})
    assert len(times) >= 3
    since, before = times[1], times[-1]
    found = find_posts(session=session, where=PostFilter(since=since, before=before), limit=None)
    assert [r.post.id for r in found] == [
        r.post.id for r in every if since <= r.post.scheduled_at < before
    ]
    assert found and len(found) < len(every)


def test_one_post_with_its_names(session: Session, slugs: tuple[str, str]) -> None:
    [first] = find_posts(session=session, where=PostFilter(campaign=slugs[1]), limit=1)
    again = find_post(session=session, post_id=first.post.id)
    assert again is not None
    assert (again.campaign_slug, again.community_slug, again.account_slug) == (
        slugs[1],
        first.community_slug,
        first.account_slug,
    )
    assert again.account_slug and again.community_name_th and again.campaign_name
    assert find_post(session=session, post_id=10**9) is None


def test_the_api_the_page_and_the_cli_list_the_same_posts(
    engine: Engine, slugs: tuple[str, str]
) -> None:
    add_user(engine, "viewer", Role.VIEWER)
    with session_scope(engine) as session:
        expected = [
            row.post.id
            for row in find_posts(
                session=session,
                where=PostFilter(campaign=slugs[0], state=PostState.FAILED),
                limit=100,
            )
        ]
    assert len(expected) == 2
    query = f"campaign={slugs[0]}&state=failed"

    client = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("viewer")
    try:
        page = client.get(f"/posts?{query}")
        assert page.status_code == 200
        on_page = [int(i) for i in re.findall(r'<a href="/posts/(\d+)">', page.text)]
        api = client.get(
            f"/api/v1/posts?{query}",
            headers={"Authorization": f"Bearer {token_for(engine, 'viewer')}"},
        )
        assert api.status_code == 200, api.text
        in_api = [p["id"] for p in api.json()]
        assert (
            client.get(f"/api/v1/campaigns/{slugs[0]}", headers=api.request.headers).json()["slug"]
            == slugs[0]
        )
    finally:
        client.close()

    result = CliRunner().invoke(
        main,
        ["--language", "en", "posts", "list", "--campaign", slugs[0], "--state", "failed"],
        catch_exceptions=False,
        env={"COLUMNS": "60"},  # a phone-width terminal: one card per post, "id" first
    )
    assert result.exit_code == 0, result.output
    in_cli = [int(i) for i in re.findall(r"^id\s+(\d+)\s*$", result.output, flags=re.M)]

    assert on_page == in_api == in_cli == expected
