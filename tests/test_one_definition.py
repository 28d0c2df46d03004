"""One definition per rule: the engagement formula, the slug pattern and the default zone are
written once (marketing/engagement.py, marketing/conventions.py) and imported everywhere.

The SQL form of the formula is checked against the Python form on SQLite and PostgreSQL; the
source is walked so a second copy written by hand fails here.
"""

from __future__ import annotations

import ast
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from marketing import conventions, engagement
from marketing.models import PERFORMANCE_SUMS, ChannelKind
from marketing.reports.rows import RAW_FIELDS, Metrics

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (*engagement.SNAPSHOT_METRICS, "emails_sent")


def _rows(seed: int, n: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {"channel": list(ChannelKind)[i % len(ChannelKind)].value}
        # Zeros on purpose now and then: no reach must give a rate of 0, not an error.
        row.update({name: rng.choice((0, rng.randrange(1, 5_000))) for name in COUNTS})
        rows.append(row)
    return rows


def test_the_sql_form_computes_what_the_python_form_does(session: Session) -> None:
    rows = _rows(seed=16, n=60)
    table = Table(
        "engagement_counts",
        MetaData(),
        Column("channel", String(16)),
        *(Column(name, Integer) for name in COUNTS),
        prefixes=["TEMPORARY"],
    )
    table.create(session.connection())
    session.execute(insert(table), rows)
    counts = {name: table.c[name] for name in COUNTS}
    interactions = engagement.interactions_sql(table.c.channel, counts)
    reach = engagement.reach_sql(table.c.channel, counts)
    query = select(
        table.c.channel,
        *(table.c[name] for name in COUNTS),
        interactions.label("interactions"),
        reach.label("reach"),
        engagement.rate_sql(interactions, reach).label("rate"),
    )
    found = session.execute(query).mappings().all()
    assert len(found) == len(rows)
    for got in found:
        channel = got["channel"]
        assert got["interactions"] == engagement.interactions(channel, got)
        assert got["reach"] == engagement.reach(channel, got)
        assert got["rate"] == pytest.approx(
            engagement.rate(engagement.interactions(channel, got), engagement.reach(channel, got))
        )
    assert {g["channel"] for g in found if g["reach"] == 0} <= {c.value for c in ChannelKind}
    assert any(g["reach"] == 0 and g["rate"] == 0 for g in found)  # the zero case was met


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        # reactions 10, comments 5, shares 3, clicks 2 over 200 views; email: 2 clicks of 40.
        ("facebook", (20, 200, 0.1)),
        ("youtube", (20, 200, 0.1)),
        ("email", (2, 40, 0.05)),
    ],
)
def test_the_formula(channel: str, expected: tuple[int, int, float]) -> None:
    counts = {"views": 200, "reactions": 10, "comments": 5, "shares": 3, "clicks": 2}
    counts["emails_sent"] = 40
    found = engagement.interactions(channel, counts), engagement.reach(channel, counts)
    assert (*found, engagement.engagement_rate(channel, counts)) == expected
    # The report rows take theirs from the same place.
    metrics = Metrics.of_channel(channel, {name: counts.get(name, 0) for name in RAW_FIELDS})
    assert (metrics.interactions, metrics.reach, metrics.engagement_rate) == expected


def test_every_count_the_formula_reads_is_a_stored_sum() -> None:
    used = {
        *engagement.SOCIAL_INTERACTIONS,
        *engagement.EMAIL_INTERACTIONS,
        engagement.SOCIAL_REACH,
        engagement.EMAIL_REACH,
        *engagement.SNAPSHOT_METRICS,
    }
    assert used <= set(PERFORMANCE_SUMS)


def test_every_metric_a_report_shows_has_its_thai_and_english_label() -> None:
    from marketing.reports import labels
    from marketing.reports.rows import METRIC_ROWS

    assert set(METRIC_ROWS) == set(labels.METRIC_EN) == set(labels.METRIC_TH)
    assert {*PERFORMANCE_SUMS, *engagement.DERIVED} == set(METRIC_ROWS)


