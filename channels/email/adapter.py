"""The e-mail adapter (a :class:`channels.base.BulkSender`), its settings and its spec."""

from __future__ import annotations

import email.utils
import html as html_lib
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.parser import BytesParser, Parser
from pathlib import Path
from typing import Annotated, Any, ClassVar, Required, TypedDict
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from email_validator import EmailNotValidError
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import (
    BulkSender,
    Capability,
    ChannelServices,
    ChannelSpec,
    Recipient,
)
from channels.campaign_input import (
    ChannelInput,
    TemplateField,
    TemplateRef,
    Text,
    VariantTestIn,
)
from channels.email.dkim import DKIM_SIGNED_HEADERS, DkimKey, dkim_signature
from channels.email.html_text import (
    _PIXEL_HTML,
    _PREHEADER_HTML,
    UNSUBSCRIBE_FOOTER_HTML,
    UNSUBSCRIBE_FOOTER_TEXT,
    _after_body_open,
    _before_body_close,
    _links_hold_slots,
    rewrite_links,
    text_from_html,
)
from channels.email.identity import (
    _address,
    _is_loopback,
    _one_line,
    _validated,
    _validated_sender,
    _wire_address,
    message_id_for,
)
from channels.email.limits import SLOT_PATTERN, EmailLimits, merge_slot, valid_address
from channels.email.mime import (
    _POLICY,
    _POLICY_UTF8,
    LIST_UNSUBSCRIBE_POST,
    CampaignEmail,
    OutgoingEmail,
    _boundary,
    _fold_at_spaces,
    _folded,
    _text_part,
)
from channels.email.smtp import EmailSession
from channels.errors import (
    PermanentError,
)
from channels.tracking import TrackingLinks


