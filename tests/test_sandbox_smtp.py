"""The SMTP sandbox speaks SMTP to a plain ``smtplib`` client: it keeps what it accepts,
counts connections and markers, authenticates, offers TLS, and injects faults."""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pytest

from channels.sandbox.smtp import SmtpFault, SmtpSandbox, free_port

SUBJECT = "ข่าวจากบ้านดอยเงิน: ผ้าทอมือลายใหม่"


def message(marker: str = "post-1", subscriber: int = 1, to: str = "a@example.org") -> bytes:
    built = EmailMessage(policy=policy.SMTP)
    built["Subject"] = SUBJECT
    built["From"] = "community@example.org"
    built["To"] = to
    built["Message-ID"] = f"<{marker}.{subscriber}@example.org>"
    built.set_content("สวัสดีครับ\n.\nบรรทัดที่ขึ้นต้นด้วยจุด\n")
    return built.as_bytes()


def client(sandbox: SmtpSandbox, timeout: float = 5) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", sandbox.port, local_hostname="client.test", timeout=timeout)


@pytest.fixture
def sandbox() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as running:
        yield running


def test_keeps_messages_with_their_envelope_and_exact_bytes(sandbox: SmtpSandbox) -> None:
    raw = message()
    with client(sandbox) as smtp:
        refused = smtp.sendmail("bounce@example.org", ["a@example.org"], raw)
    assert refused == {}
    (kept,) = sandbox.messages
    assert kept.mail_from == "bounce@example.org"
    assert kept.rcpt_tos == ("a@example.org",)
    assert kept.raw == raw  # byte for byte: the dot line was stuffed and unstuffed
    assert kept.message["Subject"] == SUBJECT
    assert "บรรทัดที่ขึ้นต้นด้วยจุด" in kept.message.get_content()
    assert (kept.marker, kept.subscriber_id, kept.connection) == ("post-1", 1, 1)


def test_counts_connections_and_markers(sandbox: SmtpSandbox) -> None:
    with client(sandbox) as smtp:
        for subscriber in range(3):
            smtp.sendmail("c@example.org", ["a@example.org"], message("post-1", subscriber))
    with client(sandbox) as smtp:
        smtp.sendmail("c@example.org", ["a@example.org"], message("post-2", 1))
        smtp.sendmail("c@example.org", ["a@example.org"], message("not an adapter id", 1))
    assert sandbox.connections == 2  # the readiness check at start is not counted
    assert sandbox.count_by_marker() == {"post-1": 3, "post-2": 1}
    assert [m.connection for m in sandbox.messages] == [1, 1, 1, 2, 2]
    state = json.loads(json.dumps(sandbox.state()))
    assert state["messages"] == 5
    assert state["by_marker"] == {"post-1": 3, "post-2": 1}


def test_a_reply_fault_for_one_recipient_only(sandbox: SmtpSandbox) -> None:
    sandbox.inject(
        SmtpFault(
            code=550,
            message="5.1.1 <Gone@Example.org>: user unknown",
            recipients=frozenset({"Gone@Example.org"}),
            times=None,
        )
    )
    with client(sandbox) as smtp:
        refused = smtp.sendmail("c@example.org", ["gone@example.org", "a@example.org"], message())
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("c@example.org", ["gone@example.org"], message())
    assert refused == {"gone@example.org": (550, b"5.1.1 <Gone@Example.org>: user unknown")}
    assert [m.rcpt_tos for m in sandbox.messages] == [("a@example.org",)]


def test_a_4xx_after_data_for_the_next_two_messages_stores_nothing(sandbox: SmtpSandbox) -> None:
    sandbox.inject(SmtpFault(stage="data", code=451, message="4.3.0 try later", times=2))
    with client(sandbox) as smtp:
        for _ in range(2):
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("c@example.org", ["a@example.org"], message())
            assert refused.value.smtp_code == 451
        smtp.sendmail("c@example.org", ["a@example.org"], message())
    assert len(sandbox.messages) == 1
    assert sandbox.faults_injected == [("data", "reply"), ("data", "reply")]


