"""Email over SMTP.

Content keys (``Post.content`` for an email post):

===============  =======================================================================
``subject``      subject line (required; one line, at most ``subject_max_chars``)
``preheader``    preview text shown after the subject in inboxes (optional)
``html``         HTML body (required)
``text``         plain-text body (optional; derived from the HTML when absent)
``sender_name``  display name of the sender (the address is the channel account's)
``reply_to``     a reply address (optional)
``audience``     which subscribers: ``{"tags": [...]}`` to keep only those with any of the
                 tags; absent: every consenting subscriber of the community
===============  =======================================================================

Per-subscriber personalisation: the rendered content holds *merge slots*
(:func:`merge_slot`) that the adapter fills for each recipient -- ``name``, ``email`` and
``unsubscribe_url``.  Slots are private-use characters, so nothing a person types can be
mistaken for one.

Sending (see ``docs/channels/email.md``): :meth:`EmailAdapter.build_message` turns content
into one message per :class:`Recipient` without any I/O -- text and HTML alternatives, merge
slots filled, click links rewritten to signed tracking links, an open pixel, RFC 8058
one-click unsubscribe headers, an optional DKIM signature -- and
:meth:`EmailAdapter.connect` opens one SMTP connection that :meth:`EmailSession.send`
reuses for a whole batch.  Consent is the caller's job: only consenting subscribers are
ever passed in.  Every message's ``Message-ID`` carries the post's marker and the
subscriber id (:func:`message_id_for`), so a message can be recognised later.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import html as html_lib
import io
import ipaddress
import logging
import random
import re
import smtplib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.header import Header as LegacyHeader
from email.headerregistry import (
    Address,
    BaseHeader,
    HeaderRegistry,
    UniqueAddressHeader,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from email.policy import Policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any, ClassVar, Required, TypedDict
from urllib.parse import urlsplit

import dkim as dkimpy
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import (
    Adapter,
    BulkSender,
    Capability,
    ChannelServices,
    ChannelSpec,
    ContentProblem,
)
from channels.base import Recipient as Recipient  # re-exported: callers name it here
from channels.campaign_input import ChannelInput, TemplateField, Text
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)
from channels.tracking import TrackingLinks

log = logging.getLogger(__name__)

MERGE_FIELDS = ("name", "email", "unsubscribe_url")
_SLOT_OPEN, _SLOT_CLOSE = "\ue000", "\ue001"
SLOT_PATTERN = re.compile(f"{_SLOT_OPEN}([a-z_]+){_SLOT_CLOSE}")


def merge_slot(name: str) -> str:
    """The marker that stands for a recipient's ``name`` in rendered content."""
    if name not in MERGE_FIELDS:
        raise ValueError(f"unknown merge field {name!r}; known: {', '.join(MERGE_FIELDS)}")
    return f"{_SLOT_OPEN}{name}{_SLOT_CLOSE}"


def display_text(text: str, labels: Mapping[str, str]) -> str:
    """``text`` for a person reading stored content rather than a recipient: each merge slot
    becomes ``labels[field]`` (the field's own name when ``labels`` lacks it), and no slot
    marker is left over."""
    shown = SLOT_PATTERN.sub(lambda slot: labels.get(slot.group(1), slot.group(1)), text)
    return shown.replace(_SLOT_OPEN, "").replace(_SLOT_CLOSE, "")


