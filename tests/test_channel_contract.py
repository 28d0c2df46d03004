"""The channel contract, parametrised over the registry: every registered channel's adapter,
built by its spec from settings values, against its own sandbox over real HTTP/SMTP --
publishes (or sends), finds an earlier publication again, reads metrics, checks its account,
and raises each class of :mod:`channels.errors` with a code of its own (``<channel>:...``).

A new channel adds its :class:`Harness` here (how to start its sandbox, an account, content
and how to provoke each error); the first test fails until it does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from channels import registry
from channels.base import (
    Account,
    BulkSender,
    Capability,
    ChannelServices,
    ChannelSpec,
    OutgoingPost,
    Publisher,
    Recipient,
)
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from channels.quota import InMemoryQuotaLedger
from channels.sandbox.base import Fault
from channels.sandbox.graph import GraphSandbox
from channels.sandbox.graph import error_fault as graph_error
from channels.sandbox.line import LineSandbox
from channels.sandbox.line import error_fault as line_error
from channels.sandbox.smtp import SmtpFault, SmtpSandbox
from channels.sandbox.youtube import YouTubeSandbox
from channels.sandbox.youtube import error_fault as google_error

THAI = "ผ้าทอมือบ้านดอยเงิน จังหวัดน่าน สั่งซื้อได้ที่ศูนย์ชุมชน"
MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
Provoke = Callable[[], Any]


class Harness:
    """One channel's sandbox, started, with the adapter its spec builds pointed at it."""

    kind: ClassVar[str]
    #: The error classes this channel's adapter raises (and :meth:`provoke` can cause).
    errors: ClassVar[tuple[type[ChannelError], ...]]

    def __init__(self, spec: ChannelSpec, stack: ExitStack, tmp: Path) -> None:
        self.spec, self.stack, self.tmp = spec, stack, tmp

    def build(self, **settings: Any) -> Any:
        """The adapter as the workers build it: the spec, from settings values."""
        return self.spec.build(self.spec.settings_model(**settings), self.services())

    def services(self) -> ChannelServices:
        return ChannelServices(quota_ledger=InMemoryQuotaLedger)

    def post(self, marker: str) -> OutgoingPost:
        return OutgoingPost(marker=marker, account=self.account, content=self.content())

    # each channel: the adapter, its account and content, and each error on demand
    adapter: Any
    account: Account

    def content(self) -> dict[str, Any]:
        raise NotImplementedError

    def expire(self) -> None:
        """Make the account's token stop working."""
        raise NotImplementedError

    def provoke(self, error: type[ChannelError]) -> Provoke:
        """Arrange for ``error``; return the call that raises it."""
        raise NotImplementedError

    def delivered(self) -> int:
        """How many messages the sandbox holds (channels that send to many)."""
        raise NotImplementedError


class FacebookHarness(Harness):
    kind = "facebook"
    errors = (TransientError, RateLimited, AuthExpired, PermanentError, OutcomeUnknown)
    PAGE, TOKEN = "104857600001", "EAAGpagetokenCONTRACT01"

    def __init__(self, spec: ChannelSpec, stack: ExitStack, tmp: Path) -> None:
        super().__init__(spec, stack, tmp)
        self.graph = stack.enter_context(GraphSandbox(seed=7))
        self.graph.register_page(self.PAGE, self.TOKEN, "บ้านดอยเงิน")
        self.adapter = self.build(graph_api_url=self.graph.url, graph_api_version="v25.0")
        stack.callback(self.adapter.close)
        self.account = Account("facebook", self.PAGE, "บ้านดอยเงิน", SecretStr(self.TOKEN))

    def content(self) -> dict[str, Any]:
        return {"message": THAI}

    def expire(self) -> None:
        self.graph.expire_token(self.PAGE)

    def provoke(self, error: type[ChannelError]) -> Provoke:
        faults = {
            TransientError: graph_error(2, path="/feed"),
            RateLimited: graph_error(32, path="/feed"),
            AuthExpired: graph_error(190, path="/feed"),
            PermanentError: graph_error(100, path="/feed"),
            OutcomeUnknown: Fault("drop_after", method="POST", path="/feed"),
        }
        self.graph.faults.add(faults[error])
        return lambda: self.adapter.publish(self.post("provoked"))


