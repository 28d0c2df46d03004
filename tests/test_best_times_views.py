"""Best times as staff and scripts see them (#17): ``marketing report best-times`` (Thai and
English, at 80 and 60 columns, and JSON), the heat map on the community page and the JSON API,
on both databases, from posts drawn from a known truth (Friday evening twice the rest)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from rich.cells import cell_len
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from marketing.besttimes import AGE, BLOCKS, BLOCKS_PER_DAY
from marketing.besttimes_view import level_of
from marketing.cli import main
from marketing.cli.base import console
from marketing.db import session_scope
from marketing.models import Community, Role
from marketing.thai import WEEKDAYS_SHORT
from marketing.web import create_app
from marketing.web.i18n import ENGLISH_WEEKDAYS
from tests.support.besttimes import (
    FRIDAY_EVENING,
    NOW,
    at_block,
    seeded_programme,
)
from tests.support.web import WebClient, add_user, clock_at

SLUGS = ("busy", "small", "other-1", "other-2", "newcomer", "quiet")
AT = ("--now", NOW.isoformat())


def _seed(session: Session) -> None:
    """The four communities of the model's tests, a newcomer with one post and a quiet
    community with none."""
    programme, _ids = seeded_programme(session, random.Random(7))
    newcomer = programme.community("newcomer")
    programme.post(newcomer, at_block(FRIDAY_EVENING, 1), [(AGE, 500, 40)])
    session.add(Community(slug="quiet", name_th="บ้านเงียบ", name_en="Quiet", province="น่าน"))
    session.commit()


@pytest.fixture
def seeded(session: Session) -> Iterator[Session]:
    _seed(session)
    yield session


def _fits(output: str, width: int) -> list[str]:
    lines = output.splitlines()
    assert [line for line in lines if cell_len(line) > width] == []
    assert "…" not in output
    return lines


def test_the_command_recommends_per_community_in_thai_and_english_within_the_width(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    for width in (80, 60):
        monkeypatch.setattr(console, "width", width)
        thai = runner.invoke(main, ["report", "best-times", *AT], catch_exceptions=False)
        assert thai.exit_code == 0, thai.output
        lines = _fits(thai.output, width)
        assert all(any(slug in line for line in lines) for slug in SLUGS), thai.output
        assert "ศุกร์ 18:00–20:00" in _row(lines, "busy")
        assert "ยังมีโพสต์น้อยเกินไป (1 โพสต์)" in _row(lines, "newcomer")
        assert "ยังไม่มีโพสต์ของชุมชนนี้ให้เรียนรู้" in _row(lines, "quiet")
        english = runner.invoke(main, ["--lang", "en", "report", "best-times", *AT])
        assert english.exit_code == 0, english.output
        lines = _fits(english.output, width)
        assert "Friday 18:00–20:00: engagement rate" in _row(lines, "busy")
        assert "ศุกร์" not in english.output


def _row(lines: list[str], slug: str) -> str:
    """The line of the listing that starts ``slug``'s row."""
    found = [line for line in lines if re.search(rf"\b{re.escape(slug)}\b", line)]
    assert len(found) == 1, (slug, lines)
    return found[0]


@pytest.mark.parametrize("language", ["th", "en"])
def test_one_community_gets_its_week_as_a_grid_with_the_recommended_block_marked(
    seeded: Session, monkeypatch: pytest.MonkeyPatch, language: str
) -> None:
    runner = CliRunner()
    days = WEEKDAYS_SHORT if language == "th" else ENGLISH_WEEKDAYS
    friday = days[4]
    for width, halves in ((80, 1), (60, 2)):
        monkeypatch.setattr(console, "width", width)
        result = runner.invoke(
            main, ["--lang", language, "report", "best-times", "busy", *AT], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        lines = _fits(result.output, width)
        grid = [line for line in lines if line.split(" ", 1)[0] in days]
        assert len(grid) == 7 * halves, result.output
        fridays = [line for line in grid if line.split(" ", 1)[0] == friday]
        # Friday 18:00 is the tenth column of the day (the fourth of the afternoon half).
        row, column = fridays[-1], 9 if halves == 1 else 3
        cell = row[4 + 5 * column : 4 + 5 * (column + 1)]
        assert cell.endswith("*") and int(cell[:-1]) > 15, (cell, row)
        assert sum(line.count("*") for line in grid) == 1  # one recommended block
        # Blocks it never posted in are marked; its three blocks are not.
        assert sum(line.count("·") for line in grid) == BLOCKS - 3


def test_a_community_with_no_posts_gets_the_programme_pattern_labelled(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 80)
    result = CliRunner().invoke(main, ["report", "best-times", "quiet", *AT])
    assert result.exit_code == 0, result.output
    lines = _fits(result.output, 80)
    assert any(line.startswith("รูปแบบของทั้งโครงการ (ค่าเฉลี่ย") for line in lines)
    grid = [line for line in lines if line.split(" ", 1)[0] in WEEKDAYS_SHORT]
    assert len(grid) == 7 and not any("*" in line for line in grid)
    assert sum(line.count("·") for line in grid) == BLOCKS


def test_json_for_programs_and_unknown_communities_refused(seeded: Session) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["report", "best-times", "--format", "json", *AT])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    by_slug = {c["community"]: c for c in body["communities"]}
    assert set(by_slug) == set(SLUGS)
    busy = by_slug["busy"]
    assert busy["recommendation"]["block"] == FRIDAY_EVENING
    assert busy["recommendation"]["confidence"] == "high"
    assert busy["recommendation"]["label_th"] == "ศุกร์ 18:00–20:00"
    assert len(busy["blocks"]) == BLOCKS and busy["posts"] == 18
    assert busy["source"] == "community"
    # No post of its own: the programme's pattern, labelled, with no recommendation.
    quiet = by_slug["quiet"]
    assert quiet["source"] == "programme" and quiet["recommendation"] is None
    assert quiet["posts"] == 0 and len(quiet["blocks"]) == BLOCKS
    assert quiet["blocks"][FRIDAY_EVENING]["relative"] > 1.15  # the programme's best block
    assert max(quiet["blocks"], key=lambda b: b["relative"])["block"] == FRIDAY_EVENING
    missing = runner.invoke(main, ["report", "best-times", "nowhere", *AT])
    assert missing.exit_code == 2 and "nowhere" in missing.output
    naive = runner.invoke(main, ["report", "best-times", "--now", "2027-06-30T12:00"])
    assert naive.exit_code == 2 and "offset" in naive.output
    # The clock decides: before any post was a day old, nothing is learnt yet.
    early = runner.invoke(
        main, ["report", "best-times", "busy", "--format", "json", "--now", "2027-01-01T00:00Z"]
    )
    nothing = json.loads(early.output)["communities"][0]
    assert nothing["recommendation"] is None and nothing["source"] is None