def valid_address(address: str) -> str | None:
    """None if ``address`` is a valid email address, else why not."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


class EmailLimits(Adapter):
    """Campaign email: limits as data, checked without I/O."""

    kind: ClassVar[str] = "email"
    service_name: ClassVar[str] = "Email"
    subject_max_chars: ClassVar[int] = 200
    preheader_max_chars: ClassVar[int] = 250
    sender_name_max_chars: ClassVar[int] = 100
    html_max_bytes: ClassVar[int] = 1024 * 1024

    @classmethod
    def content_problems(cls, content: Mapping[str, Any]) -> list[ContentProblem]:
        problems = []
        for key, limit, required in (
            ("subject", cls.subject_max_chars, True),
            ("preheader", cls.preheader_max_chars, False),
            ("sender_name", cls.sender_name_max_chars, False),
        ):
            value = content.get(key)
            if value is None or value == "":
                if required:
                    problems.append(ContentProblem(key, "is empty"))
                continue
            text = str(value)
            if "\r" in text or "\n" in text:
                problems.append(ContentProblem(key, "must be one line"))
            if len(text) > limit:
                problems.append(ContentProblem(key, f"is {len(text)} characters; limit {limit}"))
        html = content.get("html")
        if not isinstance(html, str) or not html.strip():
            problems.append(ContentProblem("html", "is empty"))
        elif len(html.encode("utf-8")) > cls.html_max_bytes:
            problems.append(ContentProblem("html", f"is larger than {cls.html_max_bytes:,} bytes"))
        reply_to = content.get("reply_to")
        if reply_to and (why := valid_address(str(reply_to))):
            problems.append(ContentProblem("reply_to", f"{reply_to!r} is not valid: {why}"))
        for key in ("subject", "preheader", "html", "text"):
            for name in SLOT_PATTERN.findall(str(content.get(key) or "")):
                if name not in MERGE_FIELDS:
                    problems.append(ContentProblem(key, f"unknown merge field {name!r}"))
        return problems


# --- message identity -----------------------------------------------------------------

# A marker (the post's idempotency key) must be usable as the left part of a Message-ID.
_MARKER = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_MESSAGE_ID = re.compile(r"<([A-Za-z0-9_.-]+)\.(\d+)@[^<>@\s]+>")


def message_id_for(marker: str, subscriber_id: int, domain: str) -> str:
    """The ``Message-ID`` of the message of post ``marker`` to subscriber ``subscriber_id``.

    Deterministic: sending the same post to the same subscriber again gives the same id,
    which lets receivers drop a duplicate and lets :func:`parse_message_id` recover both.
    """
    if not _MARKER.fullmatch(marker):
        raise ValueError(
            f"marker {marker!r} cannot go in a Message-ID: use letters, digits, '-', '_' "
            "and single dots only"
        )
    return f"<{marker}.{subscriber_id}@{domain}>"


def parse_message_id(value: str) -> tuple[str, int] | None:
    """``(marker, subscriber_id)`` from a ``Message-ID`` made by :func:`message_id_for`,
    or None for any other id."""
    found = _MESSAGE_ID.fullmatch(value.strip())
    if found is None:
        return None
    return found.group(1), int(found.group(2))


# --- HTML and text ----------------------------------------------------------------------


class _TextFromHtml(HTMLParser):
    """Plain text of an HTML email: blocks become paragraphs, links keep their address."""

    _BLOCKS = frozenset(
        {
            *("address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"),
            *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li"),
            *("main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot"),
            *("th", "thead", "tr", "ul"),
        }
    )
    _HIDDEN = frozenset({"head", "script", "style", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n\n- ")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self._hidden:
                self.parts.append(alt)
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":  # <a/> has no text; everything else is as if opened
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(self._hidden - 1, 0)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            target = (href or "").strip()
            if target.startswith("mailto:"):
                target = target[len("mailto:") :].split("?", 1)[0]
            label = "".join(self.parts[start:])
            if target and not target.startswith("#") and target not in label:
                self.parts.append(f" ({target})")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


@functools.lru_cache(maxsize=16)
def text_from_html(html: str) -> str:
    """The plain-text alternative of an HTML email (merge slots pass through untouched)."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


class _Anchors(HTMLParser):
    """Where each ``<a>`` start tag is in the source, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[tuple[int, int], str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append((self.getpos(), self.get_starttag_text() or "", attrs))

    handle_startendtag = handle_starttag


_Anchor = tuple[int, str, list[tuple[str, str | None]]]


@functools.lru_cache(maxsize=16)
def _anchors(html: str) -> tuple[_Anchor, ...]:
    """Each ``<a>`` start tag of ``html``: (offset, source text, attributes), parsed once
    per distinct HTML (a campaign email is rewritten once per recipient)."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    line_starts = [0]
    for line in html.split("\n")[:-1]:
        line_starts.append(line_starts[-1] + len(line) + 1)
    found = []
    for (lineno, column), source, attrs in parser.found:
        start = line_starts[lineno - 1] + column
        if html[start : start + len(source)] == source:  # never rewrite what we cannot place
            found.append((start, source, attrs))
    return tuple(found)


@functools.lru_cache(maxsize=16)
def _links_hold_slots(html: str) -> bool:
    """Whether any link address of ``html`` holds a merge slot."""
    return any(
        name == "href" and value is not None and SLOT_PATTERN.search(value)
        for _start, _source, attrs in _anchors(html)
        for name, value in attrs
    )


