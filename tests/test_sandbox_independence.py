"""The sandboxes stand on their own: they import nothing from the adapters they exist to
check, and where both sides write down the same documented rule, they agree.

A sandbox that borrowed the adapter's limits, quota day or marker reader would copy any
mistake there, and no test could fail.  So each sandbox writes the rules down from the
documentation, and these tests (which may import both sides; the sandboxes may not) compare
the two copies -- a wrong limit on either side fails here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

import channels.sandbox
from channels import email as email_adapter
from channels import facebook, quota, youtube
from channels.base import Account, OutgoingPost
from channels.errors import AuthExpired, PermanentError, QuotaExhausted, RateLimited
from channels.sandbox import graph as graph_sandbox
from channels.sandbox import smtp as smtp_sandbox
from channels.sandbox import youtube as youtube_sandbox
from tests.support import markers

SANDBOX_DIR = Path(channels.sandbox.__file__).parent
ROOT = SANDBOX_DIR.parent.parent

#: Packages of ours a sandbox may not import: the adapters (everything under channels/ but
#: channels.sandbox) and the service.
FORBIDDEN_ROOTS = ("marketing", "tasks", "campaigns", "celeryconfig")

MARKERS = ["post-nan-0001", "m1", "a.b-c_d", "2026-06-01.community-phrae.youtube.3", "x" * 80]


# -- imports ---------------------------------------------------------------------------------


def _imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source`` (nested ones and relative ones, resolved
    against ``module``, included)."""
    package = module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from channels import facebook`` imports the adapter module too.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def _forbidden(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "channels":
        # ``channels`` itself is only the package; ``from channels import sandbox`` is fine.
        return len(parts) > 1 and parts[1] != "sandbox"
    return parts[0] in FORBIDDEN_ROOTS


def adapter_imports(path: Path) -> list[str]:
    """``file:line: module`` for every import of an adapter (or service) module in ``path``."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for line, name in _imported_modules(path.read_text(encoding="utf-8"), module)
        if _forbidden(name)
    ]


def test_no_sandbox_module_imports_an_adapter_module() -> None:
    modules = sorted(SANDBOX_DIR.rglob("*.py"))
    assert len(modules) >= 5  # base, graph, smtp, suite, youtube: the walk sees them
    found = [problem for path in modules for problem in adapter_imports(path)]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from channels.youtube import YouTubeLimits", True),
        ("from channels import facebook", True),
        ("import channels.email", True),
        ("from channels.quota import quota_day", True),
        ("def f():\n    from channels.facebook import read_marker\n", True),
        ("if TYPE_CHECKING:\n    from marketing.settings import Settings\n", True),
        ("from .. import youtube", True),
        ("from ..errors import ChannelError", True),
        ("from channels.sandbox.base import Fault", False),
        ("from . import base", False),
        ("from channels import sandbox", False),
        ("import hashlib", False),
    ],
)
def test_the_import_check_sees_every_form_of_import(source: str, expected: bool) -> None:
    # The walk must catch an adapter import however it is written, or the test above
    # proves nothing.
    names = _imported_modules(source, "channels.sandbox.fake")
    assert any(_forbidden(n) for _, n in names) is expected, names


def test_importing_every_sandbox_loads_no_adapter_module() -> None:
    # The same promise at run time, in a fresh interpreter: nothing reaches an adapter
    # through a chain of imports either.
    code = (
        "import json, sys\n"
        "import channels.sandbox.suite\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('channels', 'marketing', 'tasks', 'campaigns'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "channels.sandbox.youtube" in loaded
    assert [m for m in loaded if _forbidden(m)] == []


# -- YouTube: limits, quota day, errors ------------------------------------------------------


def test_youtube_limits_agree() -> None:
    limits = youtube.YouTubeLimits
    assert youtube_sandbox.TITLE_MAX_CHARS == limits.title_max_chars == 100
    assert youtube_sandbox.DESCRIPTION_MAX_BYTES == limits.description_max_bytes == 5_000
    assert youtube_sandbox.TAGS_MAX_CHARS == limits.tags_max_chars == 500
    assert set(youtube_sandbox.FORBIDDEN_CHARS) == set(limits.forbidden_chars) == set("<>")
    assert limits.privacy_values == youtube_sandbox.PRIVACY_VALUES


def test_youtube_quota_limits_and_buckets_agree() -> None:
    assert dict(quota.DEFAULT_LIMITS) == youtube_sandbox.DEFAULT_QUOTA
    assert (youtube_sandbox.UNITS, youtube_sandbox.UPLOADS, youtube_sandbox.SEARCHES) == (
        quota.UNITS,
        quota.UPLOADS,
        quota.SEARCHES,
    )


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 7, 0, tzinfo=UTC),  # Pacific time springs forward on 8 March
        datetime(2026, 10, 31, 0, tzinfo=UTC),  # and falls back on 1 November
        datetime(2026, 12, 31, 0, tzinfo=UTC),
    ],
)
def test_youtube_quota_day_agrees_every_quarter_hour_around_clock_changes(
    start: datetime,
) -> None:
    moments = [start + timedelta(minutes=15 * i) for i in range(4 * 72)]
    assert [youtube_sandbox.quota_day(m) for m in moments] == [quota.quota_day(m) for m in moments]
    # And both reset at the local midnight, not at a fixed UTC hour.
    days = {youtube_sandbox.quota_day(m) for m in moments}
    assert len(days) == 4


@pytest.mark.parametrize(
    "tags",
    [[], ["หม้อห้อม"], ["ผ้า ทอ มือ", "น่าน"], ["a b", "c", "d e f"], ["x" * 30] * 16],
)
def test_youtube_tags_are_counted_alike(tags: list[str]) -> None:
    assert youtube_sandbox.tags_length(tags) == youtube.tags_length(tags)


def _upload_problem(content: dict[str, object]) -> tuple[list[str], str | None]:
    """What the adapter says of ``content`` (fields of its problems, video aside) and what
    the sandbox answers to the resource the adapter would send for it."""
    post = OutgoingPost(
        marker="post-limits-1",
        account=Account("youtube", "UCsample01", "ชุมชน", SecretStr("t")),
        content={"video": "/dev/null", **content},
    )
    adapter = sorted(
        {p.field for p in youtube.YouTubeLimits.content_problems(post.content)} - {"video"}
    )
    sandbox = youtube_sandbox.YouTubeSandbox()  # not started: the rule check is pure
    refused = sandbox.metadata_problem(youtube.build_video_resource(post), ["snippet", "status"])
    return adapter, refused[0] if refused else None


THAI = "สวัสดีครับ"  # 10 code points, 30 bytes


@pytest.mark.parametrize(
    ("content", "adapter_fields", "sandbox_reason"),
    [
        ({"title": "ก" * 100}, [], None),
        ({"title": "ก" * 101}, ["title"], "invalidTitle"),
        ({"title": "a < b"}, ["title"], "invalidTitle"),
        ({"title": "t", "description": THAI * 166}, [], None),  # 4,980 bytes
        ({"title": "t", "description": THAI * 167}, ["description"], "invalidDescription"),
        # 475 characters of our own tags leave room for the 24-character marker tag.
        ({"title": "t", "tags": ["x" * 474]}, [], None),
        # One more: the adapter refuses it before the sandbox (YouTube) would.
        ({"title": "t", "tags": ["x" * 476]}, ["tags"], "invalidTags"),
    ],
)
def test_what_the_adapter_lets_through_the_sandbox_accepts(
    content: dict[str, object], adapter_fields: list[str], sandbox_reason: str | None
) -> None:
    assert _upload_problem(content) == (adapter_fields, sandbox_reason)


def test_the_adapter_reads_each_sandbox_error_as_the_documentation_says() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def read(status: int, reason: str, message: str = "m", **kw: str) -> object:
        body = json.dumps(youtube_sandbox.google_error(status, reason, message, **kw))
        failure = youtube.parse_failure(status, body, {})
        return youtube.classify_failure(failure, method="videos.insert", now=now)

    exhausted = read(403, "quotaExceeded", youtube_sandbox.QUOTA_MESSAGE, domain="youtube.quota")
    assert isinstance(exhausted, QuotaExhausted)
    # Retried at the sandbox's next quota day, to the second.
    sandbox_reset = datetime.combine(
        youtube_sandbox.quota_day(now) + timedelta(days=1),
        datetime.min.time(),
        tzinfo=youtube_sandbox.PACIFIC,
    )
    assert exhausted.retry_after == (sandbox_reset - now).total_seconds()
    assert isinstance(read(401, "authError"), AuthExpired)
    assert isinstance(read(400, "uploadLimitExceeded"), QuotaExhausted)
    assert isinstance(read(403, "rateLimitExceeded"), RateLimited)
    assert isinstance(read(400, "invalidTitle"), PermanentError)


@pytest.mark.parametrize("marker", MARKERS)
def test_youtube_marker_tag_is_what_the_tests_and_the_sandbox_read(marker: str) -> None:
    tag = youtube.marker_tag(marker)
    assert markers.youtube_tag(marker) == tag
    assert youtube_sandbox.MARKER_TAG.fullmatch(tag)


# -- Facebook: the stamp and the error codes ------------------------------------------------


@pytest.mark.parametrize("marker", MARKERS)
def test_the_graph_sandbox_reads_the_stamp_the_adapter_writes(marker: str) -> None:
    text = f"ผ้าทอมือจากน่าน\n\nhttps://example.org/x{facebook.stamp_for(marker)}"
    assert graph_sandbox.read_stamp(text) == facebook.marker_tag(marker)
    assert graph_sandbox.read_stamp(text) == facebook.read_marker(text)
    assert markers.facebook_tag(marker) == facebook.marker_tag(marker)
    assert graph_sandbox.read_stamp(facebook.strip_marker(text)) is None


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [
        (graph_sandbox.TOKEN_INVALID, None, AuthExpired),
        (graph_sandbox.TOKEN_INVALID, graph_sandbox.SUBCODE_SESSION_EXPIRED, AuthExpired),
        (graph_sandbox.TOKEN_INVALID, graph_sandbox.SUBCODE_PASSWORD_CHANGED, AuthExpired),
        (graph_sandbox.TOKEN_INVALID, graph_sandbox.SUBCODE_APP_NOT_INSTALLED, AuthExpired),
        (graph_sandbox.TOKEN_MISSING, None, AuthExpired),
        (graph_sandbox.PERMISSION_DENIED, None, AuthExpired),
        (graph_sandbox.PAGE_RATE_LIMITED, None, RateLimited),
        (graph_sandbox.INVALID_PARAMETER, None, PermanentError),
        (graph_sandbox.DUPLICATE_POST, None, PermanentError),
    ],
)
def test_the_adapter_handles_each_graph_sandbox_code_as_documented(
    code: int, subcode: int | None, expected: type[Exception]
) -> None:
    failure = facebook.GraphFailure(http_status=400, code=code, subcode=subcode, message="m")
    assert type(facebook.classify(failure, default_wait=60.0)) is expected


def test_the_adapter_asks_graph_only_for_metrics_the_sandbox_serves() -> None:
    asked = set(facebook.INSIGHT_METRICS.values())
    assert asked <= set(graph_sandbox.CURRENT_POST_METRICS)
    assert not asked & graph_sandbox.DEPRECATED_POST_METRICS
    assert {f.split(".")[0] for f in facebook.ENGAGEMENT_FIELDS} <= graph_sandbox.POST_FIELDS


def test_the_adapters_batch_ids_as_the_sandboxes_allow() -> None:
    assert facebook.FacebookAdapter.ids_per_request == graph_sandbox.MAX_IDS
    assert youtube.YouTubeAdapter.ids_per_call == youtube_sandbox.MAX_IDS


# -- E-mail: the Message-ID ------------------------------------------------------------------


@pytest.mark.parametrize("marker", MARKERS)
@pytest.mark.parametrize("subscriber", [1, 12345, 10**12])
def test_the_smtp_sandbox_reads_the_message_id_the_adapter_writes(
    marker: str, subscriber: int
) -> None:
    value = email_adapter.message_id_for(marker, subscriber, "glo.or.th")
    assert smtp_sandbox.parse_message_id(value) == (marker, subscriber)
    assert smtp_sandbox.parse_message_id(value) == email_adapter.parse_message_id(value)


@pytest.mark.parametrize(
    "value", ["<abc@glo.or.th>", "<post-1.x@glo.or.th>", "post-1.3@glo.or.th", "<a.1@b@c>"]
)
def test_message_ids_of_other_senders_carry_no_marker_on_either_side(value: str) -> None:
    assert smtp_sandbox.parse_message_id(value) is None
    assert email_adapter.parse_message_id(value) is None
