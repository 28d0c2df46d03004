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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from email_validator import EmailNotValidError, validate_email

from channels.base import Adapter, ContentProblem

MERGE_FIELDS = ("name", "email", "unsubscribe_url")
_SLOT_OPEN, _SLOT_CLOSE = "\ue000", "\ue001"
SLOT_PATTERN = re.compile(f"{_SLOT_OPEN}([a-z_]+){_SLOT_CLOSE}")


def merge_slot(name: str) -> str:
    """The marker that stands for a recipient's ``name`` in rendered content."""
    if name not in MERGE_FIELDS:
        raise ValueError(f"unknown merge field {name!r}; known: {', '.join(MERGE_FIELDS)}")
    return f"{_SLOT_OPEN}{name}{_SLOT_CLOSE}"


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