class YouTubeHarness(Harness):
    kind = "youtube"
    errors = (TransientError, RateLimited, AuthExpired, PermanentError, OutcomeUnknown)
    CHANNEL, TOKEN = "UCcontract0000000000000a", "ya29.contract-token"

    def __init__(self, spec: ChannelSpec, stack: ExitStack, tmp: Path) -> None:
        super().__init__(spec, stack, tmp)
        self.sandbox = stack.enter_context(YouTubeSandbox(seed=7))
        self.sandbox.register_channel(self.CHANNEL, self.TOKEN, title="ชุมชนบ้านดอยเงิน")
        self.adapter = self.build(youtube_root_url=self.sandbox.url)
        self.account = Account("youtube", self.CHANNEL, "ชุมชนบ้านดอยเงิน", SecretStr(self.TOKEN))
        self.video = tmp / "ban-doi-ngoen.mp4"
        self.video.write_bytes(MP4_HEADER + random.Random(4).randbytes(300_000))

    def content(self) -> dict[str, Any]:
        return {"title": "ผ้าทอบ้านดอยเงิน", "description": THAI, "video": str(self.video)}

    def expire(self) -> None:
        self.sandbox.expire_token(self.TOKEN)

    def provoke(self, error: type[ChannelError]) -> Provoke:
        metrics = lambda: self.adapter.fetch_metrics(self.account, ["abc"])  # noqa: E731
        if error is TransientError:
            self.sandbox.faults.add(google_error(500, "backendError", method="GET"))
            return metrics
        if error is RateLimited:
            self.sandbox.faults.add(google_error(403, "rateLimitExceeded", method="GET"))
            return metrics
        if error is AuthExpired:
            self.expire()
            return metrics
        if error is PermanentError:
            self.sandbox.faults.add(google_error(400, "invalidTitle", path="/upload/"))
            return lambda: self.adapter.publish(self.post("provoked"))
        # The video arrives whole, but no answer comes back, not even to "how much arrived?".
        self.adapter.resume_delay = 0.0
        self.sandbox.faults.add(Fault("drop_after", method="PUT", path="/upload/", times=None))
        return lambda: self.adapter.publish(self.post("provoked"))


class EmailHarness(Harness):
    kind = "email"
    errors = (TransientError, AuthExpired, PermanentError, OutcomeUnknown)
    USER, PASSWORD = "glo", "relay-contract-pass"

    def __init__(self, spec: ChannelSpec, stack: ExitStack, tmp: Path) -> None:
        super().__init__(spec, stack, tmp)
        self.sandbox = stack.enter_context(SmtpSandbox(username=self.USER, password=self.PASSWORD))
        self.settings = {
            "public_base_url": "http://127.0.0.1:8000",
            "tracking_secret": SecretStr("contract-tracking-secret-0123456789"),
            "smtp_host": self.sandbox.host,
            "smtp_port": self.sandbox.port,
            "smtp_username": self.USER,
            "smtp_password": SecretStr(self.PASSWORD),
            "smtp_timeout": 5.0,
        }
        self.adapter = self.build(**self.settings)
        self.account = Account("email", "news@glo.example.org", "สลากเพื่อชุมชน")

    def content(self) -> dict[str, Any]:
        return {"subject": "ข่าวชุมชนบ้านดอยเงิน", "html": f"<p>{THAI}</p>"}

    def message(self) -> Any:
        return self.adapter.render(
            self.content(),
            Recipient(subscriber_id=7, email="somchai@example.org", name="สมชาย"),
            post_id=1,
            marker="contract-1",
            sender_address=self.account.external_id,
        )

    def send(self, adapter: Any = None) -> None:
        with (adapter or self.adapter).connect() as session:
            session.send(self.message())

    def delivered(self) -> int:
        return len(self.sandbox.messages)

    def provoke(self, error: type[ChannelError]) -> Provoke:
        if error is AuthExpired:
            wrong = self.build(**{**self.settings, "smtp_password": SecretStr("wrong-pass-1")})
            return lambda: self.send(wrong)
        faults = {
            TransientError: SmtpFault(code=451, message="4.7.1 Try again later"),
            PermanentError: SmtpFault(code=550, message="5.1.1 User unknown"),
            OutcomeUnknown: SmtpFault(action="drop", stage="data"),
        }
        self.sandbox.inject(faults[error])
        return self.send


