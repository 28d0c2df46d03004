"""LINE Official Account through the official ``line-bot-sdk`` (v3).

Content keys (``Post.content`` for a LINE post, :class:`LineContent`):

=====================  ===============================================================
``text``               the message text (required; at most 5,000 characters)
``image_url``          an HTTPS JPEG/PNG sent as an image message (optional)
``preview_url``        its preview (HTTPS; default ``image_url``)
``card_title``         a Flex card (optional, with ``card_body`` and ``link``): its
                       bold title, also the notification's alt text
``card_body``          the card's text
``link``               the post's tracked HTTPS link, opened by the card's button
``card_button``        the button's label (default "ดูรายละเอียด", at most 40 characters)
``card_image_url``     the card's HTTPS hero image (optional)
``target``             ``broadcast`` (every friend, the default), ``narrowcast`` (an
                       audience) or ``subscribers`` (our consenting subscribers who
                       linked their LINE user id: multicast, 500 ids a request)
``audience_group_id``  the audience of a ``narrowcast`` (an integer)
=====================  ===============================================================

Exactly once (developers.line.biz/en/docs/messaging-api/retrying-api-request/)
    Every send carries ``X-Line-Retry-Key``, a UUID derived from the post's marker
    (:func:`retry_key`; a multicast's batches one each).  LINE executes a request with a given
    key once: a repeat within 24 hours answers 409 with ``x-line-accepted-request-id``,
    which this adapter takes as "already published" and records, never sending again.  So a
    lost answer (dropped connection, timeout, 5xx) is retried at once with the same key, and
    the pipeline may publish an uncertain post again within the key's life:
    :meth:`LineAdapter.find_published` says "none" while a repeat is still deduplicated by
    LINE (``retry_key_window``) and refuses to guess after that.

Limits before LINE refuses
    Broadcast and narrowcast are limited to 60 requests an hour per channel
    (/reference/messaging-api/#rate-limits): an injected
    :class:`channels.ratelimit.TokenBucket` (Redis in production, shared by every worker)
    spaces them, and a send with no token left raises :class:`RateLimited` naming the wait.
    The monthly message quota (``/v2/bot/message/quota``, ``/quota/consumption``; counted per
    recipient, /docs/messaging-api/pricing/) is read before each send: a send that would go
    past it raises :class:`QuotaExhausted` until the next month (UTC+9) with the numbers.
    One case is sent anyway: a send the quota check refuses may be the retry of a send
    LINE already accepted (its own messages are in the consumption), and waiting a month
    would outlive its retry key; so it goes out with its key once, and LINE decides -- 409
    (it was accepted: published), 429 (over quota: nothing delivered, the wait stands).

Metrics
    ``/v2/bot/insight/message/event?requestId=`` gives a broadcast's or narrowcast's
    delivered count, unique impressions (``views``) and unique clicks (``clicks``); LINE
    keeps no such figures for multicast requests, which are left out.  The number of friends
    comes from ``/v2/bot/insight/followers`` (:meth:`LineAdapter.friends`).

This module imports nothing from ``marketing``: its settings arrive as values
(:class:`LineSettings`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NotRequired, TypedDict

import urllib3.exceptions
from pydantic import BaseModel, ConfigDict, Field

from channels.base import (
    Account,
    Adapter,
    Capability,
    ChannelServices,
    ChannelSpec,
    ContentProblem,
    Metrics,
    OutgoingPost,
    Publisher,
    Receipt,
)
from channels.campaign_input import ChannelInput, TemplateField, Text
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from channels.ratelimit import MemoryTokenBucket, RedisTokenBucket, TokenBucket


class LazyModule:
    """A module imported on its first attribute lookup."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(import_module(self._name), attribute)


if TYPE_CHECKING:
    from linebot.v3 import audience as line_audience
    from linebot.v3 import insight as line_insight
    from linebot.v3 import messaging as line_messaging
    from linebot.v3.audience import ManageAudience
else:
    # The LINE SDK is imported when first used, not with this module: the registry imports
    # every channel module for its SPEC, and linebot.v3.messaging alone took about 40 % of
    # the web app's import time (`python -X importtime`, #19).
    line_audience = LazyModule("linebot.v3.audience")
    line_insight = LazyModule("linebot.v3.insight")
    line_messaging = LazyModule("linebot.v3.messaging")

Target = Literal["broadcast", "narrowcast", "subscribers"]
TARGETS: tuple[str, ...] = ("broadcast", "narrowcast", "subscribers")
#: LINE's calendar: quota months and insight dates are in UTC+9.
LINE_ZONE = timezone(timedelta(hours=9))
#: Derives retry keys from markers (a fixed namespace: the same marker, the same key).
RETRY_KEY_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://glo-community-marketing/line/retry-key"
)
DEFAULT_BUTTON = "ดูรายละเอียด"
RECONNECT_HINT = (
    "issue a new channel access token in the LINE Developers console (Messaging API tab) "
    "and store it as the account's token"
)