def test_colour_levels_follow_the_rate_against_the_average() -> None:
    assert [level_of(r) for r in (0.5, 0.9, 1.0, 1.1, 1.6)] == [0, 1, 2, 3, 4]


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    with session_scope(engine) as session:
        _seed(session)
    add_user(engine, "reader", Role.VIEWER)
    add_user(engine, "english", Role.VIEWER, language="en")
    return create_app(engine=engine, clock=clock_at(NOW))


CELL = re.compile(r'<td class="heat-(\d)( recommended)?" title="([^"]*)" aria-label="([^"]*)"')


def test_the_community_page_shows_the_heat_map_with_the_recommended_block(app: FastAPI) -> None:
    client = WebClient(app).sign_in("reader")
    try:
        page = client.get("/communities/busy")
        assert page.status_code == 200
        html = page.text
        cells = CELL.findall(html)
        assert len(cells) == BLOCKS
        recommended = [i for i, c in enumerate(cells) if c[1]]
        assert recommended == [FRIDAY_EVENING]
        level, _, title, label = cells[FRIDAY_EVENING]
        assert title == label and int(level) >= 3
        assert title.startswith("ศุกร์ 18:00–20:00: อัตราการมีส่วนร่วม") and "จาก 6 โพสต์" in title
        assert title.endswith("ช่วงที่แนะนำ")
        never = cells[2 * BLOCKS_PER_DAY]  # Wednesday 00:00: no post of its own there
        assert "ชุมชนยังไม่เคยโพสต์ในช่วงนี้" in never[2]
        assert "ได้อัตราการมีส่วนร่วมสูงกว่าค่าเฉลี่ยของชุมชน" in html and "มั่นใจสูง" in html
        assert "ต่ำกว่าค่าเฉลี่ยเกิน 20 %" in html  # the legend
        assert "โอกาสที่ช่วงเวลานี้ได้ผลดีกว่าค่าเฉลี่ยของชุมชน &gt; 99%" in html  # never "100%"
        assert '<abbr title="ศุกร์">ศ.</abbr>' in html

        newcomer = client.get("/communities/newcomer").text
        assert "ยังมีโพสต์น้อยเกินไปที่จะบอกช่วงเวลาที่ดีที่สุดของชุมชนนี้เองได้" in newcomer
        assert len(CELL.findall(newcomer)) == BLOCKS and "data-recommended" not in newcomer
        quiet = client.get("/communities/quiet").text
        assert "แผนภาพจึงแสดงรูปแบบของทั้งโครงการ" in quiet and "รูปแบบของทั้งโครงการ:" in quiet
        programme = CELL.findall(quiet)
        assert len(programme) == BLOCKS and "data-recommended" not in quiet
        assert all("ชุมชนยังไม่เคยโพสต์ในช่วงนี้" in cell[2] for cell in programme)
        assert int(programme[FRIDAY_EVENING][0]) >= 3  # the programme's Friday evening
        youtube = client.get("/communities/busy?channel=youtube").text
        assert not CELL.findall(youtube)  # no YouTube post in the programme: no map at all
        assert "ช่องทางนี้ยังไม่มีโพสต์เช่นนั้น จึงยังไม่มีแผนภาพ" in youtube
        assert client.get("/communities/busy?channel=email").status_code == 400
    finally:
        client.close()
    english = WebClient(app).sign_in("english")
    try:
        html = english.get("/communities/busy").text
        assert "Friday 18:00–20:00: engagement rate" in html and "recommended" in html
        assert '<abbr title="Friday">Fri</abbr>' in html
    finally:
        english.close()


def test_the_api_gives_the_best_times_of_one_community(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    client = WebClient(app).sign_in("reader")  # a session works for the API too
    try:
        body = client.get("/api/v1/communities/busy/best-times").json()
        assert body["recommendation"]["block"] == FRIDAY_EVENING
        assert body["reason_th"].startswith("ศุกร์ 18:00–20:00")
        assert len(body["blocks"]) == BLOCKS
        assert client.get("/api/v1/communities/nowhere/best-times").status_code == 404
        quiet = client.get("/api/v1/communities/quiet/best-times?channel=youtube").json()
        assert quiet["recommendation"] is None and quiet["channel"] == "youtube"
    finally:
        client.close()
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/communities/busy/best-times").status_code == 401
