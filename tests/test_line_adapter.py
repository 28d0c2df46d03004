"""LineAdapter through the real line-bot-sdk (v3) against LineSandbox over a real socket, and
its pure parts without I/O.

Accepted sends are counted on the sandbox per retry key; the key a post must carry comes
from tests/support/line.py, which derives it from the marker on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from linebot.v3.insight import ApiClient as InsightClient
from linebot.v3.insight import Configuration as InsightConfiguration
from linebot.v3.insight import Insight
from linebot.v3.messaging import (
    ApiClient,
    AudienceRecipient,
    BroadcastRequest,
    Configuration,
    MessagingApi,
    MulticastRequest,
    NarrowcastRequest,
    PushMessageRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException
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
from channels.line import (
    LineAdapter,
    LineLimits,
    LineSettings,
    build_messages,
    classify,
    line_adapter,
    parse_failure,
)
from channels.ratelimit import MemoryTokenBucket
from channels.sandbox.base import Fault
from channels.sandbox.line import LineSandbox, error_fault
from tests.support.line import expected_retry_key, user_ids

TOKEN = "line-sandbox-token-NAN-7c41e2"
FRIENDS = 40
QUOTA = 1_000
ZONE = timezone(timedelta(hours=9))
TRACKED = "https://glo.example.org/t/nan-0001?utm_source=line&utm_medium=oa"
CONTENT: dict[str, Any] = {
    "text": "ผ้าทอบ้านดอยเงิน จังหวัดน่าน ชวนมาเรียนทอผ้าลายน้ำไหล",
    "image_url": "https://glo.example.org/media/nan/weaving.jpg",
    "card_title": "เที่ยวชุมชนผ้าทอบ้านดอยเงิน",
    "card_body": "สลากสร้างสรรค์เพื่อชุมชน ๒๕๖๙ · เรียนทอผ้ากับช่างในหมู่บ้าน",
    "link": TRACKED,
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[LineSandbox]:
    server = LineSandbox(seed=11)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel_id(sandbox: LineSandbox) -> str:
    channel = sandbox.register_channel(
        TOKEN,
        basic_id="@nan-weaving",
        display_name="ชุมชนผ้าทอบ้านดอยเงิน",
        friends=FRIENDS,
        quota=QUOTA,
        blocks=3,
    )
    return channel.user_id


@pytest.fixture
def account(channel_id: str) -> Account:
    return Account("line", channel_id, "ชุมชนผ้าทอบ้านดอยเงิน", SecretStr(TOKEN))


@pytest.fixture
def now(sandbox: LineSandbox) -> datetime:
    """The adapter's frozen "now": the sandbox's time when the test starts."""
    return sandbox.clock.now()


@pytest.fixture
def make_adapter(sandbox: LineSandbox, now: datetime) -> Callable[..., LineAdapter]:
    def make(**options: Any) -> LineAdapter:
        settings: dict[str, Any] = {"api_url": sandbox.url, "timeout": 5.0, "clock": lambda: now}
        return LineAdapter(**{**settings, **options})

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., LineAdapter]) -> LineAdapter:
    return make_adapter()


def post(account: Account, marker: str = "post-nan-line-0001", **content: Any) -> OutgoingPost:
    return OutgoingPost(marker=marker, account=account, content={**CONTENT, **content})


def assert_no_token(error: BaseException) -> None:
    texts = [str(error), repr(error)]
    if isinstance(error, ChannelError):
        texts += [error.message, error.hint or "", error.code or ""]
    if error.__cause__ is not None:
        texts += [str(error.__cause__), repr(error.__cause__)]
    for text in texts:
        assert TOKEN not in text


def next_month_start(moment: datetime) -> datetime:
    local = moment.astimezone(ZONE)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=ZONE)


# --- publishing ----------------------------------------------------------------------------


def test_broadcast_goes_out_once_under_the_markers_retry_key(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    receipt = adapter.publish(post(account))

    [sent] = sandbox.accepted()
    assert sent.kind == "broadcast"
    assert sent.retry_key == expected_retry_key("post-nan-line-0001")
    assert receipt.external_id == sent.request_id
    assert receipt.raw["accepted_earlier"] == [False]
    assert len(sent.recipients) == FRIENDS
    assert sandbox.channel(TOKEN).usage  # the month's consumption grew by the friends
    assert sum(sandbox.channel(TOKEN).usage.values()) == FRIENDS
    # text, image, and a Flex card in Thai whose button opens the tracked link
    assert [m["type"] for m in sent.messages] == ["text", "image", "flex"]
    flex = sent.messages[2]
    assert flex["altText"] == "เที่ยวชุมชนผ้าทอบ้านดอยเงิน"
    button = flex["contents"]["footer"]["contents"][0]
    assert button["action"] == {"type": "uri", "label": "ดูรายละเอียด", "uri": TRACKED}


def test_publishing_the_same_post_again_is_answered_409_and_recorded_not_resent(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    first = adapter.publish(post(account))
    again = adapter.publish(post(account))

    assert again.external_id == first.external_id  # x-line-accepted-request-id
    assert again.raw["accepted_earlier"] == [True]
    assert sandbox.count_by_retry_key(expected_retry_key("post-nan-line-0001")) == 1
    assert len(sandbox.accepted()) == 1


def test_a_dropped_answer_is_repeated_with_the_same_key_and_delivered_once(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    sandbox.faults.add(Fault("drop_after", method="POST", path="/message/broadcast"))

    receipt = adapter.publish(post(account))

    [sent] = sandbox.accepted()
    assert receipt.external_id == sent.request_id
    assert receipt.raw["accepted_earlier"] == [True]
    assert ("POST", "/v2/bot/message/broadcast", "drop_after") in sandbox.faults.injected


def test_an_answer_that_times_out_is_repeated_with_the_key_and_delivered_once(
    make_adapter: Callable[..., LineAdapter], account: Account, sandbox: LineSandbox
) -> None:
    held = sandbox.faults.add(Fault("hold", method="POST", path="/message/broadcast"))
    adapter = make_adapter(timeout=0.5)

    receipt = adapter.publish(post(account))

    assert held.wait_held(0)
    [sent] = sandbox.accepted()
    assert receipt.external_id == sent.request_id
    assert receipt.raw["accepted_earlier"] == [True]
    held.release()


def test_answers_lost_every_time_are_outcome_unknown_and_the_next_publish_finds_it_accepted(
    make_adapter: Callable[..., LineAdapter], account: Account, sandbox: LineSandbox, now: datetime
) -> None:
    adapter = make_adapter(immediate_retries=2)
    sandbox.faults.add(Fault("drop_after", method="POST", path="/message/broadcast", times=3))

    with pytest.raises(OutcomeUnknown) as caught:
        adapter.publish(post(account))
    assert caught.value.code == "line:no-answer"
    assert len(sandbox.accepted()) == 1  # the first try was accepted, its answer lost

    # Reconciliation: within the key's life, "none" is safe -- publishing again is deduped.
    assert adapter.find_published(post(account), since=now - timedelta(minutes=5)) is None
    receipt = adapter.publish(post(account))
    assert receipt.raw["accepted_earlier"] == [True]
    assert receipt.external_id == sandbox.accepted()[0].request_id
    assert sandbox.count_by_retry_key(expected_retry_key("post-nan-line-0001")) == 1


def test_after_the_retry_keys_life_reconciliation_refuses_to_guess(
    adapter: LineAdapter, account: Account, now: datetime
) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.find_published(post(account), since=now - timedelta(hours=23, minutes=1))
    assert caught.value.code == "line:reconcile-expired"


def test_a_server_error_is_repeated_with_the_key_and_too_many_are_transient(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    sandbox.faults.add(error_fault(500, "Internal server error", path="/message/broadcast"))
    adapter.publish(post(account, marker="m-500-once"))
    assert sandbox.count_by_retry_key(expected_retry_key("m-500-once")) == 1

    sandbox.faults.add(
        error_fault(500, "Internal server error", path="/message/broadcast", times=3)
    )
    with pytest.raises(TransientError) as caught:
        adapter.publish(post(account, marker="m-500-always"))
    assert caught.value.code == "line:server"
    assert sandbox.count_by_retry_key(expected_retry_key("m-500-always")) == 0


def test_an_unreachable_line_is_transient_and_nothing_was_sent(account: Account) -> None:
    closed = LineSandbox()
    closed.start()
    url = closed.url
    closed.stop()
    adapter = LineAdapter(api_url=url, timeout=2.0, immediate_retries=0)
    with pytest.raises(TransientError) as caught:
        adapter.check_account(account)
    assert caught.value.code == "line:network"


# --- limits --------------------------------------------------------------------------------


def test_a_send_past_the_monthly_quota_waits_until_next_month_naming_the_numbers(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox, now: datetime
) -> None:
    sandbox.set_usage(TOKEN, QUOTA - 20)  # 20 left; a broadcast reaches the 40 friends

    with pytest.raises(QuotaExhausted) as caught:
        adapter.publish(post(account))

    error = caught.value
    assert error.code == "line:monthly-quota"
    assert "20 messages left" in error.message and "needs 40" in error.message
    assert error.retry_after == (next_month_start(now) - now).total_seconds()
    assert sandbox.accepted() == []
    assert adapter.quota_left(account) == 20


def test_a_post_accepted_before_the_quota_ran_short_is_recorded_not_held_for_a_month(
    make_adapter: Callable[..., LineAdapter], account: Account, sandbox: LineSandbox
) -> None:
    """Its own messages are in the consumption: holding it until next month would outlive
    its retry key.  LINE answers 409, so it is published."""
    adapter = make_adapter(immediate_retries=0)
    sandbox.set_usage(TOKEN, QUOTA - FRIENDS - 10)
    sandbox.faults.add(Fault("drop_after", method="POST", path="/message/broadcast"))
    with pytest.raises(OutcomeUnknown):
        adapter.publish(post(account))
    assert adapter.quota_left(account) == 10  # 40 needed

    receipt = adapter.publish(post(account))

    assert receipt.raw["accepted_earlier"] == [True]
    assert len(sandbox.accepted()) == 1


def test_broadcasts_beyond_the_hourly_allowance_wait_before_line_refuses(
    make_adapter: Callable[..., LineAdapter], account: Account, sandbox: LineSandbox
) -> None:
    ticks = [0.0]
    bucket = MemoryTokenBucket(rate=2 / 3600, capacity=2, clock=lambda: ticks[0])
    adapter = make_adapter(hourly=bucket)
    adapter.publish(post(account, marker="hour-1"))
    adapter.publish(post(account, marker="hour-2"))

    with pytest.raises(RateLimited) as caught:
        adapter.publish(post(account, marker="hour-3"))
    assert caught.value.code == "line:hourly-limit"
    assert caught.value.retry_after == pytest.approx(1800.0)
    assert len(sandbox.accepted()) == 2
    assert sandbox.refused == []

    ticks[0] = 1800.0
    adapter.publish(post(account, marker="hour-3"))
    assert len(sandbox.accepted()) == 3


def test_lines_own_hourly_refusal_is_rate_limited(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    sandbox.hourly_limits["broadcast"] = 1
    adapter.publish(post(account, marker="first"))
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post(account, marker="second"))
    assert caught.value.code == "line:rate-limit"
    assert not isinstance(caught.value, QuotaExhausted)


# --- audiences and subscribers ---------------------------------------------------------------


def test_narrowcast_reaches_the_audience_and_its_size_counts_against_the_quota(
    make_adapter: Callable[..., LineAdapter], sandbox: LineSandbox
) -> None:
    ids = user_ids(80)
    channel = sandbox.register_channel(
        "token-nc", basic_id="@nc", display_name="น่าน", friends=ids, quota=QUOTA
    )
    acct = Account("line", channel.user_id, "น่าน", SecretStr("token-nc"))
    adapter = make_adapter()
    audience = adapter.create_audience(acct, "สนใจจังหวัดน่าน", ids[:60])

    adapter.publish(post(acct, target="narrowcast", audience_group_id=audience))

    [sent] = sandbox.accepted()
    assert (sent.kind, sent.audience_group_id, len(sent.recipients)) == ("narrowcast", audience, 60)
    assert sent.retry_key == expected_retry_key("post-nan-line-0001")

    sandbox.set_usage("token-nc", QUOTA - 59)
    with pytest.raises(QuotaExhausted) as caught:
        adapter.publish(post(acct, "m-2", target="narrowcast", audience_group_id=audience))
    assert "needs 60" in caught.value.message


def test_a_narrowcast_to_an_audience_under_50_is_refused_before_line_fails_it(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    small = sandbox.add_audience(TOKEN, "กลุ่มเล็ก", sandbox.channel(TOKEN).friends[:12])
    with pytest.raises(PermanentError) as caught:
        adapter.publish(post(account, target="narrowcast", audience_group_id=small))
    assert caught.value.code == "line:audience-too-small"
    assert sandbox.accepted() == []

    # What LINE itself does with one: accepts it (202), then fails it with errorCode 4.
    with ApiClient(Configuration(host=sandbox.url, access_token=TOKEN)) as client:
        api = MessagingApi(client)
        answer = api.narrowcast_with_http_info(
            NarrowcastRequest(
                messages=[TextMessage(text="ทดสอบ")],
                recipient=AudienceRecipient(audience_group_id=small),
            )
        )
        assert answer.status_code == 202
        progress = api.get_narrowcast_progress(answer.headers["x-line-request-id"])
    assert (progress.phase, progress.error_code, progress.target_count) == ("failed", 4, 12)
    assert sandbox.accepted()[0].recipients == []


@pytest.mark.parametrize(("count", "sizes"), [(500, [500]), (501, [500, 1])])
def test_subscribers_go_in_multicasts_of_500_each_under_its_own_key(
    make_adapter: Callable[..., LineAdapter],
    sandbox: LineSandbox,
    count: int,
    sizes: list[int],
) -> None:
    ids = user_ids(count)
    channel = sandbox.register_channel(
        "token-many", basic_id="@many", display_name="ชุมชนใหญ่", friends=ids, quota=QUOTA
    )
    many = Account("line", channel.user_id, "ชุมชนใหญ่", SecretStr("token-many"))
    adapter = make_adapter(subscribers=lambda acct: list(reversed(ids)) + ids[:3])

    receipt = adapter.publish(post(many, marker="m-multi", target="subscribers"))

    sent = sandbox.accepted(kind="multicast")
    assert [len(s.recipients) for s in sent] == sizes
    assert [s.retry_key for s in sent] == [
        expected_retry_key("m-multi", n) for n in range(len(sizes))
    ]
    assert receipt.raw["request_ids"] == [s.request_id for s in sent]
    assert sorted(u for s in sent for u in s.recipients) == sorted(ids)

    again = adapter.publish(post(many, marker="m-multi", target="subscribers"))
    assert again.raw["accepted_earlier"] == [True] * len(sizes)
    assert len(sandbox.accepted(kind="multicast")) == len(sizes)


def test_a_multicast_that_cannot_finish_within_the_quota_does_not_start(
    make_adapter: Callable[..., LineAdapter], sandbox: LineSandbox
) -> None:
    ids = user_ids(501)
    channel = sandbox.register_channel(
        "token-q", basic_id="@q", display_name="q", friends=ids, quota=500
    )
    acct = Account("line", channel.user_id, "q", SecretStr("token-q"))
    adapter = make_adapter(subscribers=lambda a: ids)

    with pytest.raises(QuotaExhausted) as caught:
        adapter.publish(post(acct, marker="m-q", target="subscribers"))
    assert "needs 501" in caught.value.message
    assert sandbox.accepted() == [] and sandbox.refused == []  # not even tried

    # With fewer left than one batch, the first batch is tried (an earlier attempt may have
    # been accepted: 409); LINE refuses it and the wait names the numbers.
    sandbox.set_usage("token-q", 200)
    with pytest.raises(QuotaExhausted) as caught:
        adapter.publish(post(acct, marker="m-q", target="subscribers"))
    assert "300 messages left" in caught.value.message
    assert sandbox.accepted() == []
    assert [status for _, status, _ in sandbox.refused] == [429]


def test_subscribers_without_a_list_or_ids_are_permanent(
    make_adapter: Callable[..., LineAdapter], account: Account, sandbox: LineSandbox
) -> None:
    with pytest.raises(PermanentError) as caught:
        make_adapter().publish(post(account, target="subscribers"))
    assert caught.value.code == "line:no-subscribers"
    with pytest.raises(PermanentError) as caught:
        make_adapter(subscribers=lambda a: []).publish(post(account, target="subscribers"))
    assert caught.value.code == "line:no-recipients"
    assert sandbox.accepted() == []


# --- metrics and accounts ---------------------------------------------------------------------


def test_metrics_by_request_id_and_the_number_of_friends(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    friends = sandbox.channel(TOKEN).friends
    broadcast = adapter.publish(post(account, marker="m-b"))
    multicast = LineAdapter(
        api_url=sandbox.url, subscribers=lambda a: friends[:5], clock=adapter.clock
    ).publish(post(account, marker="m-m", target="subscribers"))
    sandbox.clock.advance(timedelta(days=2))

    metrics = adapter.fetch_metrics(account, [broadcast.external_id, multicast.external_id])

    [only] = metrics  # LINE keeps no message statistics for multicasts
    assert only.external_id == broadcast.external_id
    assert only.raw["delivered"] == FRIENDS
    assert only.views is not None and 0 < only.views <= FRIENDS
    assert only.clicks is not None and only.clicks <= only.views
    assert adapter.friends(account) == FRIENDS  # followers 43 less 3 blocks


def test_check_account_accepts_the_bot_and_refuses_another_or_a_bad_token(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    adapter.check_account(account)
    adapter.check_account(Account("line", "@nan-weaving", "x", SecretStr(TOKEN)))

    with pytest.raises(AuthExpired) as caught:
        adapter.check_account(Account("line", "@someone-else", "x", SecretStr(TOKEN)))
    assert caught.value.code == "line:wrong-channel"

    sandbox.revoke(TOKEN)
    with pytest.raises(AuthExpired) as caught:
        adapter.check_account(account)
    assert caught.value.code == "line:token"
    assert_no_token(caught.value)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(post(account))
    assert caught.value.code == "line:token"
    assert_no_token(caught.value)

    with pytest.raises(AuthExpired) as caught:
        adapter.check_account(Account("line", account.external_id, "x", None))
    assert caught.value.code == "line:no-token"


@pytest.mark.parametrize(
    ("status", "message", "error", "code"),
    [
        (400, "The request body has 1 error(s)", PermanentError, "line:refused"),
        (
            403,
            "Access to this API is not available for your account",
            AuthExpired,
            "line:permission",
        ),
        (429, "You have reached your monthly limit.", QuotaExhausted, "line:monthly-quota"),
        (
            429,
            "The API rate limit has been exceeded. Try again later.",
            RateLimited,
            "line:rate-limit",
        ),
    ],
)
def test_each_refusal_of_a_send_maps_to_its_error_class(
    adapter: LineAdapter,
    account: Account,
    sandbox: LineSandbox,
    status: int,
    message: str,
    error: type[ChannelError],
    code: str,
) -> None:
    sandbox.faults.add(error_fault(status, message, path="/message/broadcast"))
    with pytest.raises(error) as caught:
        adapter.publish(post(account))
    assert caught.value.code == code
    assert message.rstrip(".") in caught.value.message
    assert sandbox.accepted() == []


def test_reads_that_fail_on_the_server_are_transient(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    sandbox.faults.add(error_fault(503, "Service unavailable", path="/v2/bot/info"))
    with pytest.raises(TransientError) as caught:
        adapter.check_account(account)
    assert caught.value.code == "line:server"


def test_invalid_content_is_refused_before_any_call(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(post(account, text=""))
    assert caught.value.code == "line:invalid-content"
    assert sandbox.state()["accepted"] == []


# --- the sandbox's own rules (through the SDK) ------------------------------------------------


def test_sandbox_retry_key_rules(sandbox: LineSandbox, channel_id: str) -> None:
    request = BroadcastRequest(messages=[TextMessage(text="สวัสดีครับ")])
    with ApiClient(Configuration(host=sandbox.url, access_token=TOKEN)) as client:
        api = MessagingApi(client)
        with pytest.raises(ApiException) as caught:
            api.broadcast_with_http_info(request, x_line_retry_key="not-a-uuid")
        assert caught.value.status == 400
        assert caught.value.headers["x-line-request-id"]

        with pytest.raises(ApiException) as caught:
            api.get_bot_info(_headers={"X-Line-Retry-Key": str(uuid.uuid4())})
        assert caught.value.status == 400

        key = str(uuid.uuid4())
        first = api.broadcast_with_http_info(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as caught:
            api.broadcast_with_http_info(request, x_line_retry_key=key)
        assert caught.value.status == 409
        accepted = caught.value.headers["x-line-accepted-request-id"]
        assert accepted == first.headers["x-line-request-id"]

        sandbox.clock.advance(timedelta(hours=24, seconds=1))  # the key has expired
        api.broadcast_with_http_info(request, x_line_retry_key=key)
    assert sandbox.count_by_retry_key(key) == 2


# --- pure parts -----------------------------------------------------------------------------


def test_content_problems_name_each_field() -> None:
    problems = LineLimits.content_problems(
        {
            "text": "ก" * 5_001,
            "image_url": "http://insecure.example/a.jpg",
            "card_title": "",
            "card_body": "b",
            "link": "ftp://x",
            "card_button": "ก" * 41,
            "target": "narrowcast",
        }
    )
    fields = {p.field for p in problems}
    assert fields == {
        "text",
        "image_url",
        "card_title",
        "link",
        "card_button",
        "audience_group_id",
    }
    assert LineLimits.content_problems(CONTENT) == []
    # A card is all or nothing: a link alone asks for its title and text.
    assert {p.field for p in LineLimits.content_problems({"text": "t", "link": TRACKED})} == {
        "card_title",
        "card_body",
    }
    assert LineLimits.content_problems({"text": "ข้อความอย่างเดียว"}) == []


def test_build_messages_keeps_the_order_and_the_preview() -> None:
    messages = build_messages({**CONTENT, "preview_url": "https://glo.example.org/p.jpg"})
    kinds = [m.type for m in messages]
    assert kinds == ["text", "image", "flex"]
    assert messages[1].preview_image_url == "https://glo.example.org/p.jpg"


def test_classify_quota_waits_until_the_next_month_in_utc_plus_9() -> None:
    now = datetime(2026, 6, 30, 15, 30, tzinfo=UTC)
    failure = parse_failure(429, b'{"message": "You have reached your monthly limit."}', {})
    error = classify(failure, action="the broadcast", now=now)
    assert isinstance(error, QuotaExhausted)
    # 30 June 15:30 UTC is already 1 July 00:30 in UTC+9: the wait runs to 1 August.
    assert error.retry_after == (datetime(2026, 7, 31, 15, 0, tzinfo=UTC) - now).total_seconds()


def test_parse_failure_reads_details_and_request_ids() -> None:
    failure = parse_failure(
        400,
        b'{"message": "The request body has 1 error(s)", '
        b'"details": [{"message": "Size must be between 1 and 500", "property": "to"}]}',
        {"X-Line-Request-Id": "r-1", "x-line-accepted-request-id": "r-0"},
    )
    assert failure.message == "The request body has 1 error(s) (to: Size must be between 1 and 500)"
    assert (failure.request_id, failure.accepted_request_id) == ("r-1", "r-0")


def test_the_adapter_is_built_from_settings_values(sandbox: LineSandbox) -> None:
    adapter = line_adapter(LineSettings(line_api_url=sandbox.url + "/", line_hourly_limit=5))
    assert adapter.api_url == sandbox.url
    assert adapter.hourly.capacity == 5


# --- staff notifications, the quota as staff see it, more of the sandbox ----------------------


def test_staff_notifications_go_through_the_programmes_oa_once_per_notification(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    staff = sandbox.channel(TOKEN).friends[:3]
    first = adapter.notify(account, staff, "มีโพสต์ที่ต้องตรวจสอบ 2 รายการ", marker="notice-42")
    again = adapter.notify(account, staff, "มีโพสต์ที่ต้องตรวจสอบ 2 รายการ", marker="notice-42")

    [sent] = sandbox.accepted(kind="multicast")
    assert sorted(sent.recipients) == sorted(staff)
    assert sent.retry_key == expected_retry_key("notice-42", 0)
    assert again.external_id == first.external_id
    with pytest.raises(PermanentError):
        adapter.notify(account, [], "x", marker="notice-43")


def test_the_quota_as_staff_see_it(
    adapter: LineAdapter, account: Account, sandbox: LineSandbox
) -> None:
    sandbox.set_usage(TOKEN, 250)
    quota = adapter.quota(account)
    assert (quota.limit, quota.used, quota.left) == (QUOTA, 250, QUOTA - 250)

    channel = sandbox.register_channel("token-free", basic_id="@free", display_name="f")
    unlimited = Account("line", channel.user_id, "f", SecretStr("token-free"))
    assert adapter.quota(unlimited).left is None
    assert adapter.quota_left(unlimited) is None


def test_sandbox_answers_every_request_with_a_request_id_and_line_error_bodies(
    sandbox: LineSandbox, channel_id: str
) -> None:
    with (
        ApiClient(Configuration(host=sandbox.url, access_token="wrong")) as client,
        pytest.raises(ApiException) as caught,
    ):
        MessagingApi(client).get_bot_info()
    assert caught.value.status == 401
    assert caught.value.headers["x-line-request-id"]
    assert "Authentication failed" in caught.value.body

    too_many = user_ids(501)
    with ApiClient(Configuration(host=sandbox.url, access_token=TOKEN)) as client:
        api = MessagingApi(client)
        with pytest.raises(ApiException) as caught:
            # The SDK checks the 500 itself; construct() skips that to ask the server.
            api.multicast(MulticastRequest.construct(to=too_many, messages=[TextMessage(text="x")]))
        assert caught.value.status == 400
        assert '"property": "to"' in caught.value.body
        with pytest.raises(ApiException) as caught:
            api.push_message(
                PushMessageRequest.construct(
                    to=sandbox.channel(TOKEN).friends[0], messages=[TextMessage(text="x")] * 6
                )
            )
        assert caught.value.status == 400
        pushed = api.push_message_with_http_info(
            PushMessageRequest(
                to=sandbox.channel(TOKEN).friends[0], messages=[TextMessage(text="x")]
            ),
            x_line_retry_key=str(uuid.uuid4()),
        )
        assert pushed.status_code == 200 and len(pushed.data.sent_messages) == 1
    assert [a.kind for a in sandbox.accepted()] == ["push"]


def test_sandbox_follower_counts_wait_for_the_day_to_be_counted(
    sandbox: LineSandbox, channel_id: str
) -> None:
    today = sandbox.clock.now().astimezone(ZONE)
    with InsightClient(InsightConfiguration(host=sandbox.url, access_token=TOKEN)) as client:
        insight = Insight(client)
        assert (
            insight.get_number_of_followers(var_date=today.strftime("%Y%m%d")).status == "unready"
        )
        assert insight.get_number_of_followers(var_date="20161031").status == "out_of_service"
        counted = insight.get_number_of_followers(
            var_date=(today - timedelta(days=1)).strftime("%Y%m%d")
        )
    assert (counted.status, counted.followers, counted.blocks) == ("ready", FRIENDS + 3, 3)


def test_workers_share_the_hourly_allowance_through_redis(
    sandbox: LineSandbox, account: Account, redis_server: Any
) -> None:
    settings = LineSettings(
        line_api_url=sandbox.url,
        line_hourly_limit=1,
        effective_redis_url=redis_server.url,
    )
    worker_a, worker_b = line_adapter(settings), line_adapter(settings)
    marker = f"redis-{uuid.uuid4()}"  # the Redis server lives for the whole run
    shared = Account("line", f"@shared-{uuid.uuid4().hex[:8]}", "x", account.token)

    worker_a.publish(post(shared, marker=marker))
    with pytest.raises(RateLimited) as caught:
        worker_b.publish(post(shared, marker=marker + "-2"))
    assert caught.value.code == "line:hourly-limit"
    assert 0 < (caught.value.retry_after or 0) <= 3600  # one token an hour
    assert len(sandbox.accepted()) == 1


def test_the_sandbox_suite_serves_line_accounts_it_is_told_about() -> None:
    from channels.registry import spec_for
    from channels.sandbox.suite import SandboxAccount, SandboxSuite

    bot = "U" + "5a" * 16
    with SandboxSuite() as suite:
        suite.register([SandboxAccount("line", bot, "sandbox-line-glo", "สลากเพื่อชุมชน")])
        env = suite.settings_env()
        adapter = spec_for("line").build(LineSettings(line_api_url=env["MARKETING_LINE_API_URL"]))
        assert isinstance(adapter, LineAdapter)
        adapter.check_account(Account("line", bot, "x", SecretStr("sandbox-line-glo")))
        assert suite.state()["line"]["accepted"] == []
