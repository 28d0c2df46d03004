"""Reading campaign files without a database: the shipped examples, exact messages for common
mistakes, and -- by property -- that any text gives a campaign or InvalidInput, nothing else."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaigns
from campaigns import load_campaign, load_campaign_text
from campaigns.loader import CampaignDefinition, read_campaign
from campaigns.schema import TOP_LEVEL
from marketing.problems import InvalidInput

EXAMPLES = Path(campaigns.__file__).parent / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))

MINIMAL = """\
slug: minimal
name: ขั้นต่ำ
window: {start: 2027-01-01, end: 2027-01-31}
communities: all
channels:
  facebook:
    message: สวัสดี {{ community.name_th }}
schedule:
  every: weekly on monday 10:00
"""


def _problems(text: str, base_dir: Path = EXAMPLES) -> list[tuple[int | None, str, str]]:
    definition = read_campaign(text, file="c.yaml", base_dir=base_dir)
    return [(p.line, p.field, p.message) for p in definition.problems]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_load(path: Path) -> None:
    definition = load_campaign(path)
    assert definition.schedule_ok and definition.occurrences
    assert definition.name and definition.channels
    assert all(o.at.tzinfo is not None for o in definition.occurrences)


def test_minimal_campaign() -> None:
    definition = load_campaign_text(MINIMAL, file="c.yaml", base_dir=EXAMPLES)
    assert definition.slug == "minimal" and definition.timezone == "Asia/Bangkok"
    assert definition.window_start == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert definition.window_end.astimezone(definition.zone).strftime("%Y-%m-%d %H:%M:%S") == (
        "2027-01-31 23:59:59"
    )
    assert [o.key for o in definition.occurrences] == [
        "2027-01-04",
        "2027-01-11",
        "2027-01-18",
        "2027-01-25",
    ]
    (channel,) = definition.channels
    assert channel.kind == "facebook" and channel.account == "community"
    assert channel.reads == frozenset({"community"})


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("communities: all", "communities: 5"),
            [(4, "communities", "write all, a list of community slugs, or {tags: [...]}")],
        ),
        (
            ("  facebook:", "  facebok:"),
            [(6, "channels.facebok", "'facebok' is not a channel")],
        ),
        (
            (
                "  every: weekly on monday 10:00",
                "  every: weekly on monday 10:00\n  rrule: FREQ=DAILY",
            ),
            [(10, "schedule.rrule", "use one of at, every or rrule, not both every and rrule")],
        ),
        (
            ("  every: weekly on monday 10:00", "  at: [2027-01-05]"),
            [(9, "schedule.at[0]", "2027-01-05 has no time of day")],
        ),
        (
            ("  every: weekly on monday 10:00", "  at: [2027-02-05T10:00:00+07:00]"),
            [(9, "schedule.at[0]", "is outside the campaign window")],
        ),
        (
            ("  every: weekly on monday 10:00", "  every: weekly on sunday 10:00"),
            [],
        ),
        (
            ("end: 2027-01-31", "end: 2027-01-01T06:00:00+07:00"),
            [(8, "schedule", "has no occurrence inside the window")],
        ),
        (
            ("  every: weekly on monday 10:00", "  rrule: DTSTART:20270101T000000"),
            [(9, "schedule.rrule", "the campaign window's start anchors the rule")],
        ),
        (
            ("slug: minimal", "slug: Minimal Campaign"),
            [(1, "slug", "String should match pattern")],
        ),
        (
            ("communities: all", "communities: all\ntimezone: Asia/Bangkock"),
            [(5, "timezone", "unknown time zone 'Asia/Bangkock'")],
        ),
        (
            ("    message: สวัสดี", "    message: {file: missing.j2}\n    other: สวัสดี"),
            [
                (8, "channels.facebook.other", "is not a known field"),
                (7, "channels.facebook.message", "template file 'missing.j2' not found"),
            ],
        ),
        (
            ("name: ขั้นต่ำ", "name: ขั้นต่ำ\nname: ซ้ำ"),
            [(3, "name", "is written twice in the same block")],
        ),
        (
            ("channels:", "channels: {facebook: [}\nx:"),
            [(5, "", "YAML syntax error")],
        ),
    ],
)
def test_common_mistakes_have_exact_messages(
    edit: tuple[str, str], expected: list[tuple[int, str, str]]
) -> None:
    old, new = edit
    assert old in MINIMAL
    found = _problems(MINIMAL.replace(old, new, 1))
    assert len(found) == len(expected), found
    for (line, field, message), (want_line, want_field, want_text) in zip(
        sorted(found, key=lambda f: (f[0] or 0, f[1])),
        sorted(expected, key=lambda e: (e[0], e[1])),
        strict=True,
    ):
        assert (line, field) == (want_line, want_field), found
        assert want_text in message


def test_schedule_problems_leave_template_problems_visible() -> None:
    text = MINIMAL.replace("weekly on monday 10:00", "whenever").replace(
        "สวัสดี {{ community.name_th }}", "สวัสดี {{ community.name_th }"
    )
    fields = sorted(f for _l, f, _m in _problems(text))
    assert fields == ["channels.facebook.message", "schedule.every"]


def test_not_a_mapping_and_missing_sections() -> None:
    assert _problems("- a\n- b\n")[0][2].startswith("a campaign file is a mapping")
    missing = {f for _l, f, m in _problems("slug: x\n") if "required" in m}
    assert missing == {"name", "window", "communities", "channels", "schedule"}


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        load_campaign(tmp_path / "nope.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_campaign(binary)


# --- any text: a campaign or InvalidInput ----------------------------------------------------

yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.dates(),
    st.datetimes(),
    st.sampled_from(["all", "next", "community", "glo-email", "{{", "{% if %}", "10:00", ""]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=10), inner, max_size=4),
    ),
    max_leaves=12,
)
schedule_values = st.fixed_dictionaries(
    {},
    optional={
        "at": st.lists(st.one_of(yaml_scalars, st.datetimes(timezones=st.timezones())), max_size=3),
        "every": st.one_of(st.text(max_size=40), st.sampled_from(["daily 10:00", "monday 9:00"])),
        "rrule": st.one_of(
            st.text(max_size=40), st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;COUNT=0"])
        ),
        "rotation": yaml_values,
        "quiet_hours": st.fixed_dictionaries({"start": yaml_scalars, "end": yaml_scalars}),
    },
)
channel_values = st.dictionaries(
    st.sampled_from(["facebook", "youtube", "email", "line"]),
    st.dictionaries(
        st.sampled_from(
            [
                "account",
                "message",
                "title",
                "video",
                "photo",
                "subject",
                "html",
                "tags",
                "privacy",
                "publish_at",
                "audience",
                "category",
                "upload_ahead",
                "text",
            ]
        ),
        st.one_of(yaml_values, st.fixed_dictionaries({"file": yaml_scalars})),
        max_size=6,
    ),
    max_size=3,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        **{key: yaml_values for key in TOP_LEVEL},
        "window": st.fixed_dictionaries(
            {
                "start": st.one_of(yaml_scalars, st.dates()),
                "end": st.one_of(yaml_scalars, st.dates()),
            }
        ),
        "schedule": schedule_values,
        "channels": channel_values,
    },
)


@st.composite
def edited_examples(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([MINIMAL, *(p.read_text(encoding="utf-8") for p in EXAMPLE_FILES)]))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 20))
        text = text[:at] + draw(st.text(max_size=12)) + text[at + cut :]
    return text


def _loads_or_invalid(text: str) -> None:
    try:
        definition = load_campaign_text(text, file="c.yaml", base_dir=EXAMPLES)
    except InvalidInput as exc:
        assert exc.problems, "InvalidInput without a problem"
        for problem in exc.problems:
            assert problem.message
        return
    assert isinstance(definition, CampaignDefinition)
    assert all(o.at.tzinfo is not None for o in definition.occurrences)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_gives_a_campaign_or_invalid_input(text: str) -> None:
    _loads_or_invalid(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_yaml_document_gives_a_campaign_or_invalid_input(document: dict[str, object]) -> None:
    _loads_or_invalid(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_examples())
def test_any_edit_of_an_example_gives_a_campaign_or_invalid_input(text: str) -> None:
    _loads_or_invalid(text)
