"""Issue #12, item 2: small inputs that asked for minutes and gigabytes are refused, each with
a Thai problem at its file, line and field -- without doing the work first.

The template bombs are refused by the sandbox before they run (checked here with the memory
they were allowed to take: a refusal costs kilobytes, the bomb hundreds of megabytes); what the
sandbox cannot foresee (loops nested deep, memory piled up a little at a time) is stopped by
the time and memory bounds of the worker process that checks campaigns sent to the web app.
"""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from campaigns.templates import RenderFailure, TemplateBook, TemplateSource
from marketing.db import session_scope
from marketing.models import Campaign
from marketing.problems import InvalidInput, Problem
from marketing.web import campaign_files
from marketing.yamlsource import MAX_ALIAS_VALUES, load_yaml
from tests.support.web import WebClient
from tests.test_web_auth import CAMPAIGN

TEMPLATE_LINE = 10  # the campaign file line of the field holding the template (a | block)
MAX_EXTRA_MEMORY = 20 * 1024 * 1024  # refusing a bomb is cheap; the bombs take 300 MB and more


def render_problem(template: str) -> Problem:
    """The problem of rendering ``template`` written as a ``|`` block on line 10."""
    book = TemplateBook(Path("."))
    source = TemplateSource(
        field=("channels", "facebook", "message"),
        campaign_file="campaign.yaml",
        line=TEMPLATE_LINE,
        column=5,
        text=template,
        block=True,
    )
    compiled = book.add(source)
    assert compiled is not None, book.problems
    tracemalloc.start()
    try:
        with pytest.raises(RenderFailure) as failure:
            book.render(compiled, {"x": "ค่า"})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_EXTRA_MEMORY, f"the refusal itself took {peak:,} bytes"
    return failure.value.problem


BOMBS = {
    "power": ("{{ 9**(9**8) }}", "ตัวเลขที่ใหญ่เกินไป"),
    "repeated text": ("{{ 'a' * 300000000 }}", "ยาวเกินไป (300,000,000 ตัว"),
    "repeated list": ("{{ [0] * 300000000 }}", "ยาวเกินไป (300,000,000 ตัว"),
    "format width": ("{{ '{:>300000000}'.format(x) }}", "ความกว้าง"),
    "format_map width": ("{{ '{v:>300000000}'.format_map({'v': x}) }}", "ความกว้าง"),
    "format precision": ("{{ '{:.300000000f}'.format(1.5) }}", "ทศนิยม"),
    "format filter width": ("{{ '%300000000d'|format(1) }}", "ความกว้าง"),
    "percent width": ("{{ '%300000000d' % 1 }}", "ความกว้าง"),
    "percent star width": ("{{ '%*d' % (300000000, 1) }}", "ความกว้างแบบ *"),
    "center filter": ("{{ x|center(300000000) }}", "ความกว้าง"),
    "center method": ("{{ x.center(300000000) }}", "ความกว้าง"),
    "ljust method": ("{{ x.ljust(300000000) }}", "ความกว้าง"),
    "rjust method": ("{{ x.rjust(300000000) }}", "ความกว้าง"),
    "zfill method": ("{{ x.zfill(300000000) }}", "ความกว้าง"),
    "indent filter": ("{{ x|indent(300000000, true) }}", "ความกว้าง"),
    "wordwrap filter": ("{{ x|wordwrap(300000000) }}", "ความกว้าง"),
    "truncate filter": ("{{ x|truncate(300000000) }}", "ความกว้าง"),
    "replace filter": ("{{ ('a' * 1000)|replace('a', 'b' * 10000) }}", "ยาวเกินไป"),
    "doubling with ~": (
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "ยาวเกินไป",
    ),
    "doubling with +": (
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
        "ยาวเกินไป",
    ),
    "output of nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "เทมเพลตสร้างข้อความยาวเกินไป",
    ),
}


@pytest.mark.parametrize("template,expected", BOMBS.values(), ids=BOMBS.keys())
def test_template_bombs_are_refused_at_their_line_before_they_run(
    template: str, expected: str
) -> None:
    problem = render_problem("สวัสดี\n" + template)
    assert expected in problem.message
    assert problem.hint  # says what to do
    assert (problem.file, problem.line, problem.field) == (
        "campaign.yaml",
        TEMPLATE_LINE + 2,
        "channels.facebook.message",
    )