class EmailAdapter(EmailLimits, BulkSender):
    """Builds campaign email and sends it over one SMTP connection per batch.

    Every value comes in through the constructor (see :func:`email_adapter_from_settings`);
    ``password`` and the DKIM key are unwrapped only when a connection is opened or a
    message is signed.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        links: TrackingLinks,
        unsubscribe_mailto: str,
        security: str = "none",
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 30.0,
        dkim: DkimKey | None = None,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(
                f"SMTP security {security!r} is not one of none, starttls, ssl "
                "(MARKETING_SMTP_SECURITY)"
            )
        base = urlsplit(links.base_url)
        if base.scheme != "https" and not _is_loopback(base.hostname or ""):
            raise ValueError(
                f"the unsubscribe link would be {base.scheme}:// on {base.hostname}; "
                "RFC 8058 one-click unsubscribe needs https:// -- set "
                "MARKETING_PUBLIC_BASE_URL to the web app's https address"
            )
        try:
            mailto = _validated(unsubscribe_mailto).ascii_email
        except EmailNotValidError as exc:
            raise ValueError(
                f"unsubscribe address {unsubscribe_mailto!r} is not valid: {exc} "
                "(MARKETING_UNSUBSCRIBE_MAILTO)"
            ) from None
        if mailto is None:
            raise ValueError(
                f"unsubscribe address {unsubscribe_mailto!r} must be ASCII to go in a "
                "mailto: link (MARKETING_UNSUBSCRIBE_MAILTO)"
            )
        if not (username or "").isascii() or (
            password is not None and not password.get_secret_value().isascii()
        ):
            # smtplib sends AUTH PLAIN/LOGIN credentials as ASCII only.
            raise ValueError(
                "the SMTP username and password must be ASCII (MARKETING_SMTP_USERNAME, "
                "MARKETING_SMTP_PASSWORD)"
            )
        self._dkim_key: rsa.RSAPrivateKey | None = None
        if dkim is not None:
            try:
                loaded = serialization.load_pem_private_key(
                    dkim.private_key.get_secret_value().encode("ascii"), password=None
                )
            except (ValueError, TypeError, UnsupportedAlgorithm):
                loaded = None
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(
                    f"the DKIM private key for {dkim.selector}._domainkey.{dkim.domain} is "
                    "not an RSA key in PEM form (MARKETING_DKIM_PRIVATE_KEY_FILE)"
                ) from None
            self._dkim_key = loaded
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.links = links
        self.unsubscribe_mailto = mailto
        self.dkim = dkim
        self.ssl_context = ssl_context
        self._local_hostname = local_hostname

    def __repr__(self) -> str:
        user = f", username={self.username!r}, password=**********" if self.username else ""
        return f"EmailAdapter({self.host}:{self.port}, security={self.security}{user})"

    @property
    def local_hostname(self) -> str:
        """The name this side gives in EHLO (the machine's FQDN unless configured)."""
        if self._local_hostname is None:
            self._local_hostname = socket.getfqdn()
        return self._local_hostname

    # -- building ------------------------------------------------------------------

    def build_message(
        self,
        content: Mapping[str, Any],
        recipient: Recipient,
        *,
        post_id: int,
        marker: str,
        sender_address: str,
        now: datetime | None = None,
    ) -> CampaignEmail:
        """The message of this post for ``recipient``, ready for :meth:`EmailSession.send`,
        as an :class:`~email.message.EmailMessage` parsed from the bytes :meth:`render`
        makes (to read its headers and parts).  Pure: no I/O; raises as :meth:`render`."""
        outgoing = self.render(
            content,
            recipient,
            post_id=post_id,
            marker=marker,
            sender_address=sender_address,
            now=now,
        )
        policy = _POLICY_UTF8 if outgoing.smtputf8 else _POLICY
        if outgoing.smtputf8:  # RFC 6532: header text is UTF-8, not only ASCII
            text = outgoing.wire.decode("utf-8")
            message = Parser(_class=CampaignEmail, policy=policy).parsestr(text)
        else:
            message = BytesParser(_class=CampaignEmail, policy=policy).parsebytes(outgoing.wire)
        assert isinstance(message, CampaignEmail)
        message.wire = outgoing.wire
        message.envelope_sender = outgoing.envelope_sender
        message.envelope_recipients = outgoing.envelope_recipients
        return message

    def render(
        self,
        content: Mapping[str, Any],
        recipient: Recipient,
        *,
        post_id: int,
        marker: str,
        sender_address: str,
        now: datetime | None = None,
    ) -> OutgoingEmail:
        """The exact bytes and envelope of this post's message for ``recipient``.

        Pure: no I/O.  Raises :class:`PermanentError` for content that breaks the channel's
        rules, an invalid recipient address (naming the address's problem) or an invalid
        sender address.  The headers are folded by the same header classes as
        :class:`CampaignEmail`'s, but the MIME structure is written directly (multipart/
        alternative, both parts UTF-8 in base64): building an ``EmailMessage`` for every
        recipient was most of a campaign's sending time.
        """
        problems = self.content_problems(content)
        if problems:
            listed = "; ".join(f"{p.field} {p.message}" for p in problems)
            raise PermanentError(
                f"the email content cannot be sent: {listed}",
                code="email:invalid-content",
                hint="fix the campaign's email content and plan it again",
            )
        try:
            to_found = _validated(recipient.email)
        except EmailNotValidError as exc:
            raise PermanentError(
                f"subscriber {recipient.subscriber_id}: {recipient.email!r} is not a valid "
                f"email address: {exc}",
                code="email:invalid-address",
                hint="correct the subscriber's address in the community list and import it "
                "again, or remove the subscriber",
            ) from None
        try:
            from_found = _validated_sender(sender_address)
        except EmailNotValidError as exc:
            raise PermanentError(
                f"the sender address {sender_address!r} is not valid: {exc}",
                code="email:invalid-sender",
                hint="fix the email channel account's address (or MARKETING_EMAIL_FROM)",
            ) from None
        to_address, from_address = _wire_address(to_found), _wire_address(from_found)

        ids = {"post_id": post_id, "subscriber_id": recipient.subscriber_id}
        unsubscribe_url = self.links.unsubscribe_url(**ids)
        values = {
            "name": recipient.name,
            "email": to_found.normalized,
            "unsubscribe_url": unsubscribe_url,
        }
        escaped = {key: html_lib.escape(value, quote=True) for key, value in values.items()}

        def fill(text: str, table: Mapping[str, str]) -> str:
            return SLOT_PATTERN.sub(lambda found: table[found.group(1)], text)

        unsubscribe_slot = merge_slot("unsubscribe_url")
        html = str(content["html"])
        if unsubscribe_slot not in html:
            html = _before_body_close(html, UNSUBSCRIBE_FOOTER_HTML)
        if content.get("text"):
            text = str(content["text"])
            if unsubscribe_slot not in text:
                text = text.rstrip("\n") + "\n" + UNSUBSCRIBE_FOOTER_TEXT
        else:
            text = text_from_html(html)
        text = fill(text, values)

        def track(url: str) -> str | None:
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                return None  # mailto:, tel:, anchors and relative links stay as they are
            if url == unsubscribe_url or self.links.owns(url):
                return None
            return self.links.click_url(url=url, **ids)

        if _links_hold_slots(html):
            html = rewrite_links(fill(html, escaped), track)
        else:
            # No link address depends on the recipient, so the links of the template are
            # found once (rewrite_links caches them) and the slots are filled afterwards.
            html = fill(rewrite_links(html, track), escaped)
        preheader = _one_line(fill(str(content.get("preheader") or ""), escaped))
        if preheader:
            html = _after_body_open(html, _PREHEADER_HTML.format(preheader))
        html = _before_body_close(
            html, _PIXEL_HTML.format(html_lib.escape(self.links.open_url(**ids)))
        )

        needs_utf8 = not (to_address.isascii() and from_address.isascii())
        policy = _POLICY_UTF8 if needs_utf8 else _POLICY
        domain = from_found.ascii_domain or from_found.domain
        message_id = message_id_for(marker, recipient.subscriber_id, domain)
        # RFC 8058: an https URI for the one-click POST, and a mailto as a fallback.
        token = unsubscribe_url.rsplit("/", 1)[-1]
        mailto = f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}"
        boundary = _boundary()
        headers = [
            _folded(policy, "Subject", _one_line(fill(str(content["subject"]), values))),
            _folded(
                policy,
                "From",
                str(_address(_one_line(str(content.get("sender_name") or "")), from_found)),
            ),
            _folded(policy, "To", str(_address(_one_line(recipient.name), to_found))),
        ]
        if content.get("reply_to"):
            headers.append(_folded(policy, "Reply-To", str(content["reply_to"])))
        headers += [
            f"Date: {email.utils.format_datetime(now or datetime.now(UTC))}\r\n".encode(),
            f"Message-ID: {message_id}\r\n".encode(),
            _fold_at_spaces("List-Unsubscribe", f"<{unsubscribe_url}>, <{mailto}>", "\r\n").encode(
                "ascii"
            ),
            f"List-Unsubscribe-Post: {LIST_UNSUBSCRIBE_POST}\r\n".encode(),
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
        ]
        wire = b"".join(
            [
                *headers,
                b"\r\n",
                _text_part(boundary, "plain", text),
                _text_part(boundary, "html", html),
                f"--{boundary}--\r\n".encode(),
            ]
        )
        if self.dkim is not None:
            # The signature goes last in the header block, so the signed bytes stay as they
            # are; verifiers find it anywhere (RFC 6376 section 6.1).
            signature = self._dkim_signature(wire)
            name, _, value = signature.decode("ascii").partition(":")
            end_of_headers = wire.index(b"\r\n\r\n") + 2
            folded = _fold_at_spaces(name, " ".join(value.split()), "\r\n").encode("ascii")
            wire = wire[:end_of_headers] + folded + wire[end_of_headers:]
        return OutgoingEmail(
            wire=wire,
            envelope_sender=from_address,
            envelope_recipients=(to_address,),
            message_id=message_id,
            smtputf8=needs_utf8,
        )

    def _dkim_signature(self, wire: bytes) -> bytes:
        """The ``DKIM-Signature`` header line (CRLF-terminated) for the message ``wire``."""
        assert self.dkim is not None and self._dkim_key is not None
        return dkim_signature(
            wire,
            key=self._dkim_key,
            domain=self.dkim.domain.encode("ascii"),
            selector=self.dkim.selector.encode("ascii"),
            include_headers=[name.encode("ascii") for name in DKIM_SIGNED_HEADERS],
        )

    # -- sending -------------------------------------------------------------------

    def connect(self) -> EmailSession:
        """An open SMTP session (STARTTLS, SSL and login as configured) for a batch."""
        session = EmailSession(self)
        session.open()
        return session