def rewrite_links(html: str, rewrite: Callable[[str], str | None]) -> str:
    """``html`` with each ``<a href>`` replaced by ``rewrite(href)`` (None: keep it).

    Only the start tags of links change; everything else stays byte for byte.
    """
    pieces: list[str] = []
    done = 0
    for start, source, attrs in _anchors(html):
        new_attrs = []
        changed = False
        for name, value in attrs:
            if name == "href" and value is not None:
                replacement = rewrite(value.strip())
                if replacement is not None:
                    value, changed = replacement, True
            new_attrs.append((name, value))
        if not changed:
            continue
        rendered = "".join(
            f" {name}" if value is None else f' {name}="{html_lib.escape(value, quote=True)}"'
            for name, value in new_attrs
        )
        closing = "/>" if source.rstrip().endswith("/>") else ">"
        pieces += [html[done:start], f"<a{rendered}{closing}"]
        done = start + len(source)
    pieces.append(html[done:])
    return "".join(pieces)


def _is_web_link(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def click_targets(
    content: Mapping[str, Any], recipient: Recipient, *, unsubscribe_url: str
) -> frozenset[str]:
    """Every address a click link in this post's email to ``recipient`` can lead to: the
    http(s) links of its HTML with the recipient's merge fields filled in, as
    :meth:`EmailAdapter.render` signs them.  The click endpoint redirects only to these, so
    even a forged token cannot send a reader to a site the post never linked to."""
    try:
        email = _validated(recipient.email).normalized
    except EmailNotValidError:
        return frozenset()  # no email could have been sent to this address
    values = {"name": recipient.name, "email": email, "unsubscribe_url": unsubscribe_url}
    found = set()
    for _start, _source, attrs in _anchors(str(content.get("html") or "")):
        for name, value in attrs:
            if name == "href" and value is not None:
                url = SLOT_PATTERN.sub(lambda slot: values[slot.group(1)], value).strip()
                if _is_web_link(url) and url != unsubscribe_url:
                    found.add(url)
    return frozenset(found)


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def _after_body_open(html: str, snippet: str) -> str:
    found = _BODY_OPEN.search(html)
    if found is None:
        return snippet + html
    return html[: found.end()] + snippet + html[found.end() :]


def _before_body_close(html: str, snippet: str) -> str:
    closes = list(_BODY_CLOSE.finditer(html))
    if not closes:
        return html + snippet
    at = closes[-1].start()
    return html[:at] + snippet + html[at:]


# Shown in the footer when the content has no unsubscribe_url slot of its own: Thai law
# (Computer Crime Act, 2017 amendment) requires a way to opt out of marketing email.
UNSUBSCRIBE_FOOTER_HTML = (
    '<p style="font-size:12px;color:#666666;margin-top:24px">'
    "ไม่ต้องการรับอีเมลจากเราอีก? "
    f'<a href="{merge_slot("unsubscribe_url")}">ยกเลิกการรับข่าวสาร (unsubscribe)</a></p>'
)
UNSUBSCRIBE_FOOTER_TEXT = f"\n--\nยกเลิกการรับข่าวสาร (unsubscribe): {merge_slot('unsubscribe_url')}\n"
# Hidden preview text: inboxes show the first text of the body next to the subject.
_PREHEADER_HTML = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all">{}</div>'
)
_PIXEL_HTML = (
    '<img src="{}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


# --- configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key: ``d=`` domain, ``s=`` selector and the PEM private key."""

    domain: str
    selector: str
    private_key: SecretStr = field(repr=False)

    @classmethod
    def from_file(cls, *, domain: str, selector: str, path: Path) -> DkimKey:
        """The key in the PEM file at ``path`` (RSA, PKCS#1 or PKCS#8)."""
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"cannot read the DKIM private key {path}: {exc}; "
                "set MARKETING_DKIM_PRIVATE_KEY_FILE to a readable PEM file"
            ) from None
        return cls(domain=domain, selector=selector, private_key=SecretStr(pem))


# Covered by the signature: what a receiver shows and what RFC 8058 requires to be signed.
DKIM_SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """An ASCII header the email package must not re-encode -- the List-Unsubscribe URLs,
    the DKIM signature -- folded only at its own spaces (RFC 5322 section 2.2.3)."""

    def fold(self, *, policy: Policy) -> str:
        return _fold_at_spaces(self.name, str(self), policy.linesep)


