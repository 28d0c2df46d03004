"""Email over SMTP: the channel, split by concern.

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

Modules: :mod:`~channels.email.limits` (what a message may hold, merge slots),
:mod:`~channels.email.identity` (addresses, Message-ID), :mod:`~channels.email.html_text`
(text from HTML, tracked links, footer and pixel), :mod:`~channels.email.mime` (headers, MIME,
wire bytes), :mod:`~channels.email.dkim` (signing), :mod:`~channels.email.smtp` (one session
per batch) and :mod:`~channels.email.adapter` (the adapter, its settings and its spec).
Callers import from ``channels.email``.
"""

from __future__ import annotations

from channels.base import Recipient
from channels.email.adapter import (
    SPEC,
    Audience,
    AudienceIn,
    EmailAdapter,
    EmailContent,
    EmailIn,
    EmailSettings,
    email_adapter_from_settings,
)
from channels.email.dkim import DKIM_SIGNED_HEADERS, DkimKey, dkim_signature
from channels.email.html_text import (
    UNSUBSCRIBE_FOOTER_HTML,
    UNSUBSCRIBE_FOOTER_TEXT,
    click_targets,
    rewrite_links,
    text_from_html,
)
from channels.email.identity import message_id_for, parse_message_id
from channels.email.limits import (
    MERGE_FIELDS,
    SLOT_PATTERN,
    EmailLimits,
    display_text,
    merge_slot,
    valid_address,
)
from channels.email.mime import LIST_UNSUBSCRIBE_POST, CampaignEmail, OutgoingEmail, wire_bytes
from channels.email.smtp import EmailSession

__all__ = [
    "Audience",
    "AudienceIn",
    "CampaignEmail",
    "DKIM_SIGNED_HEADERS",
    "DkimKey",
    "EmailAdapter",
    "EmailContent",
    "EmailIn",
    "EmailLimits",
    "EmailSession",
    "EmailSettings",
    "LIST_UNSUBSCRIBE_POST",
    "MERGE_FIELDS",
    "OutgoingEmail",
    "Recipient",
    "SLOT_PATTERN",
    "SPEC",
    "UNSUBSCRIBE_FOOTER_HTML",
    "UNSUBSCRIBE_FOOTER_TEXT",
    "click_targets",
    "display_text",
    "dkim_signature",
    "email_adapter_from_settings",
    "merge_slot",
    "message_id_for",
    "parse_message_id",
    "rewrite_links",
    "text_from_html",
    "valid_address",
    "wire_bytes",
]
