"""A local LINE Messaging API server, speaking the paths ``line-bot-sdk`` (v3) calls, so the
SDK's own clients work against it with ``Configuration(host=sandbox.url)``.

It imports nothing from the LINE adapter: every limit, code and rule below is written here
from LINE's documentation, with the page it came from, so a mistake in the adapter cannot be
copied into the emulator that checks it.

=================================================  ==========================================
``POST /v2/bot/message/push``                       one user (``to``), up to 5 messages
``POST /v2/bot/message/multicast``                  up to 500 user ids (``to``), 5 messages
``POST /v2/bot/message/broadcast``                  every friend of the account
``POST /v2/bot/message/narrowcast``                 an audience (``recipient.audienceGroupId``)
                                                    or every friend; answers 202
``GET /v2/bot/message/progress/narrowcast``         ``?requestId=``: phase and counts
``GET /v2/bot/message/quota``                       ``{"type": "limited", "value": n}`` or
                                                    ``{"type": "none"}``
``GET /v2/bot/message/quota/consumption``           ``{"totalUsage": n}`` this month (UTC+9)
``GET /v2/bot/info``                                the bot's user id, basic id, display name
``GET /v2/bot/insight/message/event``               ``?requestId=`` of a broadcast or
                                                    narrowcast: delivered, unique impressions
                                                    and clicks
``GET /v2/bot/insight/followers``                   ``?date=yyyyMMdd`` (UTC+9): followers,
                                                    targeted reaches, blocks
``POST /v2/bot/audienceGroup/upload``               an audience from user ids (JSON)
``GET /v2/bot/audienceGroup/{id}``                  an audience and its size
=================================================  ==========================================

Sources: developers.line.biz/en/reference/messaging-api/ (each endpoint; "Rate limits";
"Status codes"; "Response headers": every answer carries ``x-line-request-id``; "Error
responses": ``{"message", "details": [{"message", "property"}]}``), /docs/messaging-api/
retrying-api-request/ (the retry key), /docs/messaging-api/pricing/ (messages are counted per
recipient, not per message object), /reference/messaging-api/#get-quota and
#get-consumption, /reference/messaging-api/#get-message-event,
/reference/messaging-api/#get-number-of-followers, /reference/messaging-api/#create-upload-
audience-group.

The retry key (``X-Line-Retry-Key``, /docs/messaging-api/retrying-api-request/): accepted only
on push, multicast, narrowcast and broadcast, any other endpoint answers 400 to it; it must
be a hexadecimal UUID (400 otherwise); a request whose key was already *accepted* within the
last 24 hours is not executed again but answered 409 with ``x-line-accepted-request-id``
naming the accepted request (a request refused with 4xx/5xx does not use up its key).

Limits (/reference/messaging-api/#rate-limits): broadcast and narrowcast 60 requests an hour
per channel (429 "The API rate limit has been exceeded. Try again later." after that).  The
monthly message quota of a ``limited`` account is counted per recipient in the current
month in UTC+9; a send that would go past it is refused with 429 "You have reached your
monthly limit." and delivers nothing.

Everything accepted is kept (:meth:`LineSandbox.accepted`) with its retry key, so a test can
count accepted requests per key.  Faults come from ``self.faults`` as in every sandbox:
``drop_after`` on a send accepts it (and its retry key) and loses the answer.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.sandbox.base import Fault, SandboxClock, SandboxHandler, SandboxServer, engagement

# developers.line.biz/en/reference/messaging-api/#send-multicast-message: "Max: 500 user IDs"
MULTICAST_MAX_IDS = 500
# .../#send-push-message and the others: "messages: Max: 5"
MAX_MESSAGES = 5
# .../#text-message: "Max character limit: 5000"
TEXT_MAX_CHARS = 5000
# .../#image-message: originalContentUrl and previewImageUrl, HTTPS, "Max character limit: 2000"
IMAGE_URL_MAX_CHARS = 2000
# .../#flex-message: "altText: Max character limit: 1500"
FLEX_ALT_TEXT_MAX_CHARS = 1500
# .../#get-narrowcast-progress-status: errorCode 4, "An audience of less than 50 recipients
# is included as a condition of sending": the narrowcast is accepted, then fails.
NARROWCAST_MIN_AUDIENCE = 50
# .../#create-upload-audience-group: "audiences: Max: 10,000" user ids a JSON request
AUDIENCE_MAX_IDS = 10_000
# .../#rate-limits: "Send narrowcast message" and "Send broadcast message": 60 requests per hour
HOURLY_LIMITS: dict[str, int] = {"broadcast": 60, "narrowcast": 60}
# /docs/messaging-api/retrying-api-request/: "The retry key is valid for 24 hours after
# attempting the first request."
RETRY_KEY_LIFETIME = timedelta(hours=24)
# Dates of the insight and quota endpoints are in UTC+9 (.../#get-number-of-followers:
# "Timezone: UTC+9"); the monthly quota runs by the same calendar.
LINE_ZONE = timezone(timedelta(hours=9))

SEND_PATHS: dict[str, str] = {
    "/v2/bot/message/push": "push",
    "/v2/bot/message/multicast": "multicast",
    "/v2/bot/message/broadcast": "broadcast",
    "/v2/bot/message/narrowcast": "narrowcast",
}
USER_ID = re.compile(r"^U[0-9a-f]{32}$")
# "a hexadecimal UUID": the canonical 8-4-4-4-12 form.
RETRY_KEY = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
MONTHLY_LIMIT = "You have reached your monthly limit."
RETRY_KEY_ACCEPTED = "The retry key is already accepted"


def line_error(message: str, details: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """An error body (/reference/messaging-api/#error-responses): ``message`` and, when there
    are any, ``details`` of ``{"message", "property"}``."""
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = [{"message": m, "property": p} for m, p in details]
    return body


def error_fault(
    status: int,
    message: str,
    *,
    method: str = "*",
    path: str = "",
    times: int | None = 1,
    headers: dict[str, str] | None = None,
) -> Fault:
    """A :class:`Fault` that answers ``status`` with LINE's error body."""
    return Fault(
        "error",
        method=method,
        path=path,
        status=status,
        body=line_error(message),
        headers={"x-line-request-id": str(uuid.uuid4()), **(headers or {})},
        times=times,
    )


@dataclass(frozen=True)
class Accepted:
    """One send the sandbox accepted (and so delivered)."""

    request_id: str
    channel: str  # the bot's user id
    kind: str  # push, multicast, broadcast, narrowcast
    retry_key: str | None
    messages: list[dict[str, Any]]
    recipients: list[str]  # the friends it reached
    accepted_at: datetime
    audience_group_id: int | None = None
    failed_code: int | None = None  # a narrowcast that failed after it was accepted
    target_count: int = 0


@dataclass
class Audience:
    audience_group_id: int
    description: str
    user_ids: list[str]
    created: datetime


@dataclass
class LineChannel:
    """One LINE Official Account's Messaging API channel."""

    token: str
    user_id: str
    basic_id: str
    display_name: str
    friends: list[str]
    quota: int | None  # None: type "none" (no monthly limit)
    blocks: int = 0
    picture_url: str | None = None
    retry_keys: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)  # "yyyy-mm" (UTC+9) -> messages
    recent: dict[str, deque[datetime]] = field(default_factory=dict)  # endpoint -> times
    audiences: dict[int, Audience] = field(default_factory=dict)


