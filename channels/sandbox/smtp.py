"""An SMTP relay for tests, the demo and benchmarks: aiosmtpd on 127.0.0.1, keeping every
message it accepts.

What it does, and what it can be told to do:

- keeps each accepted message as :class:`ReceivedMessage` (envelope, raw bytes exactly as
  received, parsed on demand) and counts messages per post marker
  (:meth:`SmtpSandbox.count_by_marker`, read from the ``Message-ID`` by the sandbox's own
  :func:`parse_message_id`, following the shape docs/channels/email.md gives) for
  exactly-once tests;
- counts connections (:attr:`SmtpSandbox.connections`), so a test can prove that a batch
  reused one;
- ``security="starttls"`` or ``"ssl"`` with a certificate generated at start (a throw-away
  CA and a leaf for ``localhost``/``127.0.0.1``; :meth:`SmtpSandbox.client_ssl_context`
  trusts it), and AUTH PLAIN/LOGIN that accepts one ``username``/``password``;
- fault injection (:class:`SmtpFault`): a 4xx or 5xx reply to MAIL, RCPT (optionally only
  for some recipients) or the end of DATA for the next N messages; a connection dropped at
  any of those stages -- after DATA the message is stored and never answered, the
  ambiguous case; or an answer after DATA that comes only after ``seconds`` (a client
  timeout); and :meth:`SmtpSandbox.drop_connections` closes every open connection, as a
  relay does with idle ones.

Replies follow RFC 5321 section 4.2 (reply codes) and RFC 3463 (enhanced status codes); the
hooks are aiosmtpd's handler hooks (``aiosmtpd/docs/handlers.rst``: a hook returns the
status line to send).  aiosmtpd 1.4.6's ``Controller(port=0)`` fails (its readiness check
connects to the port it was given), so a free port is picked first.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import shutil
import socket
import ssl
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser, Parser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from channels.sandbox.base import SandboxClock

# Our adapter's Message-ID is ``<{marker}.{subscriber_id}@{sender domain}>`` (docs/channels/
# email.md, "Headers"; a msg-id per RFC 5322 section 3.6.4,
# https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4).  Read here by the sandbox's own
# code, not the adapter's: tests/test_sandbox_independence.py checks both agree.
_MESSAGE_ID = re.compile(r"<([A-Za-z0-9_.-]+)\.(\d+)@[^<>@\s]+>")


def parse_message_id(value: str) -> tuple[str, int] | None:
    """``(marker, subscriber_id)`` from a Message-ID of that shape, or None for any other."""
    found = _MESSAGE_ID.fullmatch(value.strip())
    if found is None:
        return None
    return found.group(1), int(found.group(2))


Security = Literal["none", "starttls", "ssl"]
FaultAction = Literal["reply", "drop", "stall"]
FaultStage = Literal["mail", "rcpt", "data"]


class _QuietLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning for its own use of ``Session.login_data``
    on every successful AUTH; it says nothing about this sandbox."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_QuietLoginDataWarning())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpFault:
    """One injected fault, applied ``times`` times (None: until cleared).

    - ``reply``: answer ``code`` and ``message`` at ``stage`` instead of accepting; at
      ``data`` the message is not stored
    - ``drop``: close the connection at ``stage`` without answering; at ``data`` the
      message IS stored first -- the client cannot tell whether it was accepted
    - ``stall``: at ``data`` only: store the message, wait ``seconds``, then answer 250
      (a client with a shorter timeout gives up first)

    ``recipients`` limits a ``rcpt`` fault to those addresses (compared case-insensitively).
    """

    action: FaultAction = "reply"
    stage: FaultStage = "rcpt"
    code: int = 451
    message: str = "4.7.1 Try again later"
    recipients: frozenset[str] | None = None
    times: int | None = 1
    seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.action == "stall" and self.stage != "data":
            raise ValueError("a stall happens after DATA: use stage='data'")
        if self.action == "reply" and not 400 <= self.code < 600:
            raise ValueError(f"an injected reply is a 4xx or 5xx, not {self.code}")
        if self.recipients is not None:
            self.recipients = frozenset(address.lower() for address in self.recipients)

    def matches(self, stage: FaultStage, recipient: str | None) -> bool:
        if stage != self.stage:
            return False
        return self.recipients is None or (recipient or "").lower() in self.recipients

    @property
    def status(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope and the bytes exactly as received (CRLF)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: datetime
    connection: int  # which connection (1, 2, ...) delivered it
    smtputf8: bool = False  # sent with MAIL FROM ... SMTPUTF8: headers may be UTF-8

    @functools.cached_property
    def message(self) -> EmailMessage:
        """The message parsed with the standard library's modern API."""
        if self.smtputf8:  # RFC 6532: header text is UTF-8, not only ASCII
            text = self.raw.decode("utf-8", "surrogateescape")
            parsed = Parser(policy=policy.default).parsestr(text)
        else:
            parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @functools.cached_property
    def message_id(self) -> str | None:
        value = BytesHeaderParser(policy=policy.default).parsebytes(self.raw)["Message-ID"]
        return str(value).strip() if value else None

    @property
    def marker(self) -> str | None:
        """The post marker the ``Message-ID`` carries, if it was made by the adapter."""
        found = parse_message_id(self.message_id or "")
        return found[0] if found else None

    @property
    def subscriber_id(self) -> int | None:
        found = parse_message_id(self.message_id or "")
        return found[1] if found else None


