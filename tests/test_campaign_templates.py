"""Campaign templates and the helpers they call: Thai dates, numbers, tracked links, merge
slots, and problems reported at the template's own line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from campaigns.formatting import number, thai_date, tracked_url
from campaigns.templates import (
    SUBSCRIBER,
    UNSUBSCRIBE_URL,
    CampaignView,
    CommunityView,
    CompiledTemplate,
    OccurrenceView,
    RenderFailure,
    TemplateBook,
    TemplateSource,
)
from channels.email import merge_slot

BANGKOK = ZoneInfo("Asia/Bangkok")


def test_thai_dates_in_buddhist_and_gregorian_years() -> None:
    songkran = date(2027, 4, 13)
    assert thai_date(songkran) == "13 เมษายน 2570"
    assert thai_date(songkran, be=False) == "13 เมษายน 2027"
    assert thai_date(songkran, "short") == "13 เม.ย. 2570"
    assert thai_date(songkran, "full") == "วันอังคารที่ 13 เมษายน พ.ศ. 2570"
    assert thai_date(songkran, "full", be=False) == "วันอังคารที่ 13 เมษายน ค.ศ. 2027"
    # 20:00 UTC on the 12th is already the 13th, 03:00, in Bangkok.
    evening = datetime(2027, 4, 12, 20, 0, tzinfo=UTC)
    assert thai_date(evening, time=True, zone=BANGKOK) == "13 เมษายน 2570 เวลา 03:00 น."
    assert thai_date(songkran, thai_digits=True) == "๑๓ เมษายน ๒๕๗๐"
    with pytest.raises(ValueError, match="unknown date style"):
        thai_date(songkran, "medium")


def test_numbers() -> None:
    assert number(1234567) == "1,234,567"
    assert number(1234.5, 2) == "1,234.50"
    assert number("12000") == "12,000"
    assert number(2570, thai_digits=True) == "๒,๕๗๐"


def test_tracked_urls_carry_the_channel_campaign_and_community() -> None:
    url = tracked_url(
        "https://example.org/shop?ref=fb&utm_source=old#top",
        channel="youtube",
        campaign="songkran-2027",
        community="nan-ban-doi-ngoen",
    )
    assert url == (
        "https://example.org/shop?ref=fb&utm_source=youtube&utm_medium=video"
        "&utm_campaign=songkran-2027&utm_content=nan-ban-doi-ngoen#top"
    )
    # Tracking twice gives the same link; mailto: and tel: links are left alone.
    again = tracked_url(
        url, channel="youtube", campaign="songkran-2027", community="nan-ban-doi-ngoen"
    )
    assert again == url
    for plain in ("mailto:info@example.org", "tel:+6621234567"):
        assert tracked_url(plain, channel="email", campaign="c", community="x") == plain
    assert "utm_medium=social" in tracked_url(
        "http://example.org", channel="facebook", campaign="c", community="x"
    )


def _inline(text: str, *, line: int = 10, block: bool = True, html: bool = False) -> TemplateSource:
    return TemplateSource(
        ("channels", "email", "html"), "c.yaml", line, 5, text=text, block=block, html=html
    )


def _context(channel: str = "email") -> dict[str, Any]:
    at = datetime(2027, 4, 13, 9, 0, tzinfo=BANGKOK)
    context: dict[str, Any] = {
        "community": CommunityView(
            "nan-ban-doi-ngoen",
            "ชุมชนผ้าทอบ้านดอยเงิน",
            "Ban Doi Ngoen",
            "น่าน",
            "ผ้าทอ <ลายน้ำไหล> & ชา",
            ("ผ้าทอ",),
            None,
            "Asia/Bangkok",
        ),
        "campaign": CampaignView("songkran-2027", "สงกรานต์", "", "Asia/Bangkok"),
        "occurrence": OccurrenceView("festival", at, at.date(), 2),
        "channel": channel,
    }
    if channel == "email":
        context.update(subscriber=SUBSCRIBER, unsubscribe_url=UNSUBSCRIBE_URL)
    return context


def _compile(book: TemplateBook, source: TemplateSource, **kw: Any) -> CompiledTemplate:
    compiled = book.add(source, **kw)
    assert compiled is not None, book.problems
    return compiled


def test_html_renders_escaped_with_merge_slots_and_helpers(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    compiled = _compile(
        book,
        _inline(
            "<p>{{ subscriber.name }}: {{ community.description }}</p>\n"
            "<a href=\"{{ tracked('https://example.org/x') }}\">{{ thai_date(occurrence.at) }}</a>"
            '<a href="{{ unsubscribe_url }}">ยกเลิก</a>',
            html=True,
        ),
        per_recipient=True,
    )
    html = book.render(compiled, _context())
    assert f"<p>{merge_slot('name')}: ผ้าทอ &lt;ลายน้ำไหล&gt; &amp; ชา</p>" in html
    assert "utm_source=email&amp;utm_medium=email" in html
    assert ">13 เมษายน 2570</a>" in html
    assert f'href="{merge_slot("unsubscribe_url")}"' in html
    # tracked() reads the community from the context, so it is listed (#17).
    assert compiled.reads == frozenset(
        {"subscriber", "community", "occurrence", "unsubscribe_url", "tracked"}
    )


def test_text_templates_are_not_escaped(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    compiled = _compile(book, _inline("{{ community.description }}", block=False))
    assert book.render(compiled, _context("facebook")) == "ผ้าทอ <ลายน้ำไหล> & ชา"


def test_syntax_error_in_a_block_is_reported_at_the_file_line(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    # The | block starts on line 10, so template line 3 is file line 13.
    assert book.add(_inline("a\nb\n{% if %}\n", line=10)) is None
    (problem,) = book.problems
    assert (problem.file, problem.line, problem.field) == ("c.yaml", 13, "channels.email.html")
    assert "Expected an expression" in problem.message


def test_undefined_name_is_reported_at_its_line_with_the_known_fields(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    compiled = _compile(book, _inline("hello\n{{ community.name_th }}\n{{ community.nmae }}\n"))
    with pytest.raises(RenderFailure) as failure:
        book.render(compiled, _context("facebook"))
    problem = failure.value.problem
    assert problem.line == 13
    assert problem.message.startswith("community has no field 'nmae' (it has: slug, name_th")
    assert problem.hint is None  # the message lists the fields already


def test_highlight_outside_the_autopilot_gets_a_hint(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    compiled = _compile(book, _inline("{{ highlight.title }}", block=False))
    with pytest.raises(RenderFailure) as failure:
        book.render(compiled, _context("facebook"))
    assert failure.value.problem.line == 10
    assert (
        failure.value.problem.hint
        == "highlight exists only when the campaign says highlights: next"
    )


def test_filters_on_subscriber_fields_are_refused_at_their_line(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    text = (
        "<p>{{ subscriber.name }}</p>\n"  # fine
        "<p>{{ subscriber.name|upper }}</p>\n"  # line 2: a filter
        "{% if subscriber.email %}x{% endif %}\n"  # line 3: a condition
        "{{ subscriber.phone }}\n"  # line 4: no such field
        "{{ tracked(unsubscribe_url) }}\n"  # line 5: a calculation
    )
    assert book.add(_inline(text, line=20, html=True), per_recipient=True) is not None
    lines = sorted((p.line, p.message.split(" ")[0]) for p in book.problems)
    assert lines == [
        (22, "subscriber"),
        (23, "subscriber"),
        (24, "subscriber"),
        (25, "unsubscribe_url"),
    ]
    assert "no field 'phone'" in next(p.message for p in book.problems if p.line == 24)


def test_subscriber_fields_cannot_be_used_in_the_sender_name(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    book.add(_inline("{{ subscriber.name }}", block=False), per_recipient=False)
    (problem,) = book.problems
    assert "only in the subject, preheader and body" in problem.message


def test_template_files_report_their_own_lines_and_are_hashed(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    letter = tmp_path / "t" / "letter.html.j2"
    letter.write_text("<p>สวัสดี</p>\n{% include 'part.j2' %}\n", encoding="utf-8")
    (tmp_path / "t" / "part.j2").write_text("line one\n{{ community.nope }}\n", encoding="utf-8")
    book = TemplateBook(tmp_path / "t")
    source = TemplateSource(
        ("channels", "email", "html"), "c.yaml", 7, 11, path="letter.html.j2", html=True
    )
    compiled = _compile(book, source, per_recipient=True)
    assert compiled.reads is None  # it includes another template: unknown
    with pytest.raises(RenderFailure) as failure:
        book.render(compiled, _context())
    problem = failure.value.problem
    assert (problem.file, problem.line) == (str(tmp_path / "t" / "part.j2"), 2)
    assert book.files_read == {str(letter), str(tmp_path / "t" / "part.j2")}


def test_missing_template_file_is_reported_at_the_campaign_line(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    source = TemplateSource(("channels", "email", "html"), "c.yaml", 7, 11, path="nope.j2")
    assert book.add(source) is None
    (problem,) = book.problems
    assert (problem.file, problem.line, problem.column) == ("c.yaml", 7, 11)
    assert "'nope.j2' not found" in problem.message


def test_the_sandbox_refuses_internals(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path)
    compiled = _compile(book, _inline("{{ community.__class__.__mro__ }}", block=False))
    with pytest.raises(RenderFailure) as failure:
        book.render(compiled, _context("facebook"))
    assert "__class__" in failure.value.problem.message or "unsafe" in failure.value.problem.message
