"""What a campaign e-mail may hold (limits, checked without I/O) and its merge slots."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from email_validator import EmailNotValidError, validate_email

from channels.base import (
    Adapter,
    ContentProblem,
)
from channels.media import TEMPLATE_SUFFIXES

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
    template_suffixes: ClassVar[frozenset[str]] = TEMPLATE_SUFFIXES  # media library templates

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
