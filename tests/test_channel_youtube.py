"""YouTubeAdapter through the real google-api-python-client against YouTubeSandbox over a
real socket, and its pure payload builders without any I/O.

Like every test, these run behind the socket guard (tests/support/socket_guard.py): a
connection to anything outside 127.0.0.0/8 fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from channels.base import Account, OutgoingPost
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from channels.quota import UNITS, UPLOADS, InMemoryQuotaLedger, seconds_until_reset
from channels.sandbox.base import Fault
from channels.sandbox.youtube import YouTubeSandbox, error_fault
from channels.youtube import (
    MARKER_TAG_CHARS,
    ApiFailure,
    YouTubeAdapter,
    YouTubeLimits,
    batches,
    build_video_resource,
    classify_failure,
    discovery_document,
    marker_tag,
    metrics_from_video,
    parse_failure,
    receipt_from_video,
    youtube_adapter_from_settings,
)
from marketing.settings import Settings
from tests.support.markers import youtube_uploads_for

CHANNEL = "UCsample01nanbandoingoen"
TOKEN = "ya29.sandbox-token-NAN-5f3c9e"
CHUNK = 256 * 1024
NOW = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok, 20:00 the day before in LA

THAI_TITLE = "ผ้าทอบ้านดอยเงิน สวัสดีครับ — เที่ยวชุมชนน่าน"
THAI_DESCRIPTION = (
    "ชุมชนผ้าทอบ้านดอยเงิน จังหวัดน่าน ชวนมาเรียนทอผ้าลายน้ำไหล\nสลากสร้างสรรค์เพื่อชุมชน ๒๕๖๙ · ติดต่อ ๐๘๑-๒๓๔-๕๖๗๘"
)
THAI_TAGS = ["ผ้าทอ", "น่าน เมืองเก่า", "สลากสร้างสรรค์เพื่อชุมชน"]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[YouTubeSandbox]:
    server = YouTubeSandbox(seed=7)
    server.start()
    try:
        server.register_channel(CHANNEL, TOKEN, title="ชุมชนผ้าทอบ้านดอยเงิน ช่องทางการ")
        yield server
    finally:
        server.stop()


@pytest.fixture
def ledger() -> InMemoryQuotaLedger:
    return InMemoryQuotaLedger()


@pytest.fixture
def make_adapter(
    sandbox: YouTubeSandbox, ledger: InMemoryQuotaLedger
) -> Callable[..., YouTubeAdapter]:
    def make(**options: Any) -> YouTubeAdapter:
        settings: dict[str, Any] = {
            "root_url": sandbox.url,
            "ledger": ledger,
            "chunk_size": CHUNK,
            "resume_delay": 0.0,
            "timeout": 10.0,
        }
        return YouTubeAdapter(**{**settings, **options})

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., YouTubeAdapter]) -> YouTubeAdapter:
    return make_adapter()


@pytest.fixture
def account() -> Account:
    return Account("youtube", CHANNEL, "ชุมชนผ้าทอบ้านดอยเงิน", SecretStr(TOKEN))


MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"  # an ISO media file's start


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """About 1 MB of bytes that are not all alike: four chunks of 256 KiB (the last short),
    behind an MP4 header (the adapter checks the content is a video)."""
    path = tmp_path / "ban-doi-ngoen.mp4"
    path.write_bytes(MP4_HEADER + random.Random(4).randbytes(1_000_000 - len(MP4_HEADER)))
    return path


def make_post(
    account: Account, video: Path, marker: str = "post-nan-0001", **content: Any
) -> OutgoingPost:
    base: dict[str, Any] = {
        "title": THAI_TITLE,
        "description": THAI_DESCRIPTION,
        "tags": THAI_TAGS,
        "video": str(video),
    }
    return OutgoingPost(marker=marker, account=account, content={**base, **content})


def assert_no_token(error: BaseException) -> None:
    """The token appears in no text the error carries, its cause included."""
    texts = [str(error), repr(error)]
    if isinstance(error, ChannelError):
        texts += [error.message, error.hint or "", error.code or ""]
    if error.__cause__ is not None:
        texts += [str(error.__cause__), repr(error.__cause__)]
    for text in texts:
        assert TOKEN not in text


# --- publishing ----------------------------------------------------------------------------


def test_upload_keeps_thai_title_description_and_tags_intact(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    publish_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    post = make_post(
        account,
        video_file,
        privacy="private",
        publish_at=publish_at.isoformat(),
        category_id="19",
        made_for_kids=False,
        language="th",
    )
    receipt = adapter.publish(post)

    [upload] = youtube_uploads_for(sandbox, post.marker)
    assert bytes(upload.data) == video_file.read_bytes()
    assert upload.content_type == "video/mp4"
    assert upload.part == ["snippet", "status"]
    snippet, status = upload.resource["snippet"], upload.resource["status"]
    assert snippet["title"] == THAI_TITLE
    assert snippet["description"] == THAI_DESCRIPTION
    assert snippet["tags"] == [*THAI_TAGS, marker_tag(post.marker)]
    assert snippet["categoryId"] == "19" and snippet["defaultLanguage"] == "th"
    assert status == {
        "privacyStatus": "private",
        "selfDeclaredMadeForKids": False,
        "publishAt": publish_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert receipt.external_id == upload.video_id
    assert receipt.permalink == f"https://www.youtube.com/watch?v={receipt.external_id}"
    assert receipt.raw["snippet"]["title"] == THAI_TITLE
    assert receipt.published_at.tzinfo is not None
    assert sandbox.calls_to("upload.chunk") == 4  # 1,000,000 bytes in 256 KiB chunks


def test_a_title_of_100_thai_code_points_is_accepted(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    title = ("สวัสดีครับ" * 10)[:100]  # combining marks count as code points of their own
    assert len(title) == 100
    adapter.publish(make_post(account, video_file, title=title))
    [upload] = youtube_uploads_for(sandbox, "post-nan-0001")
    assert upload.resource["snippet"]["title"] == title


def test_upload_survives_a_connection_dropped_in_the_middle_of_a_chunk(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    # The connection dies 100,000 bytes into the first chunk, and again when it is re-sent:
    # the sandbox keeps the bytes that arrived, the adapter asks how far it got and resumes.
    sandbox.faults.add(
        Fault("drop_during", method="PUT", path="/upload/", after_bytes=100_000, times=2)
    )
    post = make_post(account, video_file)
    receipt = adapter.publish(post)

    [upload] = youtube_uploads_for(sandbox, post.marker)
    assert bytes(upload.data) == video_file.read_bytes()
    assert upload.video_id == receipt.external_id
    assert [a for _, _, a in sandbox.faults.injected] == ["drop_during", "drop_during"]
    assert sandbox.calls_to("upload.status") >= 1  # the adapter's resume loop asked


def test_upload_survives_a_5xx_on_a_chunk(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    sandbox.faults.add(
        error_fault(503, "backendError", "Backend Error", method="PUT", path="/upload/")
    )
    post = make_post(account, video_file)
    adapter.publish(post)

    [upload] = youtube_uploads_for(sandbox, post.marker)
    assert bytes(upload.data) == video_file.read_bytes()
    assert sandbox.faults.injected[0][2] == "error"
    assert sandbox.calls_to("upload.status") == 1  # one empty PUT: "how much arrived?"
    assert len(sandbox.completed_uploads()) == 1


def test_a_5xx_when_opening_the_session_opens_another_and_counts_both(
    adapter: YouTubeAdapter,
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
    ledger: InMemoryQuotaLedger,
) -> None:
    sandbox.faults.add(error_fault(503, "backendError", method="POST", path="/upload/"))
    post = make_post(account, video_file)
    adapter.publish(post)
    [upload] = youtube_uploads_for(sandbox, post.marker)
    assert bytes(upload.data) == video_file.read_bytes()
    assert sandbox.calls_to("videos.insert") == 1  # the refused one never reached the route
    assert ledger.used(CHANNEL, UPLOADS) == 2  # but Google counts every request


def test_giving_up_before_the_last_byte_is_transient_and_publishes_nothing(
    make_adapter: Callable[..., YouTubeAdapter],
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
) -> None:
    adapter = make_adapter(resume_attempts=2)
    sandbox.faults.add(Fault("drop_before", method="PUT", path="/upload/", times=None))
    with pytest.raises(TransientError) as raised:
        adapter.publish(make_post(account, video_file))
    assert not isinstance(raised.value, OutcomeUnknown)
    assert raised.value.code == "youtube:upload-interrupted"
    assert "nothing was published" in str(raised.value)
    assert sandbox.completed_uploads() == []
    assert_no_token(raised.value)


def test_a_lost_final_answer_is_recovered_by_asking_the_server(
    make_adapter: Callable[..., YouTubeAdapter],
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
) -> None:
    adapter = make_adapter(chunk_size=4 * CHUNK)  # the whole file in one (final) chunk
    # The video is created, the answer lost, and lost again when httplib2 re-sends.
    sandbox.faults.add(Fault("drop_after", method="PUT", path="/upload/", times=2))
    post = make_post(account, video_file)
    receipt = adapter.publish(post)

    [upload] = youtube_uploads_for(sandbox, post.marker)  # exactly one video, not two
    assert receipt.external_id == upload.video_id
    assert bytes(upload.data) == video_file.read_bytes()
    assert sandbox.calls_to("upload.status") >= 1


def test_a_final_chunk_that_times_out_is_resumed_without_a_second_video(
    make_adapter: Callable[..., YouTubeAdapter],
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
) -> None:
    # The server makes the video from the last chunk and holds its answer until the client
    # has given up; the adapter asks how far the upload got and finishes it.
    adapter = make_adapter(chunk_size=4 * CHUNK, timeout=0.3)
    held = sandbox.faults.add(Fault("hold", method="PUT", path="/upload/"))
    post = make_post(account, video_file)
    try:
        receipt = adapter.publish(post)
        assert held.wait_held(timeout=10), "the last chunk never arrived"
    finally:
        held.release()
    [upload] = youtube_uploads_for(sandbox, post.marker)
    assert receipt.external_id == upload.video_id
    assert bytes(upload.data) == video_file.read_bytes()


def test_a_final_answer_that_stays_lost_is_outcome_unknown_and_reconciliation_finds_it(
    make_adapter: Callable[..., YouTubeAdapter],
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
) -> None:
    adapter = make_adapter(resume_attempts=2, chunk_size=4 * CHUNK)  # one, final, chunk
    since = datetime.now(UTC)
    adapter.publish(make_post(account, video_file, marker="earlier-post"))
    post = make_post(account, video_file)
    # The last chunk arrives and the video is made, but no answer ever comes back, not even
    # to the adapter's "how much arrived?" questions.
    sandbox.faults.add(Fault("drop_after", method="PUT", path="/upload/", times=None))
    with pytest.raises(OutcomeUnknown) as raised:
        adapter.publish(post)
    assert raised.value.code == "youtube:upload-outcome-unknown"
    assert marker_tag(post.marker) in (raised.value.hint or "")
    assert_no_token(raised.value)
    assert len(youtube_uploads_for(sandbox, post.marker)) == 1  # it did arrive

    sandbox.faults.clear()
    found = adapter.find_published(post, since=since)
    assert found is not None
    assert found.external_id == youtube_uploads_for(sandbox, post.marker)[0].video_id
    assert found.raw["snippet"]["title"] == THAI_TITLE


def test_reconciliation_does_not_find_an_upload_that_never_happened(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    since = datetime.now(UTC)
    adapter.publish(make_post(account, video_file, marker="another-post"))
    assert adapter.find_published(make_post(account, video_file), since=since) is None
    assert sandbox.calls_to("channels.list") == 1
    assert sandbox.calls_to("playlistItems.list") == 1
    assert sandbox.calls_to("search.list") == 0


def test_reconciliation_ignores_an_upload_older_than_the_attempt(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    post = make_post(account, video_file)
    adapter.publish(post)
    # An attempt a day later (a new occurrence with the same marker cannot exist, but an old
    # upload must not be taken for the outcome of a new attempt).
    assert adapter.find_published(post, since=datetime.now(UTC) + timedelta(days=1)) is None
    assert adapter.find_published(post, since=datetime.now(UTC) - timedelta(hours=1))


def test_reconciliation_pages_through_the_uploads_playlist(
    adapter: YouTubeAdapter,
    sandbox: YouTubeSandbox,
    account: Account,
    tmp_path: Path,
    ledger: InMemoryQuotaLedger,
) -> None:
    small = tmp_path / "short.mp4"
    small.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    since = datetime.now(UTC)
    target = make_post(account, small, marker="the-one")
    adapter.publish(target)
    for n in range(55):  # newer uploads push the target onto the second page
        adapter.publish(make_post(account, small, marker=f"other-{n}"))
    units_before = ledger.used(CHANNEL, UNITS)

    found = adapter.find_published(target, since=since)
    assert (
        found is not None
        and found.external_id == youtube_uploads_for(sandbox, "the-one")[0].video_id
    )
    assert sandbox.calls_to("playlistItems.list") == 2
    # 1 channels.list + 2 playlistItems.list + 2 videos.list: 5 units, not 100 for a search
    assert ledger.used(CHANNEL, UNITS) - units_before == 5
    assert sandbox.quota_used(UNITS) == 5


def test_reconciliation_refuses_a_token_of_another_channel(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, video_file: Path
) -> None:
    sandbox.register_channel("UCsomebodyelse000000000", "other-token")
    wrong = Account("youtube", CHANNEL, "ชุมชน", SecretStr("other-token"))
    with pytest.raises(AuthExpired) as raised:
        adapter.find_published(make_post(wrong, video_file), since=datetime.now(UTC))
    assert raised.value.code == "youtube:wrong-channel"
    assert "UCsomebodyelse000000000" in str(raised.value)


# --- the client, built once ----------------------------------------------------------------


def test_one_built_client_serves_each_connection_with_its_own_token(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account
) -> None:
    """The client is built from the discovery document once per adapter (#19), and each
    connection's requests still carry that connection's token: two channels interleaved."""
    sandbox.register_channel("UCsomebodyelse000000000", "other-token")
    other = Account("youtube", "UCsomebodyelse000000000", "อีกช่อง", SecretStr("other-token"))
    for _ in range(2):
        adapter.check_account(account)
        adapter.check_account(other)
    built = adapter._collection("channels")
    adapter.check_account(other)
    assert adapter._collection("channels") is built
    assert sandbox.calls_to("channels.list") == 5
    wrong = Account("youtube", CHANNEL, "ชุมชน", SecretStr("other-token"))
    with pytest.raises(AuthExpired) as raised:
        adapter.check_account(wrong)
    assert raised.value.code == "youtube:wrong-channel"


def test_a_request_of_the_shared_client_outside_a_connection_is_not_sent(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox
) -> None:
    request = adapter._collection("channels").list(part="id", mine=True)
    with pytest.raises(RuntimeError, match="outside a connection"):
        request.execute()
    assert sandbox.calls == []


# --- metrics -------------------------------------------------------------------------------


def test_statistics_come_in_batches_of_50(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, tmp_path: Path
) -> None:
    small = tmp_path / "short.mp4"
    small.write_bytes(MP4_HEADER + bytes(2000))
    real = [
        adapter.publish(make_post(account, small, marker=f"m-{n}")).external_id for n in range(3)
    ]
    sandbox.clock.advance(timedelta(days=2))
    ids = real + [f"gone{n:07d}" for n in range(117)]  # 120 ids, 117 unknown to YouTube
    metrics = adapter.fetch_metrics(account, ids + real)  # repeats are asked for once

    assert sandbox.calls_to("videos.list") == 3  # 50 + 50 + 20
    assert [m.external_id for m in metrics] == real
    for m in metrics:
        expected = sandbox.statistics(sandbox.videos[m.external_id])
        assert m.views == int(expected["viewCount"]) and m.views > 0
        assert m.reactions == int(expected["likeCount"])
        assert m.comments == int(expected["commentCount"])
        assert m.shares is None
        assert m.raw["statistics"]["viewCount"] == expected["viewCount"]


def test_no_ids_means_no_call(adapter: YouTubeAdapter, sandbox: YouTubeSandbox) -> None:
    assert adapter.fetch_metrics(Account("youtube", CHANNEL, "x", SecretStr(TOKEN)), []) == []
    assert sandbox.calls == []


# --- quota ---------------------------------------------------------------------------------


def test_the_ledger_refuses_an_upload_before_the_daily_bucket_is_spent(
    make_adapter: Callable[..., YouTubeAdapter],
    sandbox: YouTubeSandbox,
    account: Account,
    video_file: Path,
) -> None:
    adapter = make_adapter(ledger=InMemoryQuotaLedger(limits={UPLOADS: 1}, clock=lambda: NOW))
    adapter.publish(make_post(account, video_file, marker="first"))
    with pytest.raises(QuotaExhausted) as refused:
        adapter.publish(make_post(account, video_file, marker="second"))
    assert refused.value.retry_after == seconds_until_reset(NOW) == 4 * 3600
    assert sandbox.calls_to("videos.insert") == 1  # the second never reached YouTube


def test_the_ledger_refuses_a_metrics_round_it_cannot_finish(
    make_adapter: Callable[..., YouTubeAdapter], sandbox: YouTubeSandbox, account: Account
) -> None:
    adapter = make_adapter(ledger=InMemoryQuotaLedger(limits={UNITS: 2}))
    with pytest.raises(QuotaExhausted):
        adapter.fetch_metrics(account, [f"v{n:010d}" for n in range(120)])  # needs 3 units
    assert sandbox.calls_to("videos.list") == 0


def test_the_servers_quota_exceeded_waits_for_pacific_midnight_and_sticks(
    make_adapter: Callable[..., YouTubeAdapter], sandbox: YouTubeSandbox, account: Account
) -> None:
    ledger = InMemoryQuotaLedger(clock=lambda: NOW)
    adapter = make_adapter(ledger=ledger)
    sandbox.spend_quota(UNITS, 10_000)  # other tools of the same project spent it
    with pytest.raises(QuotaExhausted) as raised:
        adapter.fetch_metrics(account, ["abc"])
    assert raised.value.code == "youtube:quotaExceeded"
    assert raised.value.retry_after == seconds_until_reset(NOW)
    assert "<a" not in str(raised.value)  # Google's HTML link is stripped
    assert isinstance(raised.value.__cause__, Exception)
    # The ledger now knows: the next call is refused here, without asking YouTube.
    assert ledger.remaining(CHANNEL, UNITS) == 0
    with pytest.raises(QuotaExhausted):
        adapter.fetch_metrics(account, ["abc"])
    assert sandbox.calls_to("videos.list") == 1


def test_the_sandbox_refuses_uploads_past_its_own_quota(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    sandbox.spend_quota(UPLOADS, 100)
    with pytest.raises(QuotaExhausted) as raised:
        adapter.publish(make_post(account, video_file))
    assert raised.value.code == "youtube:quotaExceeded"
    assert sandbox.uploads == {}


# --- errors --------------------------------------------------------------------------------


def test_an_expired_token_is_auth_expired_and_never_shown(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    sandbox.expire_token(TOKEN)
    with pytest.raises(AuthExpired) as on_upload:
        adapter.publish(make_post(account, video_file))
    with pytest.raises(AuthExpired) as on_metrics:
        adapter.fetch_metrics(account, ["abc"])
    with pytest.raises(AuthExpired) as on_reconcile:
        adapter.find_published(make_post(account, video_file), since=datetime.now(UTC))
    for error in (on_upload.value, on_metrics.value, on_reconcile.value):
        assert error.code == "youtube:authError"
        assert "reconnect" in (error.hint or "")
        assert_no_token(error)
    assert sandbox.uploads == {}


def test_a_token_echoed_by_the_server_is_masked(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account
) -> None:
    sandbox.faults.add(
        error_fault(400, "badRequest", f"bad token {TOKEN} here", method="GET", path="/videos")
    )
    with pytest.raises(PermanentError) as raised:
        adapter.fetch_metrics(account, ["abc"])
    assert "bad token ********** here" in str(raised.value)
    assert TOKEN not in str(raised.value) and TOKEN not in (raised.value.hint or "")


def test_an_account_without_token_is_auth_expired(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, video_file: Path
) -> None:
    bare = Account("youtube", CHANNEL, "ชุมชน")
    with pytest.raises(AuthExpired, match="has no token"):
        adapter.publish(make_post(bare, video_file))
    assert sandbox.calls == []


@pytest.mark.parametrize(
    ("reason", "headers", "retry_after"),
    [("rateLimitExceeded", {}, 60.0), ("userRateLimitExceeded", {"Retry-After": "17"}, 17.0)],
)
def test_rate_limits_are_rate_limited(
    adapter: YouTubeAdapter,
    sandbox: YouTubeSandbox,
    account: Account,
    reason: str,
    headers: dict[str, str],
    retry_after: float,
) -> None:
    sandbox.faults.add(
        error_fault(403, reason, "Rate Limit Exceeded", method="GET", headers=headers)
    )
    with pytest.raises(RateLimited) as raised:
        adapter.fetch_metrics(account, ["abc"])
    assert not isinstance(raised.value, QuotaExhausted)
    assert raised.value.code == f"youtube:{reason}"
    assert raised.value.retry_after == retry_after


def test_the_channels_upload_limit_waits_24_hours(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    sandbox.register_channel(CHANNEL, TOKEN, upload_limit=1)
    adapter.publish(make_post(account, video_file, marker="first"))
    with pytest.raises(QuotaExhausted) as raised:
        adapter.publish(make_post(account, video_file, marker="second"))
    assert raised.value.code == "youtube:uploadLimitExceeded"
    assert raised.value.retry_after == 24 * 3600
    assert len(sandbox.completed_uploads()) == 1


def test_a_5xx_on_a_read_is_transient(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account
) -> None:
    sandbox.faults.add(error_fault(500, "backendError", "Backend Error", method="GET"))
    with pytest.raises(TransientError) as raised:
        adapter.fetch_metrics(account, ["abc"])
    assert type(raised.value) is TransientError
    assert raised.value.code == "youtube:backendError"


def test_other_4xx_are_permanent_with_youtubes_message(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    # publishAt in the past passes the offline check (it cannot know "now") but not YouTube.
    post = make_post(account, video_file, privacy="private", publish_at="2020-01-01T00:00:00Z")
    with pytest.raises(PermanentError) as raised:
        adapter.publish(post)
    assert raised.value.code == "youtube:invalidPublishAt"
    assert "invalid scheduled publishing time" in str(raised.value)
    assert sandbox.completed_uploads() == []


def test_content_that_breaks_the_rules_is_refused_before_any_call(
    adapter: YouTubeAdapter, sandbox: YouTubeSandbox, account: Account, video_file: Path
) -> None:
    with pytest.raises(PermanentError) as raised:
        adapter.publish(make_post(account, video_file, title="ก" * 101))
    assert raised.value.code == "youtube:invalid-content"
    assert "title is 101 characters" in str(raised.value)
    assert sandbox.calls == []


def test_an_unreachable_server_is_transient(
    make_adapter: Callable[..., YouTubeAdapter], sandbox: YouTubeSandbox, account: Account
) -> None:
    adapter = make_adapter()
    sandbox.stop()
    with pytest.raises(TransientError) as raised:
        adapter.fetch_metrics(account, ["abc"])
    assert raised.value.code == "youtube:network"
    assert_no_token(raised.value)


def test_the_factory_reads_the_root_url_from_settings(ledger: InMemoryQuotaLedger) -> None:
    adapter = youtube_adapter_from_settings(
        Settings(youtube_root_url="http://127.0.0.1:9/"), ledger
    )
    assert adapter.ledger is ledger
    assert adapter._document["rootUrl"] == "http://127.0.0.1:9/"


# --- pure builders and parsers (no I/O) ----------------------------------------------------


def test_build_video_resource_carries_thai_text_and_the_marker_tag(tmp_path: Path) -> None:
    account = Account("youtube", CHANNEL, "ชุมชน", SecretStr(TOKEN))
    post = make_post(
        account,
        tmp_path / "v.mp4",
        privacy="private",
        publish_at="2026-06-05T17:00:00+07:00",
        made_for_kids=True,
        category_id=22,
    )
    resource = build_video_resource(post)
    assert resource == {
        "snippet": {
            "title": THAI_TITLE,
            "description": THAI_DESCRIPTION,
            "tags": [*THAI_TAGS, marker_tag("post-nan-0001")],
            "categoryId": "22",
            "defaultLanguage": "th",
        },
        "status": {
            "privacyStatus": "private",
            "selfDeclaredMadeForKids": True,
            "publishAt": "2026-06-05T10:00:00Z",
        },
    }
    assert post.content["tags"] == THAI_TAGS  # the post's own content is not changed


def test_build_video_resource_defaults() -> None:
    post = OutgoingPost("m", Account("youtube", CHANNEL, "x"), {"title": "t", "video": "/v"})
    resource = build_video_resource(post)
    assert resource["snippet"]["tags"] == [marker_tag("m")]
    assert resource["snippet"]["categoryId"] == "19"
    assert resource["snippet"]["description"] == ""
    assert resource["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": False}


def test_marker_tag_is_short_stable_and_distinct() -> None:
    assert marker_tag("post-1") == marker_tag("post-1")
    assert marker_tag("post-1") != marker_tag("post-2")
    assert len(marker_tag("x" * 64)) == MARKER_TAG_CHARS == 24
    assert marker_tag("x").startswith("glo-")


def test_tags_check_keeps_room_for_the_marker_tag(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(MP4_HEADER)
    # 475 characters of tags + comma + 24-character marker tag = 500: just fits
    fits = {"title": "t", "video": str(video), "tags": ["ก" * 475]}
    assert YouTubeLimits.content_problems(fits) == []
    over = {**fits, "tags": ["ก" * 476]}
    [problem] = YouTubeLimits.content_problems(over)
    assert problem.field == "tags" and "501 with the 24-character tag" in problem.message


def test_metrics_from_video_reads_string_counts() -> None:
    item = {
        "id": "abc",
        "statistics": {"viewCount": "1234", "likeCount": "56", "commentCount": "7"},
    }
    m = metrics_from_video(item, NOW)
    assert (m.external_id, m.views, m.reactions, m.comments, m.shares) == (
        "abc",
        1234,
        56,
        7,
        None,
    )
    assert m.collected_at == NOW
    hidden = metrics_from_video({"id": "x", "statistics": {"viewCount": "9"}}, NOW)
    assert hidden.reactions is None and hidden.comments is None  # hidden, not zero


def test_receipt_from_video() -> None:
    receipt = receipt_from_video({"id": "abc", "snippet": {"publishedAt": "2026-06-02T03:00:00Z"}})
    assert receipt.external_id == "abc"
    assert receipt.published_at == NOW
    assert receipt.permalink == "https://www.youtube.com/watch?v=abc"


def test_batches_of_50_without_repeats() -> None:
    ids = [f"v{n}" for n in range(120)]
    assert [len(b) for b in batches(ids + ids[:10], 50)] == [50, 50, 20]
    assert list(batches([], 50)) == []


def test_parse_failure_reads_googles_error_format() -> None:
    body = (
        b'{"error": {"code": 403, "message": "The request cannot be completed because you '
        b'have exceeded your <a href=\\"/youtube/v3/getting-started#quota\\">quota</a>.", '
        b'"errors": [{"message": "x", "domain": "youtube.quota", "reason": "quotaExceeded"}]}}'
    )
    failure = parse_failure(403, body, {"Retry-After": "30"})
    assert failure == ApiFailure(
        status=403,
        reason="quotaExceeded",
        message="The request cannot be completed because you have exceeded your quota.",
        retry_after=30.0,
    )
    plain = parse_failure(502, b"<html>Bad Gateway</html>", {})
    assert plain.reason is None and plain.status == 502 and plain.message == "Bad Gateway"


@pytest.mark.parametrize(
    ("status", "reason", "expected", "retry_after"),
    [
        (401, "authError", AuthExpired, None),
        (403, "insufficientPermissions", AuthExpired, None),
        (403, "quotaExceeded", QuotaExhausted, 4 * 3600.0),
        (400, "uploadLimitExceeded", QuotaExhausted, 24 * 3600.0),
        (403, "rateLimitExceeded", RateLimited, 60.0),
        (403, "userRateLimitExceeded", RateLimited, 60.0),
        (429, None, RateLimited, 60.0),
        (500, "backendError", TransientError, None),
        (503, None, TransientError, None),
        (400, "invalidTitle", PermanentError, None),
        (403, "forbidden", PermanentError, None),
        (404, "videoNotFound", PermanentError, None),
    ],
)
def test_classify_failure(
    status: int,
    reason: str | None,
    expected: type[ChannelError],
    retry_after: float | None,
) -> None:
    error = classify_failure(
        ApiFailure(status, reason, "YouTube says no"), method="videos.list", now=NOW
    )
    assert type(error) is expected
    assert error.retry_after == retry_after
    assert "YouTube says no" in str(error) and error.hint


def test_discovery_document_points_uploads_at_the_root_url() -> None:
    document = discovery_document("http://127.0.0.1:8123")
    assert document["rootUrl"] == document["mtlsRootUrl"] == "http://127.0.0.1:8123/"
    insert = document["resources"]["videos"]["methods"]["insert"]
    assert insert["mediaUpload"]["protocols"]["resumable"]["multipart"] is True


def test_chunk_size_must_follow_googles_256_kib_rule(ledger: InMemoryQuotaLedger) -> None:
    with pytest.raises(ValueError, match="multiple of 256 KiB"):
        YouTubeAdapter(root_url="http://127.0.0.1:9/", ledger=ledger, chunk_size=100_000)
