"""One SMTP session for a whole batch: STARTTLS, SSL and login as configured, every
reply mapped to a :mod:`channels.errors` error."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

from channels.email.mime import CampaignEmail, OutgoingEmail, wire_bytes
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)

if TYPE_CHECKING:
    from channels.email.adapter import EmailAdapter

log = logging.getLogger(__name__)


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled and the final ``.`` line (RFC 5321 4.5.2)."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class _DroppedBeforeData(Exception):
    """The connection failed before any of the message was sent: safe to try again."""


class EmailSession:
    """One SMTP connection reused for many messages; a context manager that says QUIT.

    If the server closed the connection while it sat idle, the next :meth:`send`
    reconnects once by itself -- only ever before the message data went out.
    """

    def __init__(self, adapter: EmailAdapter) -> None:
        self.adapter = adapter
        self.connections = 0  # how many connections this session has opened
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> EmailSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        return f"SMTP relay {self.adapter.host}:{self.adapter.port}"

    def open(self) -> None:
        """Connect, secure and log in, unless already connected."""
        if self._smtp is not None:
            return
        adapter = self.adapter
        smtp: smtplib.SMTP | None = None
        try:
            if adapter.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    adapter.host,
                    adapter.port,
                    local_hostname=adapter.local_hostname,
                    timeout=adapter.timeout,
                    context=adapter.ssl_context or ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    adapter.host,
                    adapter.port,
                    local_hostname=adapter.local_hostname,
                    timeout=adapter.timeout,
                )
            smtp.ehlo()
            if adapter.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise PermanentError(
                        f"the {self.where} does not offer STARTTLS",
                        code="email:smtp-no-starttls",
                        hint="set MARKETING_SMTP_SECURITY=ssl (and the SSL port) or use a "
                        "relay that offers STARTTLS",
                    )
                smtp.starttls(context=adapter.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if adapter.username:
                password = adapter.password.get_secret_value() if adapter.password else ""
                smtp.login(adapter.username, password)
        except ChannelError:
            self._close_quietly(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._close_quietly(smtp)
            raise AuthExpired(
                f"the {self.where} refused the login of {adapter.username!r}: "
                f"{exc.smtp_code} {_reply_text(exc.smtp_error)}",
                code=f"email:smtp-{exc.smtp_code}",
                hint="check MARKETING_SMTP_USERNAME and MARKETING_SMTP_PASSWORD",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            self._close_quietly(smtp)
            raise PermanentError(
                f"the {self.where} does not offer what the configuration needs: {exc}",
                code="email:smtp-not-supported",
                hint="most relays offer AUTH only after STARTTLS: check "
                "MARKETING_SMTP_SECURITY, or unset MARKETING_SMTP_USERNAME",
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            self._close_quietly(smtp)
            raise PermanentError(
                f"the {self.where} presented a certificate that cannot be trusted: "
                f"{exc.verify_message}",
                code="email:smtp-certificate",
                hint="check MARKETING_SMTP_HOST matches the relay's certificate",
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._close_quietly(smtp)
            raise TransientError(
                f"cannot reach the {self.where}: {exc}",
                code="email:smtp-connect",
                hint="the relay may be down or busy; this will be retried",
            ) from exc
        self._smtp = smtp
        self.connections += 1

    def close(self) -> None:
        """Say QUIT and close the connection (quietly: the batch is over either way)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                smtp.close()

    def _close_quietly(self, smtp: smtplib.SMTP | None) -> None:
        if smtp is not None:
            smtp.close()

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._close_quietly(smtp)

    def send(self, message: EmailMessage | OutgoingEmail) -> None:
        """Hand ``message`` to the relay; return when it accepted it.

        Raises :class:`TransientError` (4xx, or the connection failed before the data went
        out), :class:`PermanentError` (5xx, e.g. a refused recipient, with the server's
        words), :class:`AuthExpired` (the relay wants a login that works) or
        :class:`OutcomeUnknown` (the connection dropped or timed out after the data went
        out: the message may have been accepted -- do not send it again blindly).
        """
        if isinstance(message, OutgoingEmail):
            sender, recipients = message.envelope_sender, list(message.envelope_recipients)
            data = _dot_stuffed(message.wire)
        else:
            if isinstance(message, CampaignEmail) and message.envelope_recipients:
                sender, recipients = message.envelope_sender, list(message.envelope_recipients)
            else:
                sender = message["From"].addresses[0].addr_spec
                recipients = [address.addr_spec for address in message["To"].addresses]
            data = _dot_stuffed(wire_bytes(message))
        utf8 = not (sender.isascii() and all(address.isascii() for address in recipients))
        for attempt in (1, 2):
            self.open()
            try:
                self._transact(sender, recipients, data, utf8=utf8)
                return
            except _DroppedBeforeData as exc:
                self._discard()
                if attempt == 2:
                    raise TransientError(
                        f"the {self.where} closed the connection before the message was "
                        f"sent: {exc.__cause__}",
                        code="email:smtp-disconnected",
                        hint="nothing was sent; this will be retried",
                    ) from exc.__cause__
                log.info("%s closed the connection before a send; reconnecting", self.where)

    def _transact(self, sender: str, recipients: list[str], data: bytes, *, utf8: bool) -> None:
        smtp = self._smtp
        assert smtp is not None
        options: list[str] = []
        if utf8:
            if not smtp.has_extn("smtputf8"):
                raise PermanentError(
                    f"the {self.where} does not support SMTPUTF8, which the address "
                    f"{recipients[0]!r} or {sender!r} needs",
                    code="email:smtp-no-smtputf8",
                    hint="use an ASCII address or a relay that supports SMTPUTF8",
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        try:
            code, reply = smtp.mail(sender, options)
            self._expect(code, reply, (250,), "the sender " + sender)
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                self._expect(code, reply, (250, 251), "the recipient " + recipient)
            code, reply = smtp.docmd("DATA")
            self._expect(code, reply, (354,), "the message data")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _DroppedBeforeData() from exc
        # From here on the relay may have the message: a lost answer is not a refusal.
        try:
            smtp.send(data)
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            raise OutcomeUnknown(
                f"the {self.where} did not answer after receiving the message for "
                f"{', '.join(recipients)}: {exc}",
                code="email:smtp-no-answer",
                hint="the message may have been delivered; check before sending it again",
            ) from exc
        self._expect(code, reply, (250,), "the message")

    def _expect(self, code: int, reply: bytes, wanted: tuple[int, ...], what: str) -> None:
        """Return if ``code`` is wanted; else reset the transaction and raise the mapped
        :mod:`channels.errors` error."""
        if code in wanted:
            return
        text = _reply_text(reply)
        message = f"the {self.where} refused {what}: {code} {text}"
        if code == 421 or code < 0:
            self._discard()  # the server is closing (or talking nonsense): start afresh
        else:
            try:
                smtp = self._smtp
                assert smtp is not None
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()
        error_code = f"email:smtp-{code}"
        if code in (530, 534, 535, 538):
            raise AuthExpired(
                message,
                code=error_code,
                hint="the relay wants a working login: check MARKETING_SMTP_USERNAME, "
                "MARKETING_SMTP_PASSWORD and MARKETING_SMTP_SECURITY",
            )
        if 500 <= code < 600:
            raise PermanentError(
                message,
                code=error_code,
                hint="the relay will refuse this again: check the address or the content",
            )
        raise TransientError(message, code=error_code, hint="this will be retried later")


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
