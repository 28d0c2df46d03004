"""The words of notification e-mails and of the e-mail sender test, in the reader's language.

Pure: values in, text out (no database, no network).  The wording lives here, under
``marketing/web``, so Babel extracts it with the pages' messages and ``test_web_cli`` checks
every message has its Thai translation.  Nothing secret is ever given to these functions:
an event's detail holds names, states and times, never a token or a channel's raw error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from marketing.models import NotificationKind
from marketing.web import wording
from marketing.web.i18n import Clock, translations
from marketing.web.rendering import HEALTH_LABELS, STATE_LABELS, channel_labels


@dataclass(frozen=True)
class EventView:
    """One event as a digest lists it."""

    kind: NotificationKind
    object_id: str
    occurred_at: datetime
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str


def kind_labels(language: str) -> dict[str, str]:
    """What each notification kind is called on the settings page."""
    _ = translations(language).gettext
    return {
        NotificationKind.ACCOUNT_RECONNECT.value: _("A channel account needs reconnecting"),
        NotificationKind.ACCOUNT_EXPIRING.value: _("A channel account's token expires soon"),
        NotificationKind.POST_PROBLEM.value: _("A post failed or its outcome is unknown"),
        NotificationKind.DRAFT_WAITING.value: _("A campaign waits for approval"),
        NotificationKind.YOUTUBE_QUOTA.value: _("The day's YouTube quota is spent"),
    }


def _line(event: EventView, *, language: str, clock: Clock, base_url: str, link: str | None) -> str:
    _ = translations(language).gettext
    d = event.detail
    channel = channel_labels(language).get(str(d.get("channel", "")), str(d.get("channel", "")))
    when = clock.when(event.occurred_at)
    if event.kind in (NotificationKind.ACCOUNT_RECONNECT, NotificationKind.ACCOUNT_EXPIRING):
        if event.kind == NotificationKind.ACCOUNT_EXPIRING:
            state = _("its token stops working %(time)s") % {
                "time": clock.when(datetime.fromisoformat(str(d["ends"]))) if d.get("ends") else "-"
            }
        else:
            health = HEALTH_LABELS[language].get(str(d.get("health")), str(d.get("health")))
            state = f"{health} ({when})"
        lines = [
            f"- {d.get('name', '')} ({channel}, {d.get('community') or _('programme-wide')}): "
            f"{state}",
            "  " + _("Reconnect it yourself: %(url)s") % {"url": base_url + str(d.get("page", ""))},
        ]
        if link is not None:
            lines.append(
                "  "
                + _(
                    "Or send its owner this link (single use, no staff account needed, "
                    "valid for 7 days): %(url)s"
                )
                % {"url": link}
            )
        return "\n".join(lines)
    if event.kind == NotificationKind.POST_PROBLEM:
        state = STATE_LABELS[language].get(str(d.get("state")), str(d.get("state")))
        return (
            f"- {d.get('campaign', '')} / {d.get('community', '')} / {channel}: {state} "
            f"({when})\n  {base_url}/posts/{event.object_id}"
        )
    if event.kind == NotificationKind.DRAFT_WAITING:
        return (
            f"- {d.get('campaign', '')} "
            + _("(applied by %(name)s)") % {"name": d.get("created_by") or "-"}
            + f" ({when})\n  {base_url}/campaigns/{d.get('slug', '')}"
        )
    return "- " + _(
        "YouTube quota day %(day)s: spent at %(time)s; uploads wait until %(reset)s"
    ) % {
        "day": d.get("day", ""),
        "time": when,
        "reset": clock.when(datetime.fromisoformat(str(d["reset"]))) if d.get("reset") else "-",
    }


def digest_mail(
    *,
    kind: NotificationKind,
    events: Sequence[EventView],
    name: str,
    language: str,
    clock: Clock,
    window_start: datetime,
    base_url: str,
    links: Mapping[str, str] | None = None,
) -> Mail:
    """The digest of ``events`` (all of ``kind``) for one person; ``links`` maps an account id
    to the delegated reconnect link made for this mail."""
    _ = translations(language).gettext
    base_url = base_url.rstrip("/")
    count = len(events)
    subjects = {
        NotificationKind.ACCOUNT_RECONNECT: _("Channel accounts need reconnecting (%(count)s)"),
        NotificationKind.ACCOUNT_EXPIRING: _(
            "Channel accounts to reconnect before their token expires (%(count)s)"
        ),
        NotificationKind.POST_PROBLEM: _("Posts that failed or are unconfirmed (%(count)s)"),
        NotificationKind.DRAFT_WAITING: _("Campaigns waiting for your approval (%(count)s)"),
        NotificationKind.YOUTUBE_QUOTA: _("The day's YouTube quota is spent"),
    }
    intros = {
        NotificationKind.ACCOUNT_RECONNECT: _(
            "These channel accounts can no longer publish: their token expired or was "
            "revoked. Their posts wait until the account is reconnected."
        ),
        NotificationKind.ACCOUNT_EXPIRING: _(
            "These channel accounts still publish, but their token has a known end within "
            "days. Reconnect them before then, or their posts will wait."
        ),
        NotificationKind.POST_PROBLEM: _(
            "These posts need a person: a failed post will not be tried again by itself; an "
            "unconfirmed one may be on the channel already, so check the channel before "
            "retrying it."
        ),
        NotificationKind.DRAFT_WAITING: _(
            "These campaigns were applied and wait for approval before anything is published."
        ),
        NotificationKind.YOUTUBE_QUOTA: _(
            "YouTube refused more uploads today: the project's daily quota is spent. Uploads "
            "wait and go out by themselves after the quota resets."
        ),
    }
    header = _("Hello %(name)s,") % {"name": name}
    period = _("Between %(start)s and %(end)s:") % {
        "start": clock.when(window_start),
        "end": clock.clock(window_start + timedelta(hours=1)),
    }
    body = [
        header,
        "",
        intros[kind],
        "",
        period,
        *(
            _line(
                event,
                language=language,
                clock=clock,
                base_url=base_url,
                link=(links or {}).get(event.object_id),
            )
            for event in events
        ),
        "",
        _(
            "You get at most one such e-mail an hour. Choose what you receive on your "
            "settings page: %(url)s"
        )
        % {"url": f"{base_url}/account#notifications"},
    ]
    subject = "[GLO] " + subjects[kind] % {"count": count}
    return Mail(subject=subject, text="\n".join(body) + "\n")


def test_mail(*, language: str, sender: str, clock: Clock, now: datetime) -> Mail:
    """The e-mail sender test's message."""
    _ = translations(language).gettext
    return Mail(
        subject="[GLO] " + _("E-mail sender test"),
        text=_(
            "This message tests the e-mail relay and the sender address %(sender)s. It "
            "arrived, so campaign e-mail can be sent from this address. (Sent %(time)s.)"
        )
        % {"sender": sender, "time": clock.when(now)}
        + "\n",
    )


