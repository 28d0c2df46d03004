"""The overview kept between rollups (#19): a rollup committed anywhere makes every web
process build it again, a renamed community shows at once, and nothing else rebuilds it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.models import Community, Post, Role
from marketing.outcomes import read_outcomes, store_outcomes
from marketing.performance import keys_for_post, rollup, store_snapshots
from marketing.reports import community_report, programme_overview
from marketing.web import create_app
from marketing.web.report_cache import Document, DocumentCache
from tests.support.web import NOW, WebClient, add_user, clock_at, token_for
from tests.test_performance import T0, m, publish
from tests.test_publishing_states import make_posts

OVERVIEW = "/reports/overview?from=2026-11-20&to=2026-12-03"


def programme_views(client: WebClient) -> int:
    answer = client.get(OVERVIEW + "&format=json")
    assert answer.status_code == 200, answer.text[:500]
    views: int = json.loads(answer.text)["programme"][-1]["current"]["views"]
    return views


def builds(app: FastAPI) -> int:
    cache: DocumentCache = app.state.report_cache
    return cache.builds


def test_a_rollup_anywhere_shows_in_every_web_process_and_nothing_else_rebuilds(
    engine: Engine,
) -> None:
    (post,) = make_posts(engine, 1)
    publish(engine, [post])
    add_user(engine, "editor", Role.EDITOR)
    with session_scope(engine) as s:
        keys = store_snapshots(session=s, items=[(post, m(T0 + timedelta(minutes=10), 100, 5))])
        rollup(session=s, keys=keys | keys_for_post(session=s, post_id=post))
    # Two web processes on one database: each keeps its own documents.
    apps = [create_app(engine=engine, clock=clock_at(NOW)) for _ in range(2)]
    clients = [WebClient(app).sign_in("editor") for app in apps]
    try:
        assert [programme_views(c) for c in clients] == [100, 100]
        assert [programme_views(c) for c in clients] == [100, 100]
        assert [builds(app) for app in apps] == [1, 1]  # the second reading was kept

        # New snapshots are not figures until they are rolled up: the kept overview holds.
        later = T0 + timedelta(hours=1)
        with session_scope(engine) as s:
            keys = store_snapshots(session=s, items=[(post, m(later, 250, 9))])
        assert [programme_views(c) for c in clients] == [100, 100]
        assert [builds(app) for app in apps] == [1, 1]

        # The rollup (here by a worker, outside both apps) changes what both show.
        with session_scope(engine) as s:
            rollup(session=s, keys=keys)
        assert [programme_views(c) for c in clients] == [250, 250]
        assert [builds(app) for app in apps] == [2, 2]

        # Each format, language and sort is its own document, built once.
        html = clients[0].get(OVERVIEW + "&sort=name")
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert clients[0].get(OVERVIEW + "&sort=name").text == html.text
        assert builds(apps[0]) == 3

        # A renamed community shows without a rollup.
        with session_scope(engine) as s:
            community = s.scalars(
                select(Community).join(Post, Post.community_id == Community.id)
            ).one()
            community.name_th = "ชุมชนชื่อใหม่"
        assert "ชุมชนชื่อใหม่" in clients[0].get(OVERVIEW + "&sort=name").text
        csv = clients[0].get(OVERVIEW + "&format=csv")
        assert "attachment" in csv.headers["content-disposition"]
        assert "ชุมชนชื่อใหม่" in csv.content.decode("utf-8-sig")
    finally:
        for client in clients:
            client.close()


def test_the_cache_keeps_documents_up_to_its_size_least_recently_used_first() -> None:
    cache = DocumentCache(max_bytes=10)
    made: list[str] = []

    def maker(key: str, size: int) -> Document:
        def build() -> Document:
            made.append(key)
            return Document(b"x" * size, "text/plain")

        return cache.get_or_build(key, build)

    maker("a", 4)
    maker("b", 4)
    maker("a", 4)  # kept; now the most recently used
    maker("c", 4)  # 12 bytes: "b" goes
    maker("a", 4)
    maker("b", 4)
    maker("big", 11)  # larger than the whole cache: built, not kept
    maker("big", 11)
    assert made == ["a", "b", "c", "b", "big", "big"]
    assert cache.builds == 6


def test_a_communitys_rank_follows_rollups_and_new_communities(engine: Engine) -> None:
    a, b = make_posts(engine, 2)
    publish(engine, [a, b])
    add_user(engine, "editor", Role.EDITOR)
    with session_scope(engine) as s:
        slug_a, slug_b = (
            s.scalars(
                select(Community.slug)
                .join(Post, Post.community_id == Community.id)
                .where(Post.id == post)
            ).one()
            for post in (a, b)
        )
        keys = store_snapshots(session=s, items=[(a, m(T0 + timedelta(minutes=10), 100, 5))])
        rollup(session=s, keys=keys | keys_for_post(session=s, post_id=a))
    assert slug_a != slug_b
    app = create_app(engine=engine, clock=clock_at(NOW))
    client = WebClient(app).sign_in("editor")

    def rank(slug: str) -> dict[str, int]:
        answer = client.get(f"/reports/community/{slug}?from=2026-11-20&to=2026-12-03&format=json")
        assert answer.status_code == 200, answer.text[:500]
        found: dict[str, int] = json.loads(answer.text)["rank"]
        # The same rank as the report computes without the web app's kept ranks.
        with session_scope(engine) as s:
            plain = community_report(
                session=s, community_slug=slug, start=date(2026, 11, 20), end=date(2026, 12, 3)
            )
        assert found == plain.rank.model_dump()
        return found

    try:
        first = rank(slug_a)
        assert first["by_interactions"] == 1 and rank(slug_b)["by_interactions"] > 1
        with session_scope(engine) as s:
            keys = store_snapshots(session=s, items=[(b, m(T0 + timedelta(minutes=20), 900, 60))])
            rollup(session=s, keys=keys | keys_for_post(session=s, post_id=b))
        assert rank(slug_b)["by_interactions"] == 1
        assert rank(slug_a)["by_interactions"] == 2
        with session_scope(engine) as s:
            s.add(Community(slug="new-one", name_th="ชุมชนใหม่", name_en="New", province="น่าน"))
        assert rank(slug_a)["of"] == first["of"] + 1
        # The community pages use the same kept ranks.
        assert client.get(f"/communities/{slug_a}").status_code == 200
    finally:
        client.close()


def test_the_apis_overview_is_kept_until_a_rollup_and_answers_as_before(engine: Engine) -> None:
    (post,) = make_posts(engine, 1)
    publish(engine, [post])
    add_user(engine, "viewer", Role.VIEWER)
    with session_scope(engine) as s:
        keys = store_snapshots(session=s, items=[(post, m(T0 + timedelta(minutes=10), 100, 5))])
        rollup(session=s, keys=keys | keys_for_post(session=s, post_id=post))
    app = create_app(engine=engine, clock=clock_at(NOW))
    bearer = {"Authorization": f"Bearer {token_for(engine, 'viewer')}"}
    url = "/api/v1/reports/overview?from=2026-11-20&to=2026-12-03&sort=name"

    def answer() -> dict[str, Any]:
        with TestClient(app) as client:
            found = client.get(url, headers=bearer)
        assert found.status_code == 200, found.text[:500]
        assert found.headers["content-type"] == "application/json"
        parsed: dict[str, Any] = found.json()
        return parsed

    first = answer()
    with session_scope(engine) as s:
        plain = programme_overview(
            session=s, start=date(2026, 11, 20), end=date(2026, 12, 3), sort="name"
        )
        assert first == plain.model_dump(mode="json", by_alias=True)
    assert first["programme"][-1]["current"]["views"] == 100
    assert answer() == first
    assert builds(app) == 1
    with session_scope(engine) as s:
        keys = store_snapshots(session=s, items=[(post, m(T0 + timedelta(hours=1), 250, 9))])
        rollup(session=s, keys=keys)
    assert answer()["programme"][-1]["current"]["views"] == 250
    assert builds(app) == 2


def test_the_yearly_report_is_kept_until_a_rollup_or_an_outcomes_import(engine: Engine) -> None:
    (post,) = make_posts(engine, 1)
    publish(engine, [post])
    add_user(engine, "viewer", Role.VIEWER)
    add_user(engine, "reader", Role.VIEWER, language="en")
    with session_scope(engine) as s:
        keys = store_snapshots(session=s, items=[(post, m(T0 + timedelta(minutes=10), 100, 5))])
        rollup(session=s, keys=keys | keys_for_post(session=s, post_id=post))

    def outcomes(sales: str) -> None:
        text = f"community,month,sales,bookings,visitors\nnan-ban-doi-ngoen,2569-12,{sales},4,\n"
        with session_scope(engine) as s:
            rows = read_outcomes(session=s, text=text, file="o.csv")
            store_outcomes(session=s, rows=rows, file="o.csv", actor="malee", now=NOW)

    outcomes("1000")
    app = create_app(engine=engine, clock=clock_at(NOW))
    client = WebClient(app).sign_in("viewer")
    try:
        page = client.get("/reports/year/2569").text
        assert "1,000.00" in page and "ผลของโครงการประจำปี 2569" in page
        assert client.get("/reports/year/2026").text == page  # either era, kept
        assert builds(app) == 2  # the figures, and the table in Thai

        # The same figures imported again change nothing, so nothing is built again.
        outcomes("1000")
        assert client.get("/reports/year/2569").text == page
        assert builds(app) == 2

        # Each language has its own table, from the same figures.
        english = WebClient(app).sign_in("reader")
        assert "Whole programme" in english.get("/reports/year/2026").text
        assert "ทั้งโครงการ" in client.get("/reports/year/2569").text
        assert builds(app) == 3
        english.close()

        # A replaced month shows at once.
        outcomes("2500.50")
        assert "2,500.50" in client.get("/reports/year/2569").text
        assert builds(app) == 5

        # So does a rollup: the year's reach follows the summaries.
        assert ">100<" in client.get("/reports/year/2569").text
        with session_scope(engine) as s:
            keys = store_snapshots(session=s, items=[(post, m(T0 + timedelta(hours=1), 7777, 9))])
            rollup(session=s, keys=keys)
        assert "7,777" in client.get("/reports/year/2569").text
        assert builds(app) == 7
    finally:
        client.close()