class LineHarness(Harness):
    kind = "line"
    errors = (TransientError, RateLimited, AuthExpired, PermanentError, OutcomeUnknown)
    TOKEN = "line-contract-channel-token"

    def __init__(self, spec: ChannelSpec, stack: ExitStack, tmp: Path) -> None:
        super().__init__(spec, stack, tmp)
        self.sandbox = stack.enter_context(LineSandbox(seed=7))
        channel = self.sandbox.register_channel(
            self.TOKEN, basic_id="@ban-doi-ngoen", display_name="บ้านดอยเงิน", friends=60
        )
        self.adapter = self.build(line_api_url=self.sandbox.url, line_timeout=5.0)
        self.account = Account("line", channel.user_id, "บ้านดอยเงิน", SecretStr(self.TOKEN))

    def content(self) -> dict[str, Any]:
        return {
            "text": THAI,
            "card_title": "ผ้าทอบ้านดอยเงิน",
            "card_body": THAI,
            "link": "https://glo.example.org/t/contract",
        }

    def expire(self) -> None:
        self.sandbox.revoke(self.TOKEN)

    def provoke(self, error: type[ChannelError]) -> Provoke:
        # A send's lost answer is repeated at once under its retry key (LINE deduplicates):
        # every repeat must fail for the error to reach the caller.
        faults = {
            TransientError: line_error(500, "Internal server error", path="/broadcast", times=None),
            RateLimited: line_error(429, "The API rate limit has been exceeded. Try again later."),
            AuthExpired: line_error(401, "Authentication failed.", path="/broadcast"),
            PermanentError: line_error(400, "The request body has 1 error(s)", path="/broadcast"),
            OutcomeUnknown: Fault("drop_after", method="POST", path="/broadcast", times=None),
        }
        self.sandbox.faults.add(faults[error])
        return lambda: self.adapter.publish(self.post("provoked"))


HARNESSES: dict[str, type[Harness]] = {
    h.kind: h for h in (FacebookHarness, YouTubeHarness, EmailHarness, LineHarness)
}
SPECS = registry.specs()
ERRORS = [(spec, error) for spec in SPECS for error in HARNESSES[spec.kind].errors]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[[ChannelSpec], Harness]]:
    with ExitStack() as stack:
        yield lambda spec: HARNESSES[spec.kind](spec, stack, tmp_path)


def test_every_registered_channel_is_held_to_the_contract() -> None:
    assert sorted(HARNESSES) == sorted(registry.kinds())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_it_publishes_or_sends_through_its_sandbox(
    spec: ChannelSpec, make: Callable[[ChannelSpec], Harness]
) -> None:
    harness = make(spec)
    if spec.can(Capability.PUBLISH):
        assert isinstance(harness.adapter, Publisher)
        receipt = harness.adapter.publish(harness.post("contract-1"))
        assert receipt.external_id and receipt.published_at.tzinfo is not None
    else:
        assert spec.can(Capability.SEND_TO_MANY) and isinstance(harness.adapter, BulkSender)
        assert harness.delivered() == 0
        harness.send()  # type: ignore[attr-defined]
        assert harness.delivered() == 1


@pytest.mark.parametrize(
    "spec", registry.with_capability(Capability.FIND_PUBLISHED), ids=lambda s: s.kind
)
def test_it_finds_an_earlier_publication_by_its_marker(
    spec: ChannelSpec, make: Callable[[ChannelSpec], Harness]
) -> None:
    harness = make(spec)
    since = datetime.now(UTC) - timedelta(minutes=1)
    receipt = harness.adapter.publish(harness.post("contract-1"))
    found = harness.adapter.find_published(harness.post("contract-1"), since=since)
    assert found is not None and found.external_id == receipt.external_id
    assert harness.adapter.find_published(harness.post("never-sent"), since=since) is None


@pytest.mark.parametrize("spec", registry.with_capability(Capability.METRICS), ids=lambda s: s.kind)
def test_it_reads_the_metrics_of_a_publication(
    spec: ChannelSpec, make: Callable[[ChannelSpec], Harness]
) -> None:
    harness = make(spec)
    receipt = harness.adapter.publish(harness.post("contract-1"))
    [metrics] = harness.adapter.fetch_metrics(harness.account, [receipt.external_id])
    assert metrics.external_id == receipt.external_id
    assert metrics.collected_at.tzinfo is not None


@pytest.mark.parametrize(
    "spec", registry.with_capability(Capability.ACCOUNT_CHECK), ids=lambda s: s.kind
)
def test_it_checks_its_account(spec: ChannelSpec, make: Callable[[ChannelSpec], Harness]) -> None:
    harness = make(spec)
    harness.adapter.check_account(harness.account)  # a working token: no error
    harness.expire()
    with pytest.raises(AuthExpired) as refused:
        harness.adapter.check_account(harness.account)
    assert (refused.value.code or "").startswith(f"{spec.kind}:")


@pytest.mark.parametrize(
    ("spec", "error"), ERRORS, ids=[f"{s.kind}-{e.__name__}" for s, e in ERRORS]
)
def test_each_error_class_with_a_code_of_its_channel(
    spec: ChannelSpec, error: type[ChannelError], make: Callable[[ChannelSpec], Harness]
) -> None:
    harness = make(spec)
    call = harness.provoke(error)
    with pytest.raises(error) as raised:
        call()
    if error is TransientError:  # not one of its narrower kinds
        assert not isinstance(raised.value, RateLimited)
    assert (raised.value.code or "").startswith(f"{spec.kind}:"), raised.value.code
    assert raised.value.retryable == issubclass(error, TransientError)