#: The SDK's modules the adapter uses (imported on first use, or ahead by :func:`import_sdk`).
SDK_MODULES = ("linebot.v3.messaging", "linebot.v3.insight", "linebot.v3.audience")


def import_sdk() -> None:
    """Import the LINE SDK now.  The production worker calls this before its pool forks
    (``tasks.app``), so its pool processes share it instead of each importing it (about
    1 s of CPU) on its first LINE post (#19)."""
    for name in SDK_MODULES:
        import_module(name)


def _api_errors() -> tuple[type[Exception], ...]:
    """The SDK's API errors (imported with the SDK)."""
    return (
        line_messaging.ApiException,
        line_insight.ApiException,
        line_audience.ApiException,
    )


# What a dropped, refused or timed-out connection raises through urllib3.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)


class LineContent(TypedDict):
    """``Post.content`` of a LINE post (see the module's table)."""

    text: str
    image_url: NotRequired[str]
    preview_url: NotRequired[str]
    card_title: NotRequired[str]
    card_body: NotRequired[str]
    link: NotRequired[str]
    card_button: NotRequired[str]
    card_image_url: NotRequired[str]
    target: NotRequired[Target]
    audience_group_id: NotRequired[int]


class LineSettings(BaseModel):
    """What the LINE adapter is built from (values; the service's settings of the same names
    supply them)."""

    model_config = ConfigDict(frozen=True)

    line_api_url: str = Field("https://api.line.me", description="Messaging API base URL")
    line_timeout: float = Field(30.0, gt=0, description="seconds before a call is given up")
    line_hourly_limit: int = Field(60, ge=1, description="broadcasts/narrowcasts an hour")
    effective_redis_url: str | None = None  # the hourly allowance is shared through Redis


def retry_key(marker: str, batch: int | None = None) -> str:
    """The ``X-Line-Retry-Key`` of a post's send (``batch``: a multicast's batch number)."""
    name = marker if batch is None else f"{marker}#{batch}"
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, name))


def next_month(now: datetime) -> datetime:
    """The start of the quota month after ``now``'s (UTC+9), in UTC."""
    local = now.astimezone(LINE_ZONE)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=LINE_ZONE).astimezone(UTC)