def test_a_drop_after_data_stores_the_message_and_never_answers(sandbox: SmtpSandbox) -> None:
    sandbox.inject(SmtpFault(action="drop", stage="data"))
    smtp = client(sandbox)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.sendmail("c@example.org", ["a@example.org"], message())
    smtp.close()
    assert sandbox.count_by_marker() == {"post-1": 1}


def test_a_drop_at_mail_stores_nothing(sandbox: SmtpSandbox) -> None:
    sandbox.inject(SmtpFault(action="drop", stage="mail"))
    smtp = client(sandbox)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.sendmail("c@example.org", ["a@example.org"], message())
    smtp.close()
    assert sandbox.messages == []


def test_a_stall_after_data_outlasts_the_client(sandbox: SmtpSandbox) -> None:
    sandbox.inject(SmtpFault(action="stall", stage="data", seconds=10))
    smtp = client(sandbox, timeout=0.5)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        smtp.sendmail("c@example.org", ["a@example.org"], message())
    smtp.close()
    assert len(sandbox.messages) == 1  # the relay has it; the client cannot know


def test_drop_connections_closes_idle_clients(sandbox: SmtpSandbox) -> None:
    smtp = client(sandbox)
    smtp.ehlo()
    assert sandbox.open_connections == 1
    sandbox.drop_connections()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.sendmail("c@example.org", ["a@example.org"], message())
    smtp.close()
    assert sandbox.messages == []


def test_auth_accepts_only_its_credentials() -> None:
    with SmtpSandbox(username="relay-user", password="relay-pass") as sandbox:
        with client(sandbox) as smtp:
            with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
                smtp.sendmail("c@example.org", ["a@example.org"], message())
            assert unauthenticated.value.smtp_code == 530
            with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
                smtp.login("relay-user", "wrong")
            assert wrong.value.smtp_code == 535
            smtp.login("relay-user", "relay-pass")
            smtp.sendmail("c@example.org", ["a@example.org"], message())
        assert sandbox.auth_failures == 2  # smtplib tries PLAIN, then LOGIN
        assert len(sandbox.messages) == 1


def test_starttls_with_its_own_certificate() -> None:
    with SmtpSandbox(security="starttls", username="u", password="p") as sandbox:
        with client(sandbox) as smtp:
            with pytest.raises(smtplib.SMTPSenderRefused) as plain:
                smtp.sendmail("c@example.org", ["a@example.org"], message())
            assert plain.value.smtp_code == 530  # must issue STARTTLS first
        with client(sandbox) as smtp, pytest.raises(ssl.SSLCertVerificationError):
            smtp.starttls(context=ssl.create_default_context())  # not a public CA
        with client(sandbox) as smtp:
            smtp.starttls(context=sandbox.client_ssl_context())
            smtp.login("u", "p")
            smtp.sendmail("c@example.org", ["a@example.org"], message())
        assert len(sandbox.messages) == 1


def test_implicit_tls() -> None:
    with SmtpSandbox(security="ssl", username="u", password="p") as sandbox:
        context = sandbox.client_ssl_context()
        with smtplib.SMTP_SSL(
            "127.0.0.1", sandbox.port, local_hostname="client.test", context=context, timeout=5
        ) as smtp:
            smtp.login("u", "p")
            smtp.sendmail("c@example.org", ["a@example.org"], message())
        assert len(sandbox.messages) == 1


def test_lifecycle() -> None:
    sandbox = SmtpSandbox()
    assert sandbox.start() is sandbox
    port = sandbox.port
    assert port > 0
    with pytest.raises(RuntimeError, match="already running"):
        sandbox.start()
    sandbox.stop()
    sandbox.stop()  # twice is harmless
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=2)
    assert free_port() > 0


def test_bad_faults_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="stage='data'"):
        SmtpFault(action="stall", stage="rcpt")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        SmtpFault(code=250)
    with pytest.raises(ValueError, match="both username and password"):
        SmtpSandbox(username="u")
    with pytest.raises(RuntimeError, match="no certificate"):
        SmtpSandbox().client_ssl_context()