class EmailSettings(BaseModel):
    """What the e-mail adapter is built from (the service's settings of the same names)."""

    model_config = ConfigDict(frozen=True)

    public_base_url: str
    tracking_secret: SecretStr
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 30.0
    unsubscribe_mailto: str = "unsubscribe@example.org"
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key_file: Path | None = None


def email_adapter_from_settings(settings: EmailSettings | object) -> EmailAdapter:
    """The email adapter configured by ``settings`` (an :class:`EmailSettings`, or anything
    with those attributes)."""
    values = SPEC.settings_from(settings)
    assert isinstance(values, EmailSettings)
    domain, selector, key_file = (
        values.dkim_domain,
        values.dkim_selector,
        values.dkim_private_key_file,
    )
    dkim_key = None
    if domain and selector and key_file:
        dkim_key = DkimKey.from_file(domain=domain, selector=selector, path=Path(key_file))
    elif domain or selector or key_file:
        raise ValueError(
            "DKIM signing needs all of MARKETING_DKIM_DOMAIN, MARKETING_DKIM_SELECTOR and "
            "MARKETING_DKIM_PRIVATE_KEY_FILE (or none of them)"
        )
    return EmailAdapter(
        host=values.smtp_host,
        port=values.smtp_port,
        security=str(values.smtp_security),
        username=values.smtp_username,
        password=values.smtp_password,
        timeout=values.smtp_timeout,
        unsubscribe_mailto=values.unsubscribe_mailto,
        links=TrackingLinks(values.public_base_url, values.tracking_secret),
        dkim=dkim_key,
    )