def _https(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("https://") and len(value) <= 2000


class LineLimits(Adapter):
    """LINE Official Account messages: limits as data, checked without I/O.

    Sources: developers.line.biz/en/reference/messaging-api/#text-message (5,000
    characters), #image-message (HTTPS URLs of at most 2,000 characters), #flex-message
    (``altText`` at most 1,500 characters), #send-multicast-message (500 user ids),
    #rate-limits (broadcast and narrowcast: 60 requests an hour).
    """

    kind: ClassVar[str] = "line"
    service_name: ClassVar[str] = "LINE Official Account"
    text_max_chars: ClassVar[int] = 5_000
    alt_text_max_chars: ClassVar[int] = 1_500
    button_max_chars: ClassVar[int] = 40
    multicast_max_ids: ClassVar[int] = 500
    narrowcast_min_audience: ClassVar[int] = 50  # #get-narrowcast-progress-status errorCode 4
    audience_max_ids: ClassVar[int] = 10_000  # #create-upload-audience-group (JSON)
    hourly_limited: ClassVar[frozenset[str]] = frozenset({"broadcast", "narrowcast"})

    @classmethod
    def content_problems(cls, content: Mapping[str, Any]) -> list[ContentProblem]:
        problems: list[ContentProblem] = []
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(ContentProblem("text", "is empty"))
        elif len(text) > cls.text_max_chars:
            problems.append(
                ContentProblem(
                    "text", f"is {len(text):,} characters; LINE allows {cls.text_max_chars:,}"
                )
            )
        for key in ("image_url", "preview_url"):
            if key in content and not _https(content[key]):
                problems.append(
                    ContentProblem(key, "must be an https:// URL of at most 2,000 characters")
                )
        if any(content.get(key) for key in CARD_KEYS):
            for key in ("card_title", "card_body"):
                if not isinstance(content.get(key), str) or not content[key].strip():
                    problems.append(ContentProblem(key, "is empty (a card needs a title and text)"))
            title = content.get("card_title")
            if isinstance(title, str) and len(title) > cls.alt_text_max_chars:
                problems.append(
                    ContentProblem(
                        "card_title", f"is longer than {cls.alt_text_max_chars:,} characters"
                    )
                )
            if not _https(content.get("link")):
                problems.append(ContentProblem("link", "must be an https:// URL"))
            if "card_image_url" in content and not _https(content["card_image_url"]):
                problems.append(ContentProblem("card_image_url", "must be an https:// URL"))
            button = content.get("card_button", DEFAULT_BUTTON)
            if not isinstance(button, str) or not 1 <= len(button) <= cls.button_max_chars:
                problems.append(
                    ContentProblem("card_button", f"must be 1 to {cls.button_max_chars} characters")
                )
        target = content.get("target", "broadcast")
        if target not in TARGETS:
            problems.append(ContentProblem("target", f"must be one of {', '.join(TARGETS)}"))
        audience = content.get("audience_group_id")
        if target == "narrowcast" and (not isinstance(audience, int) or isinstance(audience, bool)):
            problems.append(
                ContentProblem("audience_group_id", "a narrowcast needs its audience's id")
            )
        return problems


#: The keys whose presence makes a card (a button label alone does not).
CARD_KEYS = ("card_title", "card_body", "link", "card_image_url")


def card_of(content: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card the content's ``card_*`` keys and ``link`` describe, or None."""
    if not any(content.get(key) for key in CARD_KEYS):
        return None
    card = {
        "title": content["card_title"],
        "body": content["card_body"],
        "link": content["link"],
        "button": content.get("card_button") or DEFAULT_BUTTON,
    }
    if content.get("card_image_url"):
        card["image_url"] = content["card_image_url"]
    return card


def flex_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """A Flex bubble (as JSON) of ``card``: hero image, bold title, wrapped body, one button
    opening the tracked link (/docs/messaging-api/flex-message-elements/)."""
    bubble: dict[str, Any] = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "md",
            "contents": [
                {
                    "type": "text",
                    "text": card["title"],
                    "weight": "bold",
                    "size": "lg",
                    "wrap": True,
                },
                {"type": "text", "text": card["body"], "size": "sm", "wrap": True},
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {
                        "type": "uri",
                        "label": card.get("button", DEFAULT_BUTTON),
                        "uri": card["link"],
                    },
                }
            ],
        },
    }
    if card.get("image_url"):
        bubble["hero"] = {
            "type": "image",
            "url": card["image_url"],
            "size": "full",
            "aspectRatio": "20:13",
            "aspectMode": "cover",
            "action": {"type": "uri", "uri": card["link"]},
        }
    return bubble


def build_messages(content: Mapping[str, Any]) -> list[line_messaging.Message]:
    """The SDK's message objects of ``content``: text, then image, then the Flex card."""
    messages: list[line_messaging.Message] = [line_messaging.TextMessage(text=content["text"])]
    if content.get("image_url"):
        messages.append(
            line_messaging.ImageMessage(
                original_content_url=content["image_url"],
                preview_image_url=content.get("preview_url") or content["image_url"],
            )
        )
    card = card_of(content)
    if card:
        messages.append(
            line_messaging.FlexMessage(
                alt_text=card["title"],
                contents=line_messaging.FlexContainer.from_dict(flex_card(card)),
            )
        )
    return messages