def month_of(moment: datetime) -> str:
    """The quota month ``moment`` falls in, by LINE's calendar (UTC+9)."""
    return moment.astimezone(LINE_ZONE).strftime("%Y-%m")


class ApiRefusal(Exception):
    def __init__(self, status: int, message: str, details: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.body = line_error(message, details)
        self.headers: dict[str, str] = {}


class LineHandler(SandboxHandler):
    sandbox: LineSandbox

    def route(self) -> None:
        request_id = self.sandbox.new_request_id()
        try:
            status, payload, headers = self.sandbox.handle(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self._read_body,
                request_id,
            )
        except ApiRefusal as refusal:
            status, payload, headers = refusal.status, refusal.body, refusal.headers
            with self.sandbox.lock:
                self.sandbox.refused.append((self.path, status, str(refusal)))
        self.send_json(status, payload, {"x-line-request-id": request_id, **headers})


class LineSandbox(SandboxServer):
    """The Messaging API of any number of channels, each known by its access token."""

    handler_class = LineHandler

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: SandboxClock | None = None,
        hourly_limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, clock=clock)
        self.hourly_limits = dict(HOURLY_LIMITS if hourly_limits is None else hourly_limits)
        self._channels: dict[str, LineChannel] = {}  # by token
        self._accepted: list[Accepted] = []
        self._random = random.Random(seed)
        self._next_audience = 4_000_000_001
        self.refused: list[tuple[str, int, str]] = []  # (path, status, message)

    # -- set-up, for tests and the demo

    def register_channel(
        self,
        token: str,
        *,
        basic_id: str | None = None,
        display_name: str,
        user_id: str | None = None,
        friends: int | list[str] = 0,
        quota: int | None = None,
        blocks: int = 0,
    ) -> LineChannel:
        """A channel acting with ``token``: its bot ``user_id`` and ``basic_id`` (made up when
        not given), ``friends`` user ids (or that many made up), a monthly ``quota`` (None:
        unlimited), ``blocks`` users blocking it."""
        with self.lock:
            ids = friends if isinstance(friends, list) else [self.user_id() for _ in range(friends)]
            channel = LineChannel(
                token=token,
                user_id=user_id or self.user_id(),
                basic_id=basic_id or f"@{len(self._channels) + 1:03d}sandbox",
                display_name=display_name,
                friends=list(ids),
                quota=quota,
                blocks=blocks,
            )
            self._channels[token] = channel
            return channel

    def user_id(self) -> str:
        """A new user id in LINE's form (``U`` and 32 hex digits)."""
        return f"U{self._random.getrandbits(128):032x}"

    def new_request_id(self) -> str:
        with self.lock:
            return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def revoke(self, token: str) -> None:
        """The token stops working (401), as when it is reissued or the channel deleted."""
        with self.lock:
            self._channels.pop(token, None)

    def set_usage(self, token: str, messages: int) -> None:
        """Say ``messages`` were already sent this month (by LINE's calendar)."""
        with self.lock:
            self._channels[token].usage[month_of(self.clock.now())] = messages

    def add_audience(self, token: str, description: str, user_ids: list[str]) -> int:
        with self.lock:
            return self._create_audience(
                self._channels[token], description, user_ids
            ).audience_group_id

    # -- what tests read

    def accepted(self, *, kind: str | None = None) -> list[Accepted]:
        with self.lock:
            return [a for a in self._accepted if kind is None or a.kind == kind]

    def count_by_retry_key(self, retry_key: str) -> int:
        """How many accepted sends carried ``retry_key`` (exactly-once: never above 1)."""
        with self.lock:
            return sum(1 for a in self._accepted if a.retry_key == retry_key)

    def channel(self, token: str) -> LineChannel:
        return self._channels[token]

    def state(self) -> dict[str, Any]:
        with self.lock:
            data = super().state()
            data["accepted"] = [
                {
                    "request_id": a.request_id,
                    "channel": a.channel,
                    "kind": a.kind,
                    "retry_key": a.retry_key,
                    "recipients": len(a.recipients),
                    "accepted_at": a.accepted_at.isoformat(),
                }
                for a in self._accepted
            ]
            return data

    # -- the API

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: dict[str, str],
        read_body: Any,
        request_id: str,
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = read_body()
        with self.lock:
            channel = self._authenticate(headers)
            retry_key = headers.get("x-line-retry-key")
            kind = SEND_PATHS.get(path) if method == "POST" else None
            if retry_key is not None and kind is None:
                raise ApiRefusal(400, "X-Line-Retry-Key is not supported by this endpoint")
            if kind is not None:
                return self._send(channel, kind, retry_key, body, request_id)
            if method == "GET" and path == "/v2/bot/info":
                return 200, self._bot_info(channel), {}
            if method == "GET" and path == "/v2/bot/message/quota":
                quota = (
                    {"type": "none"}
                    if channel.quota is None
                    else {"type": "limited", "value": channel.quota}
                )
                return 200, quota, {}
            if method == "GET" and path == "/v2/bot/message/quota/consumption":
                used = channel.usage.get(month_of(self.clock.now()), 0)
                return 200, {"totalUsage": used}, {}
            if method == "GET" and path == "/v2/bot/message/progress/narrowcast":
                return 200, self._progress(channel, query.get("requestId", "")), {}
            if method == "GET" and path == "/v2/bot/insight/message/event":
                return 200, self._message_event(channel, query.get("requestId", "")), {}
            if method == "GET" and path == "/v2/bot/insight/followers":
                return 200, self._followers(channel, query.get("date")), {}
            if method == "POST" and path == "/v2/bot/audienceGroup/upload":
                return 202, self._upload_audience(channel, body), {}
            match = re.fullmatch(r"/v2/bot/audienceGroup/(\d+)", path)
            if method == "GET" and match:
                return 200, self._audience(channel, int(match.group(1))), {}
            raise ApiRefusal(404, "Not found")

    def _authenticate(self, headers: dict[str, str]) -> LineChannel:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        channel = self._channels.get(token)
        if channel is None:
            raise ApiRefusal(401, AUTH_FAILED)
        return channel

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ApiRefusal(
                400, "The request body has 1 error(s)", [("Invalid JSON", "")]
            ) from None
        if not isinstance(data, dict):
            raise ApiRefusal(400, "The request body has 1 error(s)", [("must be an object", "")])
        return data

    def _send(
        self,
        channel: LineChannel,
        kind: str,
        retry_key: str | None,
        raw: bytes,
        request_id: str,
    ) -> tuple[int, Any, dict[str, str]]:
        now = self.clock.now()
        if retry_key is not None:
            if not RETRY_KEY.match(retry_key):
                raise ApiRefusal(400, "The value of the X-Line-Retry-Key header is invalid")
            known = channel.retry_keys.get(retry_key)
            if known is not None and now - known[1] < RETRY_KEY_LIFETIME:
                refusal = ApiRefusal(409, RETRY_KEY_ACCEPTED)
                refusal.headers["x-line-accepted-request-id"] = known[0]
                raise refusal
        body = self._json(raw)
        messages = self._messages(body.get("messages"))
        audience_id: int | None = None
        if kind == "push":
            to = body.get("to")
            if not isinstance(to, str) or not USER_ID.match(to):
                raise ApiRefusal(
                    400, "The request body has 1 error(s)", [("Invalid user ID", "to")]
                )
            targets = [to]
        elif kind == "multicast":
            to = body.get("to")
            if not isinstance(to, list) or not to:
                raise ApiRefusal(
                    400,
                    "The request body has 1 error(s)",
                    [("Size must be between 1 and 500", "to")],
                )
            if len(to) > MULTICAST_MAX_IDS:
                raise ApiRefusal(
                    400,
                    "The request body has 1 error(s)",
                    [(f"Size must be between 1 and {MULTICAST_MAX_IDS}", "to")],
                )
            for index, user in enumerate(to):
                if not isinstance(user, str) or not USER_ID.match(user):
                    raise ApiRefusal(
                        400,
                        "The request body has 1 error(s)",
                        [("Invalid user ID", f"to[{index}]")],
                    )
            targets = list(dict.fromkeys(to))
        elif kind == "broadcast":
            targets = list(channel.friends)
        else:
            recipient = body.get("recipient")
            if recipient is None:
                targets = list(channel.friends)
            elif isinstance(recipient, dict) and recipient.get("type") == "audience":
                audience = channel.audiences.get(recipient.get("audienceGroupId"))  # type: ignore[arg-type]
                if audience is None:
                    raise ApiRefusal(
                        400,
                        "The request body has 1 error(s)",
                        [("audience group not found", "recipient.audienceGroupId")],
                    )
                audience_id = audience.audience_group_id
                targets = list(audience.user_ids)
            else:
                raise ApiRefusal(
                    400,
                    "The request body has 1 error(s)",
                    [("only audience recipients are served by the sandbox", "recipient.type")],
                )
        # Rate limits count requests, as the reference's "requests per hour" says.
        limit = self.hourly_limits.get(kind)
        if limit is not None:
            recent = channel.recent.setdefault(kind, deque())
            while recent and now - recent[0] >= timedelta(hours=1):
                recent.popleft()
            if len(recent) >= limit:
                raise ApiRefusal(429, RATE_LIMITED)
            recent.append(now)
        friends = set(channel.friends)
        reached = [user for user in targets if user in friends]
        failed: int | None = None
        if audience_id is not None and len(targets) < NARROWCAST_MIN_AUDIENCE:
            failed, reached = 4, []
        month = month_of(now)
        used = channel.usage.get(month, 0)
        if channel.quota is not None and used + len(reached) > channel.quota:
            raise ApiRefusal(429, MONTHLY_LIMIT)
        channel.usage[month] = used + len(reached)
        if retry_key is not None:
            channel.retry_keys[retry_key] = (request_id, now)
        self._accepted.append(
            Accepted(
                request_id=request_id,
                channel=channel.user_id,
                kind=kind,
                retry_key=retry_key,
                messages=messages,
                recipients=reached,
                accepted_at=now,
                audience_group_id=audience_id,
                failed_code=failed,
                target_count=len(targets),
            )
        )
        if kind == "push":
            sent = [
                {"id": str(self._random.getrandbits(60)), "quoteToken": uuid.uuid4().hex}
                for _ in messages
            ]
            return 200, {"sentMessages": sent}, {}
        if kind == "narrowcast":
            return 202, {}, {}  # .../#send-narrowcast-message: "202 ... empty JSON object"
        return 200, {}, {}

    def _messages(self, messages: Any) -> list[dict[str, Any]]:
        if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
            raise ApiRefusal(
                400,
                "The request body has 1 error(s)",
                [(f"Size must be between 1 and {MAX_MESSAGES}", "messages")],
            )
        problems: list[tuple[str, str]] = []
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "text":
                text = message.get("text")
                if not isinstance(text, str) or not 1 <= len(text) <= TEXT_MAX_CHARS:
                    problems.append(
                        (f"Length must be between 1 and {TEXT_MAX_CHARS}", f"{where}.text")
                    )
            elif kind == "image":
                for key in ("originalContentUrl", "previewImageUrl"):
                    url = message.get(key)
                    if (
                        not isinstance(url, str)
                        or not url.startswith("https://")
                        or len(url) > IMAGE_URL_MAX_CHARS
                    ):
                        problems.append(
                            ("Must be an HTTPS URL of at most 2000 characters", f"{where}.{key}")
                        )
            elif kind == "flex":
                alt = message.get("altText")
                if not isinstance(alt, str) or not 1 <= len(alt) <= FLEX_ALT_TEXT_MAX_CHARS:
                    problems.append(
                        (
                            f"Length must be between 1 and {FLEX_ALT_TEXT_MAX_CHARS}",
                            f"{where}.altText",
                        )
                    )
                contents = message.get("contents")
                if not isinstance(contents, dict) or contents.get("type") not in (
                    "bubble",
                    "carousel",
                ):
                    problems.append(("must be a bubble or a carousel", f"{where}.contents"))
            else:
                problems.append(
                    (
                        "Unsupported message type (the sandbox serves text, image, flex)",
                        f"{where}.type",
                    )
                )
        if problems:
            raise ApiRefusal(400, f"The request body has {len(problems)} error(s)", problems)
        return list(messages)

    def _bot_info(self, channel: LineChannel) -> dict[str, Any]:
        info: dict[str, Any] = {
            "userId": channel.user_id,
            "basicId": channel.basic_id,
            "displayName": channel.display_name,
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }
        if channel.picture_url:
            info["pictureUrl"] = channel.picture_url
        return info

    def _find(self, channel: LineChannel, request_id: str) -> Accepted | None:
        for accepted in self._accepted:
            if accepted.request_id == request_id and accepted.channel == channel.user_id:
                return accepted
        return None

    def _progress(self, channel: LineChannel, request_id: str) -> dict[str, Any]:
        accepted = self._find(channel, request_id)
        if accepted is None or accepted.kind != "narrowcast":
            raise ApiRefusal(404, "Not found")
        stamp = (
            accepted.accepted_at.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        progress: dict[str, Any] = {
            "phase": "succeeded",
            "successCount": len(accepted.recipients),
            "failureCount": 0,
            "targetCount": accepted.target_count,
            "acceptedTime": stamp,
            "completedTime": stamp,
        }
        if accepted.failed_code is not None:
            progress.update(
                phase="failed",
                errorCode=accepted.failed_code,
                failedDescription="audience too small",
                failureCount=accepted.target_count,
            )
        return progress

    def _message_event(self, channel: LineChannel, request_id: str) -> dict[str, Any]:
        # .../#get-message-event: "requestId: Request ID of a narrowcast message or broadcast
        # message"; another request id is a bad request.
        accepted = self._find(channel, request_id)
        if accepted is None or accepted.kind not in ("broadcast", "narrowcast"):
            raise ApiRefusal(400, "The request ID is not of a narrowcast or broadcast message")
        reach = len(accepted.recipients)
        grown = engagement(
            self.seed, request_id, self.clock.now() - accepted.accepted_at, reach=reach
        )
        return {
            "overview": {
                "requestId": request_id,
                "timestamp": int(accepted.accepted_at.timestamp()),
                "delivered": reach,
                "uniqueImpression": min(grown["views"], reach),
                "uniqueClick": min(grown["clicks"], reach),
                "uniqueMediaPlayed": None,
                "uniqueMediaPlayed100Percent": None,
            },
            "messages": [],
            "clicks": [],
        }

    def _followers(self, channel: LineChannel, date: str | None) -> dict[str, Any]:
        # .../#get-number-of-followers: status "unready" until the day is counted (about a
        # day), "out_of_service" before 2016-11-01.
        if not date or not re.fullmatch(r"\d{8}", date):
            raise ApiRefusal(400, "The request has 1 error(s)", [("must be yyyyMMdd", "date")])
        day = datetime.strptime(date, "%Y%m%d").date()
        today = self.clock.now().astimezone(LINE_ZONE).date()
        if day < datetime(2016, 11, 1).date():
            return {"status": "out_of_service"}
        if day >= today:
            return {"status": "unready"}
        return {
            "status": "ready",
            "followers": len(channel.friends) + channel.blocks,
            "targetedReaches": len(channel.friends),
            "blocks": channel.blocks,
        }

    def _create_audience(
        self, channel: LineChannel, description: str, user_ids: list[str]
    ) -> Audience:
        audience = Audience(
            self._next_audience, description, list(dict.fromkeys(user_ids)), self.clock.now()
        )
        self._next_audience += 1
        channel.audiences[audience.audience_group_id] = audience
        return audience

    def _upload_audience(self, channel: LineChannel, raw: bytes) -> dict[str, Any]:
        body = self._json(raw)
        description = body.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 120:
            raise ApiRefusal(
                400,
                "The request body has 1 error(s)",
                [("Length must be between 1 and 120", "description")],
            )
        ids = [a.get("id") for a in body.get("audiences") or [] if isinstance(a, dict)]
        if len(ids) > AUDIENCE_MAX_IDS:
            raise ApiRefusal(
                400,
                "The request body has 1 error(s)",
                [(f"Size must be between 0 and {AUDIENCE_MAX_IDS}", "audiences")],
            )
        audience = self._create_audience(
            channel, description, [i for i in ids if isinstance(i, str)]
        )
        return {
            "audienceGroupId": audience.audience_group_id,
            "createRoute": "MESSAGING_API",
            "type": "UPLOAD",
            "description": description,
            "created": int(audience.created.timestamp()),
            "permission": "READ_WRITE",
            "isIfaAudience": False,
        }

    def _audience(self, channel: LineChannel, audience_id: int) -> dict[str, Any]:
        audience = channel.audiences.get(audience_id)
        if audience is None:
            raise ApiRefusal(400, "audience group not found")
        return {
            "audienceGroup": {
                "audienceGroupId": audience.audience_group_id,
                "type": "UPLOAD",
                "description": audience.description,
                "status": "READY",
                "audienceCount": len(audience.user_ids),
                "created": int(audience.created.timestamp()),
                "permission": "READ_WRITE",
                "isIfaAudience": False,
                "createRoute": "MESSAGING_API",
            },
            "jobs": [],
        }