# --- the channel as a unit -------------------------------------------------------------


class Audience(TypedDict):
    tags: list[str]


class EmailContent(TypedDict, total=False):
    """``Post.content`` of an e-mail post (see the module docstring)."""

    subject: Required[str]
    preheader: str
    html: Required[str]
    text: str
    sender_name: str
    reply_to: str
    audience: Audience


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: Annotated[list[Text], Field(min_length=1)]


class EmailVariantIn(BaseModel):
    """Another subject line (and preheader) to test against the block's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: TemplateField
    preheader: TemplateField | None = None


class EmailIn(ChannelInput):
    """The ``email:`` block of a campaign file."""

    templates: ClassVar[tuple[str, ...]] = (
        "subject",
        "preheader",
        "html",
        "text",
        "sender_name",
        "reply_to",
    )
    html_templates: ClassVar[frozenset[str]] = frozenset({"html"})
    # The fields in which {{ subscriber.name }} and friends may be printed.
    per_recipient: ClassVar[frozenset[str] | None] = frozenset(
        {"subject", "preheader", "html", "text"}
    )
    community_accounts: ClassVar[bool] = False

    account: Text
    subject: TemplateField
    preheader: TemplateField | None = None
    html: TemplateField
    text: TemplateField | None = None
    sender_name: TemplateField | None = None
    reply_to: TemplateField | None = None
    audience: AudienceIn | None = None
    variants: Annotated[list[EmailVariantIn], Field(max_length=4)] = []
    test: VariantTestIn | None = None

    def fixed(self) -> dict[str, Any]:
        return {} if self.audience is None else {"audience": {"tags": list(self.audience.tags)}}

    def variant_templates(self) -> list[dict[str, TemplateRef]]:
        return [
            {key: ref for key in ("subject", "preheader") if (ref := getattr(v, key)) is not None}
            for v in self.variants
        ]

    def variant_test(self) -> VariantTestIn | None:
        return self.test

    def written_at(self) -> dict[str, str]:
        return {} if self.audience is None else {"audience": "audience"}

    def audience_tags(self) -> list[str] | None:
        return None if self.audience is None else list(self.audience.tags)

    @classmethod
    def account_problem(cls, external_id: str) -> str | None:
        why = valid_address(external_id)
        return None if why is None else f"the sender address {external_id!r} is not valid: {why}"


def _build(settings: EmailSettings, services: ChannelServices) -> EmailAdapter:
    return email_adapter_from_settings(settings)


SPEC = ChannelSpec(
    kind=EmailLimits.kind,
    label_th="อีเมล",
    label_en="Email",
    colour="#1e8a44",
    utm_source="email",
    utm_medium="email",
    campaign_model=EmailIn,
    limits=EmailLimits,
    content=EmailContent,
    capabilities=frozenset({Capability.SEND_TO_MANY}),
    settings_model=EmailSettings,
    factory=_build,
    signs_links=True,
)