# -- no second copy --------------------------------------------------------------------------


def _sources() -> list[Path]:
    found = []
    for package in ("marketing", "campaigns", "tasks", "channels"):
        found.extend(
            p
            for p in sorted((ROOT / package).rglob("*.py"))
            # Migrations are history: they must not change when the code does.
            if "migrations" not in p.parts and "sandbox" not in p.parts
        )
    return found


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if isinstance(node, ast.Call) and node.args:  # func.coalesce(x.reactions, 0)
        return _name(node.args[0])
    return None


def _additions(tree: ast.AST) -> list[tuple[int, set[str]]]:
    """(line, names) of every chain of ``+`` in ``tree``: the names it adds up."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            names: set[str] = set()
            stack: list[ast.AST] = [node]
            while stack:
                item = stack.pop()
                if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Add):
                    stack.extend((item.left, item.right))
                elif (name := _name(item)) is not None:
                    names.add(name)
            found.append((node.lineno, names))
        elif isinstance(node, ast.Call) and _name(node.func) == "sum" and node.args:
            names = {n.value for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant)}
            names |= {_name(n) or "" for n in ast.walk(node.args[0])}
            found.append((node.lineno, {str(n) for n in names}))
    return found


def test_interactions_are_added_up_only_in_marketing_engagement() -> None:
    copies = []
    for path in _sources():
        if path == ROOT / "marketing" / "engagement.py":
            continue
        for line, names in _additions(ast.parse(path.read_text(encoding="utf-8"))):
            if {"reactions", "comments"} <= names or {"reactions", "shares"} <= names:
                copies.append(f"{path.relative_to(ROOT)}:{line}")
    assert copies == []


def test_the_addition_finder_sees_the_forms_the_formula_was_written_in() -> None:
    written = [
        "row.reactions + row.comments + row.shares + row.clicks",
        'values["reactions"] + values["comments"] + values["shares"] + values["clicks"]',
        "r.reactions + r.comments + r.shares + r.clicks",
        "sum(v or 0 for v in (snap.reactions, snap.comments, snap.shares, snap.clicks))",
        "func.coalesce(n.reactions, 0) + func.coalesce(n.comments, 0)",
    ]
    for source in written:
        [(_, names), *_] = _additions(ast.parse(source))
        assert {"reactions", "comments"} <= names, source


def _constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_slug_pattern_is_written_once() -> None:
    copies = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        for line, value in _constants(path)
        if value == conventions.SLUG_PATTERN
    ]
    assert copies == ["marketing/conventions.py:13"]


def test_the_default_zone_is_written_once() -> None:
    # wording.py names zones for people ("Asia/Bangkok" is "Thailand time" whatever the
    # default is): a label of that zone, not the default.
    copies = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if path.name != "wording.py"
        for line, value in _constants(path)
        if value == conventions.DEFAULT_TIMEZONE
    ]
    assert copies == ["marketing/conventions.py:17"]


def test_the_conventions_module_imports_nothing_so_campaigns_can_use_it() -> None:
    tree = ast.parse((ROOT / "marketing" / "conventions.py").read_text(encoding="utf-8"))
    imports = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    ]
    assert imports == []


def test_importing_the_conventions_loads_no_model_and_no_library() -> None:
    code = (
        "import json, sys\n"
        "import marketing.conventions\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('marketing', 'campaigns', 'channels', 'sqlalchemy', 'pydantic'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == ["marketing", "marketing.conventions"]


@pytest.mark.parametrize(
    ("slug", "valid"),
    [("phrae-mohom", True), ("a", True), ("x" * 80, True), ("x" * 81, False), ("-a", False)],
)
def test_the_slug_pattern(slug: str, valid: bool) -> None:
    assert (re.fullmatch(conventions.SLUG_PATTERN, slug) is not None) is valid