def _fold_at_spaces(name: str, value: str, linesep: str) -> str:
    """``name: value`` folded only at the value's own spaces, at 78 characters a line."""
    lines: list[str] = []
    line, has_word = f"{name}:", False
    for word in value.split(" "):
        if has_word and len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = ""
        line += " " + word
        has_word = True
    lines.append(line)
    return linesep.join(lines) + linesep


def _encoded_words(text: str, *, header_name: str, policy: Policy) -> str:
    """``text`` as RFC 2047 encoded words of at most 75 characters, folded between words.

    Whitespace between two encoded words is dropped when they are decoded (RFC 2047
    section 6.2), so every space of the text must sit inside a word.  The legacy
    ``email.header`` encoder does that; the modern folder of Python 3.11 sometimes leaves
    a space between two words and so loses it (python/cpython gh-144156): "สมชาย <ใจดี>"
    arrived as "สมชาย<ใจดี>".
    """
    return LegacyHeader(text, "utf-8", header_name=header_name).encode(linesep=policy.linesep)


# BaseHeader is listed so fold() may use self.name (HeaderRegistry mixes it in anyway);
# typeshed's stubs disagree with it about max_count and init, hence the ignores.
class _ThaiSafeSubject(UniqueUnstructuredHeader, BaseHeader):  # type: ignore[misc]
    """The Subject, encoded by :func:`_encoded_words` when it is not ASCII."""

    def fold(self, *, policy: Policy) -> str:
        if str(self).isascii() or getattr(policy, "utf8", False):
            return super().fold(policy=policy)
        words = _encoded_words(str(self), header_name=self.name, policy=policy)
        return f"{self.name}: {words}{policy.linesep}"


class _ThaiSafeAddresses(UniqueAddressHeader, BaseHeader):  # type: ignore[misc]
    """From, To, Reply-To: display names that are not ASCII go as :func:`_encoded_words`
    (the modern folder can split a Thai name between words, losing or adding a space)."""

    def fold(self, *, policy: Policy) -> str:
        names = [address.display_name for address in self.addresses]
        if all(name.isascii() for name in names) or getattr(policy, "utf8", False):
            return super().fold(policy=policy)
        rendered = []
        for address in self.addresses:
            if address.display_name.isascii():
                rendered.append(str(address))
            else:
                words = _encoded_words(address.display_name, header_name=self.name, policy=policy)
                rendered.append(f"{words} <{address.addr_spec}>")
        return f"{self.name}: {', '.join(rendered)}{policy.linesep}"


class _ReusingHeaderRegistry(HeaderRegistry):
    """A HeaderRegistry that makes each header class once (the stock one makes a new class
    for every header of every message: about half of build_message's time)."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._classes.pop(name.lower(), None)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


_HEADERS = _ReusingHeaderRegistry()
for _name in ("List-Unsubscribe", "List-Unsubscribe-Post", "DKIM-Signature"):
    _HEADERS.map_to_type(_name, _VerbatimHeader)
_HEADERS.map_to_type("Subject", _ThaiSafeSubject)
for _name in ("From", "To", "Reply-To"):
    _HEADERS.map_to_type(_name, _ThaiSafeAddresses)
# Bodies are base64 or quoted-printable (7bit), so any relay takes them without 8BITMIME.
_POLICY = policy.SMTP.clone(cte_type="7bit", header_factory=_HEADERS)
# Addresses with a non-ASCII local part need SMTPUTF8 (RFC 6531/6532): headers go as UTF-8.
_POLICY_UTF8 = _POLICY.clone(utf8=True)


class CampaignEmail(EmailMessage):
    """A message as :meth:`EmailAdapter.build_message` made it, with the exact bytes to send.

    ``wire`` is final -- it is what the DKIM signature covers -- and it is what
    :meth:`EmailSession.send` transmits, so changing the object afterwards sends nothing
    different: build a new message instead.
    """

    wire: bytes = b""
    envelope_sender: str = ""
    envelope_recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutgoingEmail:
    """A message as it goes to the relay: its exact bytes (what DKIM signed) and envelope."""

    wire: bytes
    envelope_sender: str
    envelope_recipients: tuple[str, ...]
    message_id: str
    smtputf8: bool = False  # an address is not ASCII: the relay must offer SMTPUTF8


@functools.lru_cache(maxsize=4096)
def _folded(policy: Policy, name: str, value: str) -> bytes:
    """``name: value`` as the header classes above fold it (the same sender, subject or
    name comes again and again in a campaign, so each is folded once)."""
    header = policy.header_factory(name, value)  # type: ignore[attr-defined]
    folded: str = header.fold(policy=policy)
    return folded.encode("utf-8" if getattr(policy, "utf8", False) else "ascii")


def _boundary() -> str:
    """A multipart boundary like the email package's; it cannot occur in base64 text."""
    return f"{'=' * 15}{random.randrange(sys.maxsize):019d}=="


