"""The Facebook adapter: pure parts without I/O, then the real ``facebook-business`` SDK over
a real socket against the Graph sandbox (never a mock)."""

from __future__ import annotations

import logging
import sys
import traceback
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession
from pydantic import SecretStr

from channels.base import Account, OutgoingPost
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from channels.facebook import (
    INSIGHT_METRICS,
    STAMP_LENGTH,
    FacebookAdapter,
    FacebookLimits,
    GraphFailure,
    build_payload,
    classify,
    facebook_adapter_from_settings,
    marker_tag,
    parse_usage,
    read_marker,
    scrub,
    stamp_for,
    strip_marker,
)
from channels.ratelimit import MemoryUsageStore, RedisUsageStore, Usage
from channels.sandbox.base import Fault
from channels.sandbox.graph import GraphSandbox, error_fault
from marketing.settings import Settings
from tests.support.services import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
PAGE = "104857600001"
TOKEN = "EAAGpagetokenSECRET0001"
THAI = "ผ้าทอมือบ้านดอยเงิน จังหวัดน่าน 🧵 สั่งซื้อได้ที่ศูนย์ชุมชน"
PHOTO = ROOT / "marketing/sample/media/nan-ban-doi-ngoen.png"


@pytest.fixture
def graph() -> Iterator[GraphSandbox]:
    with GraphSandbox(seed=7) as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, TOKEN, "บ้านดอยเงิน")
        yield sandbox


@pytest.fixture
def adapter(graph: GraphSandbox) -> Iterator[FacebookAdapter]:
    fb = FacebookAdapter(graph_url=graph.url, api_version="v25.0", timeout=5)
    yield fb
    fb.close()


def account(token: str | None = TOKEN, page: str = PAGE) -> Account:
    return Account("facebook", page, "บ้านดอยเงิน", SecretStr(token) if token else None)


def post(marker: str = "post-1", **content: Any) -> OutgoingPost:
    return OutgoingPost(marker, account(), content or {"message": THAI})