def test_ordinary_arithmetic_and_formatting_still_work() -> None:
    book = TemplateBook(Path("."))
    source = TemplateSource(
        field=("channels", "facebook", "message"),
        campaign_file="campaign.yaml",
        line=1,
        column=1,
        text="{{ 2**10 }} {{ 'ab' * 3 }} {{ '{:>6}'.format(x) }} {{ '%05d'|format(42) }} "
        "{{ '%.2f' % 1.5 }} {{ x|center(7) }}|{{ [1, 2] + [3] }} {{ 'ก' ~ 'ข' }}",
    )
    compiled = book.add(source)
    assert compiled is not None
    assert book.render(compiled, {"x": "ค่า"}) == (
        "1024 ababab    ค่า 00042 1.50   ค่า  |[1, 2, 3] กข"
    )


def billion_laughs() -> str:
    """Nine levels of nine aliases each: under 400 bytes, a billion values expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_yaml_is_refused_at_the_key_that_expands_it() -> None:
    text = billion_laughs()
    assert len(text) < 440
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as refused:
            load_yaml(text, "laughs.yaml")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_EXTRA_MEMORY
    [problem] = refused.value.problems
    assert problem.file == "laughs.yaml" and problem.line is not None
    assert f"{MAX_ALIAS_VALUES:,} ค่า" in problem.message and problem.hint
    # The line named is the key whose value first expands past the bound.
    assert text.splitlines()[problem.line - 1].startswith(problem.field.split("[")[0] + ":")


def test_aliases_that_reuse_a_block_a_few_times_still_work() -> None:
    data, _positions = load_yaml("base: &b {a: 1, b: [1, 2]}\none: *b\ntwo: *b\n", "ok.yaml")
    assert data["one"] == data["two"] == {"a": 1, "b": [1, 2]}


def test_a_yaml_file_too_long_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("marketing.yamlsource.MAX_YAML_CHARS", 1_000)
    with pytest.raises(InvalidInput) as refused:
        load_yaml("x: " + "ก" * 2_000, "long.yaml")
    assert "ไฟล์ยาวเกินไป" in refused.value.problems[0].message


# --- through the web app, where the check runs in a bounded worker process ------------------


def with_message(template: str) -> str:
    """The sample campaign with its Facebook message as a ``|`` block (lines 11 onwards)."""
    block = "\n".join("      " + line for line in template.splitlines())
    campaign = CAMPAIGN.replace(
        '    message: "สุขสันต์วันสงกรานต์จาก{{ community.name_th }}"',
        "    message: |\n" + block,
    )
    assert campaign != CAMPAIGN
    return campaign


def problem_at_line(page: str, line: int) -> bool:
    """Whether the editor page marks ``line`` of the file as having a problem."""
    return re.search(rf'<li id="L{line}" value="{line}" class="has-problem">', page) is not None


def checked(editor: WebClient, campaign: str) -> str:
    answer = editor.post("/campaigns/check", {"yaml": campaign})
    assert answer.status_code == 422, answer.text[:800]
    return str(answer.text)


def test_the_web_check_refuses_a_template_bomb_at_its_line(
    editor: WebClient, engine: Engine
) -> None:
    page = checked(editor, with_message("สวัสดี\n{{ 'a' * 300000000 }}"))
    assert "ข้อความหรือรายการที่สร้างยาวเกินไป" in page
    assert problem_at_line(page, 12)
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).first() is None


def test_the_web_check_refuses_a_billion_laughs_campaign(editor: WebClient) -> None:
    page = checked(editor, billion_laughs() + CAMPAIGN)
    assert "alias" in page and f"{MAX_ALIAS_VALUES:,}" in page


def test_a_check_that_runs_too_long_is_stopped_at_the_template_line(
    editor: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nested loops that print nothing: 10^10 steps, nothing the sandbox can refuse up front.
    monkeypatch.setattr(campaign_files, "CHECK_SECONDS", 2.0)
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    page = checked(editor, with_message("สวัสดี\n" + loops))
    assert "เทมเพลตใช้เวลาคำนวณนานเกินไป" in page
    assert problem_at_line(page, 12)


def test_a_check_that_piles_up_memory_is_stopped(
    editor: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each step keeps another list of 100,000 numbers: about 4 GB by the end, each step
    # within every size limit.
    monkeypatch.setattr(campaign_files, "CHECK_MEMORY_BYTES", 200 * 1024 * 1024)
    pile = (
        "{% set ns = namespace(kept=[]) %}{% for i in range(1000) %}"
        "{% set ns.kept = ns.kept + [range(100000)|list] %}{% endfor %}{{ ns.kept|length }}"
    )
    page = checked(editor, with_message("สวัสดี\n" + pile))
    assert "หน่วยความจำ" in page