def batches(user_ids: Sequence[str], size: int) -> list[list[str]]:
    """``user_ids`` without repeats, sorted (the same list gives the same batches on every
    retry, so each batch keeps its retry key), in lists of at most ``size``."""
    unique = sorted(set(user_ids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


@dataclass(frozen=True)
class LineFailure:
    """An error answer of the Messaging API (/reference/messaging-api/#error-responses)."""

    status: int
    message: str
    request_id: str | None = None
    accepted_request_id: str | None = None


def parse_failure(status: int, body: Any, headers: Mapping[str, str] | None) -> LineFailure:
    """The failure of an error answer: ``{"message", "details": [{"message", "property"}]}``."""
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    message = text.strip()[:300] or f"HTTP {status}"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"]
        details = [
            f"{d.get('property')}: {d.get('message')}"
            for d in data.get("details") or []
            if isinstance(d, dict)
        ]
        if details:
            message += " (" + "; ".join(details) + ")"
    return LineFailure(
        status=status,
        message=message,
        request_id=lower.get("x-line-request-id"),
        accepted_request_id=lower.get("x-line-accepted-request-id"),
    )


MONTHLY_LIMIT_TEXT = "monthly limit"
DEFAULT_RATE_LIMIT_WAIT = 60.0


def classify(failure: LineFailure, *, action: str, now: datetime) -> ChannelError:
    """The :mod:`channels.errors` error for ``failure`` of ``action``."""
    text = f"LINE refused {action}: {failure.message}"
    if failure.status == 401:
        return AuthExpired(text, code="line:token", hint=RECONNECT_HINT)
    if failure.status == 403:
        return AuthExpired(
            text,
            code="line:permission",
            hint="the channel's plan or permissions do not allow this; check the LINE "
            "Official Account Manager",
        )
    if failure.status == 429 and MONTHLY_LIMIT_TEXT in failure.message.lower():
        reset = next_month(now)
        return QuotaExhausted(
            text,
            code="line:monthly-quota",
            hint=f"the account's monthly message quota is spent; it renews on "
            f"{reset.astimezone(LINE_ZONE):%Y-%m-%d} (UTC+9) and the post is sent then",
            retry_after=max((reset - now).total_seconds(), 0.0),
        )
    if failure.status == 429:
        return RateLimited(
            text,
            code="line:rate-limit",
            hint="LINE asks us to slow down; tried again later",
            retry_after=DEFAULT_RATE_LIMIT_WAIT,
        )
    if failure.status >= 500:
        return TransientError(
            text, code="line:server", hint="LINE had a problem; tried again later"
        )
    return PermanentError(
        text,
        code="line:refused",
        hint="fix what LINE's message names (in the campaign or the account); the same "
        "request will not be sent again",
    )


@dataclass(frozen=True)
class MessageQuota:
    """An account's monthly message quota (``limit`` None: unlimited) and what it used."""

    limit: int | None
    used: int

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class BotProfile:
    """Who a channel access token acts for (``/v2/bot/info``): the bot's user id, its
    basic id (``@...``) and the Official Account's display name."""

    user_id: str
    basic_id: str
    display_name: str


def _never_sent(exc: BaseException) -> bool:
    """Whether ``exc`` failed before the request could reach LINE (no connection)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        exc = exc.reason or exc
    return isinstance(
        exc,
        (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
            ConnectionRefusedError,
        ),
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LineAdapter(LineLimits, Publisher):
    """Sends a post to a LINE Official Account's friends (broadcast), an audience
    (narrowcast) or our subscribers (multicast), exactly once through LINE's retry key, and
    reads back how it did."""

    def __init__(
        self,
        *,
        api_url: str = "https://api.line.me",
        timeout: float = 30.0,
        hourly: TokenBucket | None = None,
        hourly_limit: int = 60,
        subscribers: Callable[[Account], Sequence[str]] | None = None,
        immediate_retries: int = 2,
        retry_key_window: timedelta = timedelta(hours=23),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``hourly``: the bucket that spaces broadcasts and narrowcasts (``hourly_limit``
        an hour, per account and kind); ``subscribers``: the LINE user ids of an account's
        consenting subscribers (for ``target: subscribers``); ``immediate_retries``: how many
        times a send whose answer was lost is repeated at once with its key;
        ``retry_key_window``: how long after an attempt LINE is trusted to deduplicate a
        repeat (its keys live 24 hours; the rest is margin)."""
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.hourly = hourly or MemoryTokenBucket(rate=hourly_limit / 3600, capacity=hourly_limit)
        self.subscribers = subscribers
        self.immediate_retries = immediate_retries
        self.retry_key_window = retry_key_window
        self.clock = clock

    # -- plumbing

    def _token(self, account: Account) -> str:
        if account.token is None or not account.token.get_secret_value():
            raise AuthExpired(
                f"LINE account {account.display_name} ({account.external_id}) has no token",
                code="line:no-token",
                hint="connect the account: store its channel access token, then try again",
            )
        return account.token.get_secret_value()

    @contextmanager
    def _messaging(self, account: Account) -> Iterator[line_messaging.MessagingApi]:
        config = line_messaging.Configuration(host=self.api_url, access_token=self._token(account))
        with line_messaging.ApiClient(config) as client:
            yield line_messaging.MessagingApi(client)

    @contextmanager
    def _insight(self, account: Account) -> Iterator[line_insight.Insight]:
        config = line_insight.Configuration(host=self.api_url, access_token=self._token(account))
        with line_insight.ApiClient(config) as client:
            yield line_insight.Insight(client)

    @contextmanager
    def _audience(self, account: Account) -> Iterator[ManageAudience]:
        config = line_audience.Configuration(host=self.api_url, access_token=self._token(account))
        with line_audience.ApiClient(config) as client:
            yield line_audience.ManageAudience(client)

    def _failure(self, exc: BaseException, action: str) -> LineFailure:
        status = int(getattr(exc, "status", 0) or 0)
        return parse_failure(status, getattr(exc, "body", None), getattr(exc, "headers", None))

    def _read(self, action: str, call: Callable[[], Any]) -> Any:
        """Run a read-only call, translating what goes wrong (reads may be retried freely)."""
        try:
            return call()
        except _api_errors() as exc:
            raise classify(self._failure(exc, action), action=action, now=self.clock()) from exc
        except _NETWORK_ERRORS as exc:
            raise TransientError(
                f"LINE did not answer {action}: {type(exc).__name__}",
                code="line:network",
                hint="the network or LINE is down; tried again later",
            ) from exc

    # -- limits

    def quota(self, account: Account) -> MessageQuota:
        """The account's monthly message quota and what it has used (to show staff)."""
        with self._messaging(account) as api:
            quota = self._read(
                "the message quota", lambda: api.get_message_quota(_request_timeout=self.timeout)
            )
            used = self._read(
                "the quota consumption",
                lambda: api.get_message_quota_consumption(_request_timeout=self.timeout),
            )
        limited = str(getattr(quota.type, "value", quota.type)) == "limited"
        limit = int(quota.value) if limited and quota.value is not None else None
        return MessageQuota(limit=limit, used=int(used.total_usage or 0))

    def quota_left(self, account: Account) -> int | None:
        """Messages the account may still send this month (None: no monthly limit)."""
        return self.quota(account).left

    def _recipients(self, post: OutgoingPost, target: str) -> tuple[int, list[list[str]]]:
        """How many messages the send costs, and a multicast's batches."""
        account = post.account
        if target == "subscribers":
            if self.subscribers is None:
                raise PermanentError(
                    "this service has no list of LINE subscribers to send to",
                    code="line:no-subscribers",
                    hint="send to all friends (target: broadcast) or an audience instead",
                )
            groups = batches(self.subscribers(account), self.multicast_max_ids)
            return sum(len(g) for g in groups), groups
        if target == "narrowcast":
            audience_id = int(post.content["audience_group_id"])
            with self._audience(account) as api:
                data = self._read(
                    "the audience",
                    lambda: api.get_audience_data(audience_id, _request_timeout=self.timeout),
                )
            group = data.audience_group
            size = int(group.audience_count or 0) if group else 0
            if size < self.narrowcast_min_audience:
                # LINE would accept it and then fail it (progress errorCode 4), delivering
                # nothing: refuse now, with the reason.
                raise PermanentError(
                    f"audience {audience_id} has {size} people; LINE narrowcasts only to "
                    f"audiences of {self.narrowcast_min_audience} or more",
                    code="line:audience-too-small",
                    hint="choose a bigger audience, or send to all friends",
                )
            return size, []
        return self.friends(account) or 0, []

    def _check_quota(
        self, post: OutgoingPost, cost: int
    ) -> tuple[int | None, QuotaExhausted | None]:
        """The messages left this month, and the wait a send of ``cost`` messages meets
        (None if the quota allows it)."""
        left = self.quota_left(post.account)
        if left is None or cost <= left:
            return left, None
        now = self.clock()
        reset = next_month(now)
        return left, QuotaExhausted(
            f"LINE account {post.account.external_id} has {left:,} messages left this month; "
            f"this post needs {cost:,}",
            code="line:monthly-quota",
            hint=f"the post waits for the quota to renew on {reset.astimezone(LINE_ZONE):%Y-%m-%d} "
            "(UTC+9), or for a bigger plan in the LINE Official Account Manager",
            retry_after=max((reset - now).total_seconds(), 0.0),
        )

    def _take_hourly(self, account: Account, target: str) -> None:
        if target not in self.hourly_limited:
            return
        wait = self.hourly.acquire(f"line:{account.external_id}:{target}")
        if wait > 0:
            raise RateLimited(
                f"LINE allows 60 {target}s an hour per account; account {account.external_id} "
                "has used them",
                code="line:hourly-limit",
                hint=f"nothing to fix: the post is sent in about {max(wait / 60, 1):.0f} minutes",
                retry_after=wait,
            )

    # -- sending

    def _send_once(
        self, post: OutgoingPost, target: str, key: str, to: list[str] | None
    ) -> tuple[str, bool]:
        """Send one request with retry key ``key``: (its request id, whether LINE had
        accepted it before).  A lost answer is repeated at once with the same key."""
        messages = build_messages(post.content)
        last: BaseException | None = None
        uncertain = False  # some attempt may have reached LINE
        for _ in range(self.immediate_retries + 1):
            try:
                with self._messaging(post.account) as api:
                    if target == "broadcast":
                        answer = api.broadcast_with_http_info(
                            line_messaging.BroadcastRequest(messages=messages),
                            x_line_retry_key=key,
                            _request_timeout=self.timeout,
                        )
                    elif target == "narrowcast":
                        recipient = line_messaging.AudienceRecipient(
                            audience_group_id=int(post.content["audience_group_id"])
                        )
                        answer = api.narrowcast_with_http_info(
                            line_messaging.NarrowcastRequest(
                                messages=messages, recipient=recipient
                            ),
                            x_line_retry_key=key,
                            _request_timeout=self.timeout,
                        )
                    else:
                        answer = api.multicast_with_http_info(
                            line_messaging.MulticastRequest(to=to or [], messages=messages),
                            x_line_retry_key=key,
                            _request_timeout=self.timeout,
                        )
            except line_messaging.ApiException as exc:
                failure = self._failure(exc, target)
                if failure.status == 409 and failure.accepted_request_id:
                    return failure.accepted_request_id, True
                if failure.status >= 500:
                    last, uncertain = exc, True  # may have been accepted: the key makes
                    continue  # a repeat safe
                raise classify(failure, action=f"the {target}", now=self.clock()) from exc
            except _NETWORK_ERRORS as exc:
                last, uncertain = exc, uncertain or not _never_sent(exc)
                continue
            headers = {str(k).lower(): str(v) for k, v in (answer.headers or {}).items()}
            request_id = headers.get("x-line-request-id")
            if not request_id:
                raise OutcomeUnknown(
                    f"LINE accepted the {target} but named no request id",
                    code="line:no-request-id",
                    hint="do not send again: reconcile first",
                )
            return request_id, False
        if isinstance(last, line_messaging.ApiException):
            failure = self._failure(last, target)
            raise TransientError(
                f"LINE failed the {target} {self.immediate_retries + 1} times: {failure.message}",
                code="line:server",
                hint="LINE had a problem; sent again later with the same retry key (no duplicate)",
            ) from last
        if not uncertain:
            raise TransientError(
                f"could not reach LINE for the {target} ({type(last).__name__})",
                code="line:unreachable",
                hint="nothing was sent; check the network and the Messaging API URL",
            ) from last
        raise OutcomeUnknown(
            f"LINE did not answer the {target} ({type(last).__name__}); it may have been accepted",
            code="line:no-answer",
            hint="sent again with the same retry key, LINE answers whether it was accepted",
        ) from last

    def publish(self, post: OutgoingPost) -> Receipt:
        """Send ``post`` to its target and return its receipt (the request id)."""
        problems = self.content_problems(post.content)
        if problems:
            raise PermanentError(
                "the LINE message breaks LINE's rules: "
                + "; ".join(f"{p.field} {p.message}" for p in problems),
                code="line:invalid-content",
                hint="fix the campaign's LINE block and plan again",
            )
        target = str(post.content.get("target", "broadcast"))
        cost, groups = self._recipients(post, target)
        if target == "subscribers" and not groups:
            raise PermanentError(
                "no subscriber of this account has linked a LINE user id",
                code="line:no-recipients",
                hint="nothing was sent; ask subscribers to link LINE, or send to all friends",
            )
        left, refusal = self._check_quota(post, cost)
        self._take_hourly(post.account, target)
        if target != "subscribers":
            try:
                request_id, earlier = self._send_once(post, target, retry_key(post.marker), None)
            except QuotaExhausted as exc:
                raise (refusal or exc) from exc
            return self._receipt(target, [request_id], [earlier], cost)
        if refusal is not None and left is not None and left >= len(groups[0]):
            # LINE could take the first batch and not the rest: do not start a multicast
            # that cannot finish.  (With fewer messages left than one batch, sending it
            # can only be refused -- or answered 409 if an earlier attempt was accepted.)
            raise refusal
        return self._multicast(post, groups, cost, refusal)

    def notify(
        self, account: Account, user_ids: Sequence[str], text: str, *, marker: str
    ) -> Receipt:
        """Send ``text`` to staff who linked LINE (``user_ids``) through ``account``, the
        programme's OA: multicast in 500s under retry keys from ``marker`` (the
        notification's own id), so a repeated notification is not delivered twice."""
        groups = batches(user_ids, self.multicast_max_ids)
        if not groups:
            raise PermanentError(
                "no one to notify on LINE", code="line:no-recipients", hint="nothing was sent"
            )
        notice = OutgoingPost(marker=marker, account=account, content={"text": text})
        problems = self.content_problems(notice.content)
        if problems:
            raise PermanentError(
                f"the notification breaks LINE's rules: {problems[0].field} {problems[0].message}",
                code="line:invalid-content",
                hint="shorten the notification",
            )
        cost = sum(len(g) for g in groups)
        left, refusal = self._check_quota(notice, cost)
        if refusal is not None and left is not None and left >= len(groups[0]):
            raise refusal
        return self._multicast(notice, groups, cost, refusal)

    def create_audience(self, account: Account, description: str, user_ids: Sequence[str]) -> int:
        """A new upload audience of ``user_ids`` (at most 10,000) named ``description``, for
        narrowcasts: its id.  Not idempotent (LINE has no retry key for it): call it once
        and keep the id."""
        unique = list(dict.fromkeys(user_ids))
        if not 1 <= len(description) <= 120 or len(unique) > self.audience_max_ids:
            raise PermanentError(
                f"an audience needs a name of 1 to 120 characters and at most "
                f"{self.audience_max_ids:,} user ids (got {len(unique):,})",
                code="line:audience",
                hint="split the audience or shorten its name",
            )
        request = line_audience.CreateAudienceGroupRequest(
            description=description,
            is_ifa_audience=False,
            audiences=[line_audience.Audience(id=u) for u in unique],
        )
        with self._audience(account) as api:
            created = self._read(
                "creating the audience",
                lambda: api.create_audience_group(request, _request_timeout=self.timeout),
            )
        return int(created.audience_group_id)

    def _multicast(
        self, post: OutgoingPost, groups: list[list[str]], cost: int, refusal: QuotaExhausted | None
    ) -> Receipt:
        ids: list[str] = []
        earlier: list[bool] = []
        for number, group in enumerate(groups):
            try:
                request_id, before = self._send_once(
                    post, "subscribers", retry_key(post.marker, number), group
                )
            except ChannelError as exc:
                if not ids:
                    raise ((refusal or exc) if isinstance(exc, QuotaExhausted) else exc) from exc
                # Some batches went out: never resend them blindly; a person decides.
                raise PermanentError(
                    f"LINE accepted {len(ids)} of {len(groups)} batches of this multicast, then "
                    f"refused: {exc.message}",
                    code="line:partial-multicast",
                    hint=f"request ids of the batches sent: {', '.join(ids)}; the rest were not "
                    "sent -- send them as a new post if needed",
                ) from exc
            ids.append(request_id)
            earlier.append(before)
        return self._receipt("subscribers", ids, earlier, cost)

    def _receipt(self, target: str, ids: list[str], earlier: list[bool], cost: int) -> Receipt:
        return Receipt(
            external_id=ids[0],
            permalink=None,
            published_at=self.clock(),
            raw={
                "target": target,
                "request_ids": ids,
                "accepted_earlier": earlier,
                "recipients": cost,
            },
        )

    def find_published(self, post: OutgoingPost, *, since: datetime) -> Receipt | None:
        """LINE cannot list what was sent; it deduplicates instead.  While a repeat with
        the post's retry key is still caught (``retry_key_window`` after ``since``), "none"
        is safe: publishing again answers 409 with the accepted request id if it was sent.
        After that, the outcome cannot be told and a person must check."""
        if self.clock() - since < self.retry_key_window:
            return None
        raise PermanentError(
            f"cannot tell whether LINE accepted post {post.marker}: its retry key has expired",
            code="line:reconcile-expired",
            hint="look for the message in the LINE Official Account Manager; mark the post "
            "published or cancel it -- sending again could deliver it twice",
        )

    # -- reading

    def bot_profile(self, account: Account) -> BotProfile:
        """Who ``account``'s token acts for (``GET /v2/bot/info``); an invalid token raises
        :class:`AuthExpired` (``line:token``)."""
        with self._messaging(account) as api:
            info = self._read(
                "the bot's profile", lambda: api.get_bot_info(_request_timeout=self.timeout)
            )
        return BotProfile(
            user_id=str(info.user_id),
            basic_id=str(info.basic_id),
            display_name=str(info.display_name),
        )

    def check_account(self, account: Account) -> None:
        """The token works and acts for ``account`` (its bot user id or ``@basic`` id)."""
        info = self.bot_profile(account)
        expected = account.external_id
        if expected not in (info.user_id, info.basic_id):
            raise AuthExpired(
                f"the token of LINE account {expected} acts for {info.basic_id} "
                f"({info.display_name})",
                code="line:wrong-channel",
                hint=RECONNECT_HINT,
            )

    def friends(self, account: Account, *, day: datetime | None = None) -> int | None:
        """Friends who can receive messages (followers less blocks) on ``day`` (default:
        yesterday in UTC+9, the latest LINE has counted); None when LINE has not counted it."""
        moment = day or (self.clock() - timedelta(days=1))
        date = moment.astimezone(LINE_ZONE).strftime("%Y%m%d")
        with self._insight(account) as api:
            answer = self._read(
                "the number of friends",
                lambda: api.get_number_of_followers(var_date=date, _request_timeout=self.timeout),
            )
        if answer.status != "ready" or answer.followers is None:
            return None
        return max(int(answer.followers) - int(answer.blocks or 0), 0)

    def fetch_metrics(self, account: Account, external_ids: Sequence[str]) -> list[Metrics]:
        """Delivered, unique impressions (``views``) and unique clicks (``clicks``) of each
        broadcast or narrowcast request; LINE's 400 for other requests leaves them out."""
        found: list[Metrics] = []
        with self._insight(account) as api:
            for request_id in dict.fromkeys(external_ids):
                try:
                    event = api.get_message_event(request_id, _request_timeout=self.timeout)
                except line_insight.ApiException as exc:
                    failure = self._failure(exc, "message statistics")
                    if failure.status in (400, 404):
                        continue
                    raise classify(failure, action="message statistics", now=self.clock()) from exc
                except _NETWORK_ERRORS as exc:
                    raise TransientError(
                        f"LINE did not answer message statistics: {type(exc).__name__}",
                        code="line:network",
                        hint="the network or LINE is down; tried again later",
                    ) from exc
                overview = event.overview
                if overview is None:
                    continue
                found.append(
                    Metrics(
                        external_id=request_id,
                        collected_at=self.clock(),
                        views=overview.unique_impression,
                        clicks=overview.unique_click,
                        raw={"delivered": overview.delivered},
                    )
                )
        return found


def line_adapter(
    settings: LineSettings,
    *,
    hourly: TokenBucket | None = None,
    subscribers: Callable[[Account], Sequence[str]] | None = None,
) -> LineAdapter:
    """The adapter built from ``settings`` (values): broadcasts and narrowcasts spaced by
    ``hourly`` (default: a bucket in Redis when the service has one, so every worker draws
    from it, else in this process's memory)."""
    if hourly is None and settings.effective_redis_url:
        import redis

        hourly = RedisTokenBucket(
            redis.Redis.from_url(settings.effective_redis_url),
            rate=settings.line_hourly_limit / 3600,
            capacity=settings.line_hourly_limit,
            prefix="marketing:line-hourly:",
        )
    return LineAdapter(
        api_url=settings.line_api_url,
        timeout=settings.line_timeout,
        hourly=hourly,
        hourly_limit=settings.line_hourly_limit,
        subscribers=subscribers,
    )


# -- the channel as a unit ------------------------------------------------------------------

#: A bot's user id (``U`` and 32 hex digits) or its basic id (``@`` and letters, digits,
#: ``-``, ``_``, ``.``): what a LINE account's external id may be.
ACCOUNT_ID = re.compile(r"U[0-9a-f]{32}|@[0-9A-Za-z._-]{2,40}")


class LineIn(ChannelInput):
    """The ``line:`` block of a campaign file."""

    templates: ClassVar[tuple[str, ...]] = (
        "text",
        "image_url",
        "card_title",
        "card_body",
        "link",
        "card_image_url",
    )
    tracked_links: ClassVar[tuple[str, ...]] = ("link",)

    account: Text = "community"
    text: TemplateField
    image_url: TemplateField | None = None
    card_title: TemplateField | None = None
    card_body: TemplateField | None = None
    link: TemplateField | None = None
    card_button: Text | None = None
    card_image_url: TemplateField | None = None
    target: Target = "broadcast"
    audience: int | None = None

    def fixed(self) -> dict[str, Any]:
        values: dict[str, Any] = {"target": self.target}
        if self.card_button is not None:
            values["card_button"] = self.card_button
        if self.audience is not None:
            values["audience_group_id"] = self.audience
        return values

    def written_at(self) -> dict[str, str]:
        return {
            "target": "target",
            "card_button": "card_button",
            "audience_group_id": "audience",
        }

    @classmethod
    def account_problem(cls, external_id: str) -> str | None:
        if ACCOUNT_ID.fullmatch(external_id):
            return None
        return (
            f"{external_id!r} is not a LINE Official Account id: write the bot's user id "
            "(U and 32 hex digits) or its basic id (@...)"
        )


def _build(settings: LineSettings, services: ChannelServices) -> LineAdapter:
    return line_adapter(settings, subscribers=services.subscribers)


SPEC = ChannelSpec(
    kind=LineLimits.kind,
    label_th="ไลน์",
    label_en="LINE",
    colour="#06c755",
    utm_source="line",
    utm_medium="messaging",
    campaign_model=LineIn,
    limits=LineLimits,
    content=LineContent,
    capabilities=frozenset(
        {
            Capability.PUBLISH,
            Capability.METRICS,
            Capability.ACCOUNT_CHECK,
        }
    ),
    settings_model=LineSettings,
    factory=_build,
)