def full_text(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` would show, causes included."""
    return "".join(traceback.format_exception(exc))


# -- pure: marker stamp, payloads, usage headers, error classes, scrubbing ----------------------


def test_stamp_is_invisible_fixed_length_and_reads_back() -> None:
    stamp = stamp_for("campaign-7/nan/facebook/2026-03-01")
    assert len(stamp) == STAMP_LENGTH
    assert {unicodedata.category(ch) for ch in stamp} == {"Cf"}  # format characters only
    assert read_marker(THAI + stamp) == marker_tag("campaign-7/nan/facebook/2026-03-01")
    assert strip_marker(THAI + stamp) == THAI
    assert read_marker(THAI) is None
    # Thai text may carry its own zero-width spaces; they are not a stamp.
    assert read_marker("ผ้าทอ\u200bมือ") is None
    assert marker_tag("a") != marker_tag("b")


def test_feed_payload_keeps_thai_and_asks_for_read_after_write() -> None:
    payload = build_payload({"message": THAI, "link": "https://example.org/ดอยเงิน"}, "m1")
    assert payload.edge == "feed" and payload.file is None
    assert payload.params["message"] == THAI + stamp_for("m1")
    assert payload.params["link"] == "https://example.org/ดอยเงิน"
    assert payload.params["fields"] == "id,created_time,permalink_url"
    assert payload.text == THAI


def test_photo_and_video_payloads_append_the_link_to_the_text() -> None:
    photo = build_payload({"message": THAI, "link": "https://e.org/x", "photo": "/m/p.png"}, "m")
    assert photo.edge == "photos" and photo.file == Path("/m/p.png")
    assert photo.params == {"caption": f"{THAI}\n\nhttps://e.org/x" + stamp_for("m")}
    video = build_payload({"message": THAI, "video": "/m/v.mp4", "video_title": "ผ้าทอ"}, "m")
    assert video.edge == "videos" and video.file == Path("/m/v.mp4")
    assert video.params == {"description": THAI + stamp_for("m"), "title": "ผ้าทอ"}


def test_payload_leaves_the_stamp_out_when_the_text_is_at_the_limit() -> None:
    text = "ก" * FacebookLimits.message_max_chars
    payload = build_payload({"message": text}, "m")
    assert payload.params["message"] == text and read_marker(payload.params["message"]) is None


def test_parse_usage_reads_all_three_headers_and_keeps_the_worst() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    headers = {
        "x-app-usage": '{"call_count": 12, "total_cputime": 3, "total_time": 4}',
        "X-Page-Usage": '{"call_count": 40, "total_cputime": 91, "total_time": 20}',
        "X-Business-Use-Case-Usage": (
            '{"104857600001": [{"type": "pages", "call_count": 88, "total_cputime": 10, '
            '"total_time": 30, "estimated_time_to_regain_access": 7}]}'
        ),
    }
    usage = parse_usage(headers, now=now)
    assert usage == Usage(88, 91, 30, regain_after=420, reported_at=now)
    assert usage.percent == 91
    assert parse_usage({"Content-Type": "application/json"}, now=now) is None
    assert parse_usage({"X-App-Usage": "not json"}, now=now) is None


CLASSES = [
    (190, 463, 400, AuthExpired),
    (190, None, 400, AuthExpired),
    (104, None, 400, AuthExpired),
    (10, None, 403, AuthExpired),
    (200, None, 403, AuthExpired),
    (299, None, 403, AuthExpired),
    (4, None, 400, RateLimited),
    (17, None, 400, RateLimited),
    (32, None, 400, RateLimited),
    (613, None, 400, RateLimited),
    (80001, None, 400, RateLimited),
    (80014, None, 400, RateLimited),
    (1, None, 500, TransientError),
    (2, None, 503, TransientError),
    (None, None, 502, TransientError),
    (100, None, 400, PermanentError),
    (368, None, 400, PermanentError),
    (506, None, 400, PermanentError),
]


@pytest.mark.parametrize(("code", "subcode", "status", "expected"), CLASSES)
def test_classify_maps_graph_codes_to_what_the_caller_should_do(
    code: int | None, subcode: int | None, status: int, expected: type[ChannelError]
) -> None:
    error = classify(GraphFailure(status, code, subcode, "msg"), default_wait=600)
    assert type(error) is expected
    assert error.hint
    if code is not None:
        assert error.code == f"facebook:{code}" + (f"/{subcode}" if subcode else "")


def test_classify_permission_and_token_hints_ask_a_person() -> None:
    permission = classify(GraphFailure(403, 200, message="(#200) no"), default_wait=1)
    assert "person" in (permission.hint or "") and "grants" in (permission.hint or "")
    expired = classify(GraphFailure(400, 190, 463, "expired"), default_wait=1)
    assert "expired" in str(expired) and "reconnect" in (expired.hint or "")


def test_classify_rate_limit_waits_as_long_as_graph_says_or_the_default() -> None:
    told = classify(GraphFailure(400, 80001, retry_after=420.0), default_wait=600)
    assert told.retry_after == 420
    untold = classify(GraphFailure(400, 4), default_wait=600)
    assert untold.retry_after == 600


def test_transient_flag_makes_an_unknown_code_transient() -> None:
    error = classify(GraphFailure(400, 9007, transient=True), default_wait=1)
    assert type(error) is TransientError


def test_scrub_removes_tokens_and_query_values() -> None:
    url = f"http://h/v25.0/1/feed?access_token={TOKEN}&appsecret_proof=abc123&x=1"
    assert scrub(url) == "http://h/v25.0/1/feed?access_token=***&appsecret_proof=***&x=1"
    assert TOKEN not in scrub(f"bad token {TOKEN}!", [TOKEN])


# -- publishing through the SDK -----------------------------------------------------------------


def test_text_post_arrives_with_thai_intact(graph: GraphSandbox, adapter: FacebookAdapter) -> None:
    receipt = adapter.publish(post("m-text"))
    [stored] = graph.published(PAGE)
    assert stored.kind == "feed"
    assert strip_marker(stored.message) == THAI
    assert stored.marker == marker_tag("m-text")
    assert receipt.external_id == stored.id and receipt.external_id.startswith(f"{PAGE}_")
    assert receipt.permalink == f"https://www.facebook.com/{PAGE}/posts/{stored.id.split('_')[1]}"
    assert receipt.published_at == stored.created_time


def test_link_post_carries_the_link(graph: GraphSandbox, adapter: FacebookAdapter) -> None:
    adapter.publish(post("m-link", message=THAI, link="https://example.org/ชุมชน?a=1"))
    [stored] = graph.published()
    assert stored.link == "https://example.org/ชุมชน?a=1"


def test_photo_post_uploads_the_file_byte_for_byte(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    receipt = adapter.publish(
        post("m-photo", message=THAI, link="https://example.org/x", photo=str(PHOTO))
    )
    [stored] = graph.published()
    assert stored.kind == "photo" and stored.media_name == "source"
    assert stored.media_bytes == PHOTO.stat().st_size
    assert strip_marker(stored.message) == f"{THAI}\n\nhttps://example.org/x"
    assert receipt.external_id == stored.id  # the post, not the photo
    assert receipt.raw["id"] == stored.object_id
    assert receipt.permalink is not None


def test_video_post_reports_the_post_that_shows_it(
    graph: GraphSandbox, adapter: FacebookAdapter, tmp_path: Path
) -> None:
    video = tmp_path / "ผ้าทอ.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42\r\n--\r\n" + bytes(range(256)) * 400)
    receipt = adapter.publish(post("m-video", message=THAI, video=str(video), video_title="ผ้าทอมือ"))
    [stored] = graph.published()
    assert stored.kind == "video" and stored.title == "ผ้าทอมือ"
    assert stored.media_bytes == video.stat().st_size
    assert receipt.external_id == stored.id and receipt.raw["id"] == stored.object_id
    assert receipt.permalink == f"/{PAGE}/videos/{stored.object_id}/"


def test_missing_media_file_is_permanent_and_sends_nothing(
    graph: GraphSandbox, adapter: FacebookAdapter, tmp_path: Path
) -> None:
    with pytest.raises(PermanentError, match="not-there.png") as caught:
        adapter.publish(post(message=THAI, photo=str(tmp_path / "not-there.png")))
    assert caught.value.hint and graph.calls(PAGE) == 0


def test_sdk_stays_on_its_instance_and_crash_reporter_stays_off(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    hook = sys.excepthook
    adapter.publish(post())
    assert FacebookSession.GRAPH == "https://graph.facebook.com"
    assert FacebookAdsApi.get_default_api() is None
    assert sys.excepthook is hook


def test_read_after_write_failure_still_counts_as_published(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    body = {
        "error": {
            "message": "(#100) Tried accessing nonexisting field (permalink_urls)",
            "type": "FacebookApiException",
            "code": 100,
            "original_response": {"id": f"{PAGE}_42"},
        }
    }
    graph.faults.add(Fault("error", method="POST", path="/feed", status=400, body=body))
    receipt = adapter.publish(post())
    assert receipt.external_id == f"{PAGE}_42"


# -- errors through the SDK ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (10, AuthExpired),
        (200, AuthExpired),
        (4, RateLimited),
        (17, RateLimited),
        (32, RateLimited),
        (613, RateLimited),
        (80001, RateLimited),
        (1, TransientError),
        (2, TransientError),
        (100, PermanentError),
        (368, PermanentError),
        (506, PermanentError),
    ],
)
def test_graph_errors_become_channel_errors(
    graph: GraphSandbox, adapter: FacebookAdapter, code: int, expected: type[ChannelError]
) -> None:
    graph.faults.add(error_fault(code, method="POST", path="/feed"))
    with pytest.raises(expected) as caught:
        adapter.publish(post())
    assert type(caught.value) is expected
    assert caught.value.code == f"facebook:{code}"
    assert caught.value.__cause__ is not None  # raised from the SDK's own error
    assert graph.published() == []


def test_a_5xx_without_a_graph_body_is_transient(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    graph.faults.add(Fault("error", path="/feed", status=502, body={"oops": "proxy"}))
    with pytest.raises(TransientError):
        adapter.publish(post())


def test_expired_token_is_auth_expired_with_a_hint(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    graph.expire_token(PAGE)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(post())
    assert caught.value.code == "facebook:190/463"
    assert "expired" in str(caught.value) and "Page admin" in (caught.value.hint or "")


def test_wrong_token_and_missing_token(graph: GraphSandbox, adapter: FacebookAdapter) -> None:
    with pytest.raises(AuthExpired, match="not valid"):
        adapter.publish(OutgoingPost("m", account("EAAwrong"), {"message": THAI}))
    with pytest.raises(AuthExpired, match="no Page token"):
        adapter.publish(OutgoingPost("m", account(None), {"message": THAI}))
    assert graph.calls(PAGE) == 0 and graph.published() == []


def test_another_pages_token_lacks_permission(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    graph.register_page("999", "EAAotherpage")
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(OutgoingPost("m", account("EAAotherpage", page=PAGE), {"message": THAI}))
    assert caught.value.code == "facebook:200"


def test_rate_limit_error_waits_as_long_as_the_headers_say(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    usage = '{"%s": [{"type": "pages", "call_count": 100, "total_cputime": 20, '
    usage += '"total_time": 20, "estimated_time_to_regain_access": 12}]}'
    headers = {"X-Business-Use-Case-Usage": usage % PAGE}
    graph.faults.add(error_fault(80001, path="/feed", headers=headers))
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post())
    assert caught.value.retry_after == 12 * 60


def test_drop_after_sending_a_post_is_outcome_unknown_and_reconciles(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    since = datetime.now(UTC)
    graph.faults.add(Fault("drop_after", method="POST", path="/feed"))
    with pytest.raises(OutcomeUnknown) as caught:
        adapter.publish(post("m-ambiguous"))
    assert "reconcile" in (caught.value.hint or "")
    assert graph.count_by_marker() == {marker_tag("m-ambiguous"): 1}
    found = adapter.find_published(post("m-ambiguous"), since=since)
    assert found is not None and found.external_id == graph.published()[0].id
    assert graph.count_by_marker() == {marker_tag("m-ambiguous"): 1}  # nothing re-sent


def test_drop_before_is_also_ambiguous_and_reconciliation_finds_nothing(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    # From the client's side a connection closed before the answer is the same whether or
    # not the server acted on it: never retry blindly.
    since = datetime.now(UTC)
    graph.faults.add(Fault("drop_before", method="POST", path="/feed"))
    with pytest.raises(OutcomeUnknown):
        adapter.publish(post("m-lost"))
    assert graph.published() == []
    assert adapter.find_published(post("m-lost"), since=since) is None
    adapter.publish(post("m-lost"))  # now it is safe to publish
    assert graph.count_by_marker() == {marker_tag("m-lost"): 1}


def test_timeout_on_publish_is_outcome_unknown(graph: GraphSandbox) -> None:
    since = datetime.now(UTC)
    impatient = FacebookAdapter(graph_url=graph.url, api_version="v25.0", timeout=0.3)
    # The post is made and its answer held until the client has given up: the ambiguous case.
    held = graph.faults.add(Fault("hold", method="POST", path="/feed"))
    try:
        with pytest.raises(OutcomeUnknown):
            impatient.publish(post("m-slow"))
        assert held.wait_held(timeout=10), "the sandbox never received the post"
    finally:
        held.release()
    assert len(graph.published()) == 1, f"expected the post made, saw {graph.published()}"
    assert impatient.find_published(post("m-slow"), since=since) is not None
    impatient.close()


def test_timeout_on_a_read_is_transient(graph: GraphSandbox, adapter: FacebookAdapter) -> None:
    receipt = adapter.publish(post())
    impatient = FacebookAdapter(graph_url=graph.url, api_version="v25.0", timeout=0.3)
    held = graph.faults.add(Fault("hold", method="GET", path="ids="))  # until the client quits
    try:
        with pytest.raises(TransientError) as caught:
            impatient.fetch_metrics(account(), [receipt.external_id])
    finally:
        held.release()
    assert type(caught.value) is TransientError
    impatient.close()


def test_unreachable_graph_is_transient_even_for_a_publish() -> None:
    nowhere = FacebookAdapter(graph_url=f"http://127.0.0.1:{free_port()}", api_version="v25.0")
    with pytest.raises(TransientError) as caught:
        nowhere.publish(post())
    assert type(caught.value) is TransientError  # refused before anything was sent
    assert TOKEN not in full_text(caught.value)


# -- the token never shows ----------------------------------------------------------------------


def test_token_is_in_no_exception_text(graph: GraphSandbox, adapter: FacebookAdapter) -> None:
    caught: list[BaseException] = []
    # Graph errors (one echoing the token, as a careless proxy might), drops and timeouts.
    graph.faults.add(error_fault(190, f"Invalid token {TOKEN}", path="/feed"))
    graph.faults.add(Fault("drop_after", path="/feed"))
    graph.faults.add(Fault("drop_before", path="published_posts"))
    for call in (
        lambda: adapter.publish(post()),
        lambda: adapter.publish(post()),
        lambda: adapter.find_published(post(), since=datetime.now(UTC)),
        lambda: FacebookAdapter(
            graph_url=f"http://127.0.0.1:{free_port()}", api_version="v25.0"
        ).fetch_metrics(account(), ["1_2"]),
    ):
        with pytest.raises(ChannelError) as error:
            call()
        caught.append(error.value)
    assert len(caught) == 4
    for exc in caught:
        text = full_text(exc)
        assert TOKEN not in text and TOKEN not in repr(exc.__cause__)
    assert "access_token=***" in full_text(caught[3])  # the URL was there, scrubbed


def test_token_is_in_no_log_line(
    graph: GraphSandbox, adapter: FacebookAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The LINE SDK's Configuration sets the "urllib3" logger to WARNING for the whole
    # process; a LINE test earlier in this worker would hide the request line we check.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    receipt = adapter.publish(post())
    adapter.fetch_metrics(account(), [receipt.external_id])
    assert "/feed?access_token=***" in caplog.text  # urllib3 logged the request line...
    assert TOKEN not in caplog.text  # ...without the token


def test_app_secret_proof_is_sent_and_kept_out_of_text() -> None:
    with GraphSandbox(app_secret="app-secret-XYZ") as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, TOKEN)
        good = FacebookAdapter(
            graph_url=sandbox.url, api_version="v25.0", app_secret=SecretStr("app-secret-XYZ")
        )
        assert good.publish(post()).external_id
        bad = FacebookAdapter(
            graph_url=sandbox.url, api_version="v25.0", app_secret=SecretStr("wrong-secret")
        )
        with pytest.raises(PermanentError, match="appsecret_proof") as caught:
            bad.publish(post())
        assert "MARKETING_FACEBOOK_APP_SECRET" in (caught.value.hint or "")
        assert "wrong-secret" not in full_text(caught.value) and "wrong-secret" not in repr(bad)
        good.close()
        bad.close()


# -- usage: slowing down before the limit -------------------------------------------------------


def test_publish_refuses_near_the_limit_without_calling() -> None:
    with GraphSandbox(page_call_limit=10) as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, TOKEN)
        fb = FacebookAdapter(graph_url=sandbox.url, api_version="v25.0")
        for n in range(9):  # 9 of 10 calls: 90%
            fb.publish(post(f"m{n}"))
        assert sandbox.usage(PAGE)["call_count"] == 90
        with pytest.raises(RateLimited) as caught:
            fb.publish(post("m-too-many"))
        assert caught.value.code == "facebook:usage"
        assert caught.value.retry_after == FacebookAdapter.rate_limit_wait
        assert sandbox.calls(PAGE) == 9 and len(sandbox.published()) == 9
        # Reads still go through (reconciliation must be able to run), up to the limit...
        assert fb.find_published(post("m0"), since=datetime.now(UTC) - timedelta(hours=1))
        # ...and past it Graph itself refuses, saying when access returns.
        with pytest.raises(RateLimited) as refused:
            fb.fetch_metrics(account(), ["x"])
        assert refused.value.code == "facebook:80001"
        assert refused.value.retry_after == 60 * 60
        fb.close()


def test_usage_is_shared_by_workers_through_redis(redis_server: RedisServer) -> None:
    prefix = f"test:{datetime.now(UTC).timestamp()}:"
    with GraphSandbox(page_call_limit=10) as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, TOKEN)
        workers = [
            FacebookAdapter(
                graph_url=sandbox.url,
                api_version="v25.0",
                usage=RedisUsageStore(redis.Redis.from_url(redis_server.url), prefix=prefix),
            )
            for _ in range(2)
        ]
        for n in range(9):
            workers[0].publish(post(f"m{n}"))
        with pytest.raises(RateLimited):
            workers[1].publish(post("m-other-worker"))  # it never saw a header itself
        assert sandbox.calls(PAGE) == 9
        for worker in workers:
            worker.close()


# -- reconciliation -----------------------------------------------------------------------------


def test_find_published_finds_by_marker_and_not_another(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    since = datetime.now(UTC)
    mine = adapter.publish(post("m-mine"))
    adapter.publish(post("m-theirs"))  # the same text, another occurrence
    found = adapter.find_published(post("m-mine"), since=since)
    assert found is not None and found.external_id == mine.external_id
    assert adapter.find_published(post("m-never"), since=since) is None


def test_find_published_ignores_posts_before_the_attempt(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    adapter.publish(post("m-old"))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert adapter.find_published(post("m-old"), since=later) is None


def test_find_published_matches_an_unstamped_post_by_its_exact_text(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    # As if Facebook had stripped the invisible stamp: publish the bare text directly.
    since = datetime.now(UTC)
    api = FacebookAdsApi(FacebookSession(access_token=TOKEN), api_version="v25.0")
    api._session.GRAPH = graph.url
    api.call("POST", (PAGE, "feed"), params={"message": THAI + "  "})
    found = adapter.find_published(post("m-stripped"), since=since)
    assert found is not None and found.external_id == graph.published()[0].id
    other = OutgoingPost("m-other", account(), {"message": THAI + " (ฉบับแก้ไข)"})
    assert adapter.find_published(other, since=since) is None
    api._session.requests.close()


def test_find_published_pages_through_the_posts(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    since = datetime.now(UTC)
    first = adapter.publish(post("m-first"))
    for n in range(6):
        graph.clock.advance(timedelta(seconds=1))
        adapter.publish(post(f"m-later-{n}"))
    adapter.page_size = 2  # type: ignore[misc]
    before = graph.calls(PAGE)
    found = adapter.find_published(post("m-first"), since=since)
    assert found is not None and found.external_id == first.external_id
    assert graph.calls(PAGE) - before == 4  # 7 posts newest first, 2 a page
    adapter.reconcile_pages = 2  # type: ignore[misc]
    with pytest.raises(TransientError, match="cannot tell"):
        adapter.find_published(post("m-first"), since=since)


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_are_batched_and_grow_with_time(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    ids = [adapter.publish(post(f"m{n}")).external_id for n in range(3)]
    graph.clock.advance(timedelta(hours=2))
    before = graph.calls(PAGE)
    early = {m.external_id: m for m in adapter.fetch_metrics(account(), ids)}
    assert graph.calls(PAGE) - before == 2  # fields and insights, one request each
    graph.clock.advance(timedelta(days=2))
    late = {m.external_id: m for m in adapter.fetch_metrics(account(), ids)}
    for external_id in ids:
        a, b = early[external_id], late[external_id]
        assert a.views is not None and b.views is not None and 0 < a.views < b.views
        assert a.reactions is not None and b.reactions is not None
        assert a.reactions <= b.reactions
        assert b.comments is not None and b.shares is not None and b.shares > 0
        assert b.clicks is None  # not in the mapping
        assert b.raw["metrics_revision"] and b.raw["insights"]


def test_metrics_for_many_posts_go_fifty_at_a_time(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    ids = [adapter.publish(post(f"m{n}")).external_id for n in range(55)]
    before = graph.calls(PAGE)
    metrics = adapter.fetch_metrics(account(), ids + ids[:3])  # duplicates asked once
    assert sorted(m.external_id for m in metrics) == sorted(ids)
    assert graph.calls(PAGE) - before == 4


def test_posts_facebook_no_longer_knows_are_left_out(
    graph: GraphSandbox, adapter: FacebookAdapter
) -> None:
    kept = adapter.publish(post()).external_id
    metrics = adapter.fetch_metrics(account(), [f"{PAGE}_1", kept, f"{PAGE}_2"])
    assert [m.external_id for m in metrics] == [kept]


def test_a_deprecated_metric_loses_only_itself(graph: GraphSandbox) -> None:
    fb = FacebookAdapter(
        graph_url=graph.url,
        api_version="v25.0",
        insight_metrics={**INSIGHT_METRICS, "reach": "post_impressions_unique"},
    )
    ids = [fb.publish(post(f"m{n}")).external_id for n in range(2)]
    graph.clock.advance(timedelta(hours=5))
    [first, second] = fb.fetch_metrics(account(), ids)
    assert first.views is not None and first.views > 0 and second.views is not None
    assert first.reactions is not None and first.comments is not None
    assert "reach" not in first.raw["metrics"]
    # The refusal is remembered: the next collection asks for the good metric only.
    before = graph.calls(PAGE)
    fb.fetch_metrics(account(), ids)
    assert graph.calls(PAGE) - before == 2
    fb.close()


def test_only_a_deprecated_metric_still_gives_the_post_fields(graph: GraphSandbox) -> None:
    fb = FacebookAdapter(
        graph_url=graph.url,
        api_version="v25.0",
        insight_metrics={"views": "post_impressions_unique"},
    )
    external_id = fb.publish(post()).external_id
    graph.clock.advance(timedelta(hours=5))
    [metrics] = fb.fetch_metrics(account(), [external_id])
    assert metrics.views is None
    assert metrics.reactions is not None and metrics.reactions > 0
    fb.close()


# -- construction -------------------------------------------------------------------------------


def test_adapter_from_settings(redis_server: RedisServer) -> None:
    plain = facebook_adapter_from_settings(
        Settings(graph_api_url="http://127.0.0.1:9/", graph_api_version="v24.0")
    )
    assert plain.graph_url == "http://127.0.0.1:9" and plain.api_version == "v24.0"
    assert isinstance(plain.usage, MemoryUsageStore) and plain.app_secret is None
    shared = facebook_adapter_from_settings(
        Settings(redis_url=redis_server.url, facebook_app_secret=SecretStr("s3cret"))
    )
    assert isinstance(shared.usage, RedisUsageStore)
    assert shared.app_secret is not None and "s3cret" not in repr(shared)
    given = MemoryUsageStore()
    assert facebook_adapter_from_settings(Settings(), usage=given).usage is given


def test_adapter_rejects_a_bad_version_or_url() -> None:
    with pytest.raises(ValueError, match="v25.0"):
        FacebookAdapter(graph_url="https://graph.facebook.com", api_version="25")
    with pytest.raises(ValueError, match="not an http"):
        FacebookAdapter(graph_url="graph.facebook.com", api_version="v25.0")