@dataclass(frozen=True)
class _Certificates:
    """A throw-away CA and a ``localhost``/``127.0.0.1`` leaf signed by it, on disk."""

    directory: Path
    ca_pem: str

    @property
    def cert_file(self) -> Path:
        return self.directory / "leaf.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "leaf.key"

    @classmethod
    def generate(cls) -> _Certificates:
        # Imported here: only a TLS sandbox needs it.  EC keys make this a few milliseconds.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GLO SMTP sandbox CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory = Path(tempfile.mkdtemp(prefix="smtp-sandbox-"))
        certificates = cls(
            directory=directory,
            ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )
        certificates.cert_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
        certificates.key_file.write_bytes(
            leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return certificates

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class _SandboxSMTP(SMTP):
    """aiosmtpd's protocol, telling the sandbox when a connection opens and closes."""

    def __init__(self, sandbox: SmtpSandbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sandbox = sandbox
        self.number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if first:
            self.number = self.sandbox._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sandbox._closed(self)
        super().connection_lost(error)


class _SandboxController(Controller):
    def __init__(self, sandbox: SmtpSandbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sandbox = sandbox

    def factory(self) -> SMTP:
        return _SandboxSMTP(self.sandbox, self.handler, **self.SMTP_kwargs)


async def _drop(server: SMTP) -> None:
    """Close the connection without a word; aiosmtpd cancels this hook when it notices."""
    if server.transport is not None:
        server.transport.close()
    await asyncio.sleep(60)  # only a bound: connection_lost cancels it at once


class _Handler:
    """aiosmtpd handler hooks: authentication, fault injection and storage."""

    def __init__(self, sandbox: SmtpSandbox) -> None:
        self.sandbox = sandbox

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.sandbox.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        fault = self.sandbox._take_fault("mail", None)
        if fault is not None:
            if fault.action == "drop":
                await _drop(server)
            return fault.status
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self.sandbox._take_fault("rcpt", address)
        if fault is not None:
            if fault.action == "drop":
                await _drop(server)
            return fault.status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self.sandbox._take_fault("data", None)
        if fault is not None and fault.action == "reply":
            return fault.status
        received = self.sandbox._store(server, envelope)
        if fault is not None and fault.action == "drop":
            await _drop(server)
        if fault is not None and fault.action == "stall":
            await asyncio.sleep(fault.seconds)
        return f"250 2.0.0 OK queued as {received}"


class SmtpSandbox:
    """An SMTP relay on 127.0.0.1 served by a background thread (see the module docstring).

    Use as a context manager or call :meth:`start` / :meth:`stop`.  ``port=0`` picks a free
    port; :attr:`port` is the real one once started.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        auth_require_tls: bool | None = None,
        clock: SandboxClock | None = None,
        server_hostname: str = "smtp.sandbox.test",
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"security is none, starttls or ssl, not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.password = password
        # Real relays offer AUTH only over TLS; without TLS the sandbox offers it anyway.
        # aiosmtpd counts only STARTTLS as TLS, so on an implicit-TLS ("ssl") port it must
        # not require it either.
        if auth_require_tls is None:
            auth_require_tls = security == "starttls"
        self.auth_require_tls = auth_require_tls
        self.clock = clock or SandboxClock()
        self.server_hostname = server_hostname
        self.connections = 0
        self.auth_failures = 0
        self.faults_injected: list[tuple[FaultStage, FaultAction]] = []
        self._messages: list[ReceivedMessage] = []
        self._faults: list[SmtpFault] = []
        self._open: set[_SandboxSMTP] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a connection opened or closed
        self._controller: _SandboxController | None = None
        self._certificates: _Certificates | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SmtpSandbox:
        if self._controller is not None:
            raise RuntimeError("the SMTP sandbox is already running")
        if self.port == 0:
            self.port = free_port(self.host)
        tls: ssl.SSLContext | None = None
        if self.security != "none":
            self._certificates = _Certificates.generate()
            tls = self._certificates.server_context()
        smtp_options: dict[str, Any] = {
            "server_hostname": self.server_hostname,
            "enable_SMTPUTF8": True,
            "auth_require_tls": self.auth_require_tls,
            "authenticator": self._authenticate if self.username is not None else None,
        }
        if self.security == "ssl":
            smtp_options["ssl_context"] = tls
        elif self.security == "starttls":
            smtp_options.update(tls_context=tls, require_starttls=True)
        controller = _SandboxController(
            self, _Handler(self), hostname=self.host, port=self.port, **smtp_options
        )
        controller.start()
        self._controller = controller
        with self._lock:
            self.connections = 0  # the controller's own readiness check is not a client
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        certificates, self._certificates = self._certificates, None
        if certificates is not None:
            shutil.rmtree(certificates.directory, ignore_errors=True)

    def __enter__(self) -> SmtpSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a test asks for --------------------------------------------------------

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this sandbox's certificate (and nothing else)."""
        if self._certificates is None:
            raise RuntimeError("the sandbox has no certificate: start it with security set")
        return ssl.create_default_context(cadata=self._certificates.ca_pem)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every accepted message, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def count_by_marker(self) -> dict[str, int]:
        """How many accepted messages carry each post marker in their ``Message-ID``."""
        counts = Counter(message.marker for message in self.messages)
        counts.pop(None, None)
        return {marker: count for marker, count in counts.items() if marker is not None}

    def inject(self, fault: SmtpFault) -> SmtpFault:
        """Apply ``fault`` from the next matching command on."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget stored messages, faults and counters."""
        with self._lock:
            self._messages.clear()
            self._faults.clear()
            self.faults_injected.clear()
            self.connections = len(self._open)
            self.auth_failures = 0

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def wait_open_connections(self, count: int, timeout: float = 30.0) -> int:
        """Wait until ``count`` client connections are open (the server side closes a
        connection after the client's ``QUIT`` has been answered, so a client that has
        returned may still be counted for a moment); the count then, whether or not it
        got there within ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._open) == count, timeout)
            return len(self._open)

    def drop_connections(self) -> None:
        """Close every open client connection now (as a relay does with idle ones)."""
        controller = self._controller
        if controller is None:
            return

        async def close_all() -> None:
            for server in list(self._open):
                if server.transport is not None:
                    server.transport.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close_all(), controller.loop).result(timeout=10)

    def state(self) -> dict[str, Any]:
        """What the sandbox holds, as JSON-able data."""
        messages = self.messages
        return {
            "now": self.clock.now().isoformat(),
            "port": self.port,
            "security": self.security,
            "connections": self.connections,
            "open_connections": self.open_connections,
            "auth_failures": self.auth_failures,
            "faults_injected": len(self.faults_injected),
            "messages": len(messages),
            "by_marker": self.count_by_marker(),
            "recent": [
                {
                    "mail_from": message.mail_from,
                    "rcpt_tos": list(message.rcpt_tos),
                    "message_id": message.message_id,
                    "received_at": message.received_at.isoformat(),
                }
                for message in messages[-20:]
            ],
        }

    # -- called from the server thread -----------------------------------------------

    def _opened(self, server: _SandboxSMTP) -> int:
        with self._lock:
            self._open.add(server)
            self.connections += 1
            return self.connections

    def _closed(self, server: _SandboxSMTP) -> None:
        with self._changed:
            self._open.discard(server)
            self._changed.notify_all()

    def _take_fault(self, stage: FaultStage, recipient: str | None) -> SmtpFault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(stage, recipient):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                self.faults_injected.append((stage, fault.action))
                return fault
        return None

    def _store(self, server: SMTP, envelope: Envelope) -> int:
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(envelope.original_content or b""),
            received_at=self.clock.now(),
            connection=getattr(server, "number", 0),
            smtputf8=envelope.smtp_utf8,
        )
        with self._lock:
            self._messages.append(received)
            return len(self._messages)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.username is not None and self.password is not None
        accepted = (
            isinstance(data, LoginPassword)
            and data.login == self.username.encode("utf-8")
            and data.password == self.password.encode("utf-8")
        )
        if not accepted:
            with self._lock:
                self.auth_failures += 1
        # handled=False: aiosmtpd answers 535 itself on failure.
        return AuthResult(success=accepted, handled=False)


__all__ = ["ReceivedMessage", "SmtpFault", "SmtpSandbox", "free_port"]
