"""Listings and terminal reports fit the terminal (#15): at 60, 80 and 120 columns no line is
wider than the terminal, every slug -- what one types next -- appears whole on a line, and
nothing is cut with "…" (a slug, a number: "7.8…").  In Thai (the default, Buddhist era) and
in English (Common era)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.cli.base import console
from marketing.models import (
    AccountHealth,
    Campaign,
    ChannelAccount,
    Community,
    Post,
)
from marketing.publishing import PROBLEM_STATES
from tests.test_reports import ACTIVE, CAMPAIGN, END, START, seed

PERIOD = ("--from", START.isoformat(), "--to", END.isoformat())
WIDTHS = (60, 80, 120)
LANGUAGES = (("th", "2569"), ("en", "2026"))


@pytest.fixture
def seeded(session: Session) -> Iterator[Session]:
    """The reports' realistic data: ten communities with long Thai names, a campaign with
    published, failed, unconfirmed and waiting posts, and an account that needs reconnecting."""
    seed(session)
    session.execute(
        update(ChannelAccount)
        .where(ChannelAccount.slug == "sukhothai-ban-rim-yom-facebook")
        .values(
            health=AccountHealth.NEEDS_RECONNECT,
            health_checked_at=datetime(2026, 10, 3, 2, 0, tzinfo=UTC),
            health_message="The access token expired on 3 October; reconnect the page.",
        )
    )
    session.commit()
    yield session


def _slugs(session: Session, command: tuple[str, ...]) -> set[str]:
    """The slugs ``command`` must show whole."""
    posts = (
        select(Community.slug, ChannelAccount.slug, Campaign.slug)
        .select_from(Post)
        .join(Community, Community.id == Post.community_id)
        .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
        .join(Campaign, Campaign.id == Post.campaign_id)
    )
    if command[:2] == ("posts", "list"):
        return {s for row in session.execute(posts) for s in (row[0], row[2])}
    if command[:2] == ("posts", "problems"):
        problems = posts.where(Post.state.in_(PROBLEM_STATES))
        return {s for row in session.execute(problems) for s in row}
    if command[:2] == ("accounts", "list"):
        return set(session.scalars(select(ChannelAccount.slug)))
    if command[:2] in (("campaign", "list"), ("report", "campaign")):
        return {CAMPAIGN}
    return set()


def _check(output: str, *, width: int, slugs: set[str]) -> None:
    lines = output.splitlines()
    too_wide = [line for line in lines if cell_len(line) > width]
    assert too_wide == [], f"{len(too_wide)} line(s) wider than {width}: {too_wide[:3]}"
    assert "…" not in output, [line for line in lines if "…" in line][:3]
    cut = [slug for slug in slugs if not any(slug in line for line in lines)]
    assert cut == [], f"slugs not whole on any line at {width} columns: {cut}"


@pytest.mark.parametrize(
    "command",
    [
        ("posts", "list"),
        ("posts", "problems"),
        ("accounts", "list"),
        ("campaign", "list"),
        ("report", "overview", *PERIOD),
        ("report", "community", ACTIVE, *PERIOD),
        ("report", "campaign", CAMPAIGN),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_every_listing_fits_60_80_and_120_columns_with_slugs_and_numbers_whole(
    seeded: Session, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    slugs = _slugs(seeded, command)
    runner = CliRunner()
    for width in WIDTHS:
        monkeypatch.setattr(console, "width", width)
        for language, year in LANGUAGES:
            result = runner.invoke(main, ["--lang", language, *command], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            _check(result.output, width=width, slugs=slugs)
            if command[:2] != ("campaign", "list"):  # its campaign has no window yet
                shown = result.output.replace(CAMPAIGN, "")  # the slug holds a year
                other = "2026" if year == "2569" else "2569"
                assert year in shown and other not in shown, (width, language)


def test_narrow_terminals_get_cards_and_wide_ones_tables(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above could pass by luck; here the layouts differ as designed."""
    runner = CliRunner()
    monkeypatch.setattr(console, "width", 200)
    wide = runner.invoke(main, ["--lang", "en", "posts", "problems"]).output
    monkeypatch.setattr(console, "width", 60)
    narrow = runner.invoke(main, ["--lang", "en", "posts", "problems"]).output
    assert "┃ id" in wide and "┃" not in narrow
    assert any(line.startswith("what to do ") for line in narrow.splitlines())
    thai = runner.invoke(main, ["posts", "problems"]).output
    assert "สิ่งที่ต้องทำ" in thai and "ต้องเชื่อมต่อบัญชีใหม่" in thai  # headings and states


def test_every_message_of_the_command_line_has_a_thai_translation() -> None:
    """What ``pybabel extract -F marketing/cli/babel.cfg -k N_`` finds is in the cli catalog."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1]
    config = (root / "marketing" / "cli" / "babel.cfg").read_text(encoding="utf-8")
    method_map, options_map = parse_mapping_cfg(io.StringIO(config))
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            root, method_map, options_map, keywords=keywords
        )
    }
    assert {"No post needs a person.", "needs reconnecting", "Communities by {sort}"} <= found
    po = root / "marketing" / "web" / "translations" / "th" / "LC_MESSAGES" / "cli.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="th")
    untranslated = sorted(m for m in found if not (catalog.get(m) and catalog.get(m).string))
    assert untranslated == []