def relay_error_message(code: str | None, *, language: str) -> str:
    """What a refusal of the relay (a ``channels.errors`` code) means and what to do."""
    _ = translations(language).gettext
    code = wording.reason_of(code or "")
    if code in ("smtp-530", "smtp-534", "smtp-535", "smtp-538"):
        return _(
            "The relay refused the sign-in. Check MARKETING_SMTP_USERNAME and "
            "MARKETING_SMTP_PASSWORD (and MARKETING_SMTP_SECURITY), then restart the service."
        )
    if code in ("smtp-connect", "smtp-disconnected"):
        return _(
            "The relay could not be reached. Check MARKETING_SMTP_HOST and "
            "MARKETING_SMTP_PORT, and that the relay is running; then try again."
        )
    if code in ("smtp-no-starttls", "smtp-not-supported", "smtp-certificate"):
        return _(
            "The connection to the relay could not be secured as configured. Check "
            "MARKETING_SMTP_SECURITY and the port (STARTTLS: usually 587; SSL: 465)."
        )
    if code in ("invalid-sender", "invalid-address"):
        return _(
            "An address is not valid. Check the sender address (MARKETING_EMAIL_FROM or the "
            "e-mail account) and the address you are sending the test to."
        )
    if code == "smtp-no-answer":
        return _(
            "The relay took the message but did not answer. Look in the inbox before trying again."
        )
    if code.startswith("smtp-5"):
        return _(
            "The relay refused the message for good. It often refuses a sender address it "
            "does not allow: check MARKETING_EMAIL_FROM with the relay's administrator."
        )
    return _("The relay could not take the message now. Try again in a few minutes.")
