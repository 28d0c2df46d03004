"""Stored post content as a person reading it sees it: each e-mail merge field as a label.

Rendered e-mail content keeps a marker per merge field (``channels.email.merge_slot``), filled
for each recipient when the e-mail is sent.  Those markers are private-use characters that
draw as boxes, so every place that shows stored content to staff -- the web pages, the
reports (HTML, terminal, CSV) and the CLI -- goes through :func:`readable` or
:func:`readable_content` and shows "[ชื่อผู้รับ]" instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Each merge field (channels.email.MERGE_FIELDS) as a reader of a preview or a list sees it.
MERGE_FIELD_LABELS = {
    "th": {
        "name": "[ชื่อผู้รับ]",
        "email": "[อีเมลผู้รับ]",
        "unsubscribe_url": "[ลิงก์ยกเลิกรับข่าวสาร]",
    },
    "en": {
        "name": "[recipient's name]",
        "email": "[recipient's e-mail]",
        "unsubscribe_url": "[unsubscribe link]",
    },
}


def readable(text: str, language: str = "th") -> str:
    """``text`` with its merge fields shown as labels in ``language`` ("th" or "en")."""
    # Imported here: channels.email loads the DKIM and SMTP machinery, which the CLI's
    # start-up and the reports need not pay for.
    from channels.email import display_text

    return display_text(text, MERGE_FIELD_LABELS.get(language, MERGE_FIELD_LABELS["th"]))


def readable_content(content: Mapping[str, Any], language: str = "th") -> dict[str, Any]:
    """A post's ``content`` with every text (also inside lists) made :func:`readable`."""

    def shown(value: Any) -> Any:
        if isinstance(value, str):
            return readable(value, language)
        if isinstance(value, list | tuple):
            return [shown(item) for item in value]
        return value

    return {key: shown(value) for key, value in content.items()}
