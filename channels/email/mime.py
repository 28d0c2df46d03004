"""The message itself: headers folded safely for Thai, the MIME structure written
directly, and the exact bytes that go to the relay."""

from __future__ import annotations

import base64
import functools
import io
import random
import sys
from dataclasses import dataclass
from email import policy
from email.generator import BytesGenerator
from email.header import Header as LegacyHeader
from email.headerregistry import (
    BaseHeader,
    HeaderRegistry,
    UniqueAddressHeader,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import Policy

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
    lines = text.encode("utf-8").splitlines()
    data = b"\r\n".join(lines) + b"\r\n" if lines else b""
    # base64.encodebytes: lines of 76 characters (57 bytes each), as the email package makes
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + encoded
        + b"\r\n"
    )


def wire_bytes(message: EmailMessage) -> bytes:
    """``message`` exactly as it goes over SMTP (CRLF line endings)."""
    if isinstance(message, CampaignEmail) and message.wire:
        return message.wire
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=message.policy).flatten(message, linesep="\r\n")
    return buffer.getvalue()