def _text_part(boundary: str, subtype: str, text: str) -> bytes:
    """One part of the alternative: UTF-8 text with CRLF line ends, in base64 lines of 76."""
    data = b"".join(line + b"\r\n" for line in text.encode("utf-8").splitlines())
    encoded = b"".join(
        binascii.b2a_base64(data[i : i + 57]).replace(b"\n", b"\r\n")
        for i in range(0, len(data), 57)
    )
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + encoded
        + b"\r\n"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validated(address: str) -> ValidatedEmail:
    return validate_email(address, check_deliverability=False)


@functools.lru_cache(maxsize=64)
def _validated_sender(address: str) -> ValidatedEmail:
    """:func:`_validated` for the few sender addresses, each checked once."""
    return _validated(address)


def _wire_address(found: ValidatedEmail) -> str:
    """The address as sent: an IDN domain in its ASCII form; a non-ASCII local part stays
    UTF-8 (and needs SMTPUTF8)."""
    return found.ascii_email or found.normalized


def _address(display_name: str, found: ValidatedEmail) -> Address:
    # username/domain rather than addr_spec: a Thai local part is valid with SMTPUTF8, but
    # Address(addr_spec=...) refuses to parse it.
    return Address(
        display_name=display_name,
        username=found.local_part,
        domain=found.ascii_domain or found.domain,
    )


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text).strip()


_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


def dkim_signature(
    message: bytes,
    *,
    key: rsa.RSAPrivateKey,
    domain: bytes,
    selector: bytes,
    include_headers: list[bytes],
    timestamp: int | None = None,
) -> bytes:
    """The ``DKIM-Signature`` header line (CRLF-terminated) of ``message``: rsa-sha256,
    relaxed/relaxed (RFC 6376).

    dkimpy parses, canonicalises and hashes exactly as its own ``dkim.sign`` does; only the
    RSA step is done by OpenSSL (through ``cryptography``): dkimpy's pure-Python RSA took
    about 20 ms a message, most of ``build_message``'s time.
    """
    headers, body = dkimpy.rfc822_parse(message)
    include = [name.lower() for name in include_headers]
    body_hash = base64.b64encode(hashlib.sha256(_RELAXED.canonicalize_body(body)).digest())
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", _RELAXED.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", selector),
        (b"t", str(int(time.time() if timestamp is None else timestamp)).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", body_hash),
        (b"b", b"0" * 60),  # folded onto a line of its own, as dkimpy does
    ]
    name = b"DKIM-Signature"
    unsigned = dkimpy.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(name))
    unsigned = dkimpy.RE_BTAG.sub(b"\\1", unsigned)
    hasher = hashlib.sha256()
    dkimpy.hash_headers(
        hasher,
        _RELAXED,
        _RELAXED.canonicalize_headers(headers),
        include,
        (name, b" " + unsigned),
        dict(fields),
    )
    signature = key.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    fields[-1] = (b"b", base64.b64encode(signature))
    value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
    return name + b": " + bytes(dkimpy.fold(value, namelen=len(name), linesep=b"\r\n"))


# --- the adapter ----------------------------------------------------------------------


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


def wire_bytes(message: EmailMessage) -> bytes:
    """``message`` exactly as it goes over SMTP (CRLF line endings)."""
    if isinstance(message, CampaignEmail) and message.wire:
        return message.wire
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=message.policy).flatten(message, linesep="\r\n")
    return buffer.getvalue()


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

    def fixed(self) -> dict[str, Any]:
        return {} if self.audience is None else {"audience": {"tags": list(self.audience.tags)}}

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
