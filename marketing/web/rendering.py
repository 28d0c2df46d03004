"""Server-rendered pages: one Jinja2 environment per interface language, and flash messages.

Templates live in ``templates/``; they are autoescaped and strict (a missing variable is an
error, not an empty string).  Each language has its own environment with its gettext catalog
installed (``{% trans %}`` and ``_()``), so rendering never switches a shared environment's
language under another request.
"""

from __future__ import annotations

from datetime import date
from functools import cache, partial
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from channels import registry
from channels.base import Capability
from marketing.models import Role, User
from marketing.placeholders import readable, readable_content
from marketing.reports import labels
from marketing.web import wording
from marketing.web.deps import csrf_token, settings_of
from marketing.web.i18n import LANGUAGES, Clock, language_of, translations

TEMPLATES = Path(__file__).with_name("templates")


def channel_can(kind: str, capability: str) -> bool:
    """Whether channel ``kind`` can do ``capability`` (a :class:`Capability` value)."""
    return registry.spec_for(kind).can(Capability(capability))


def channel_media_keys(kind: str) -> tuple[str, ...]:
    """The content keys of channel ``kind`` that name a media file."""
    return registry.spec_for(kind).media_keys


def channel_labels(language: str) -> dict[str, str]:
    """kind -> the channel's name in ``language`` (from its spec)."""
    return registry.labels(language)


STATE_LABELS = {
    "th": labels.STATE_TH,
    "en": {
        "scheduled": "scheduled",
        "queued": "queued",
        "publishing": "publishing",
        "published": "published",
        "failed": "failed",
        "unconfirmed": "unconfirmed",
        "needs_reconnect": "needs reconnect",
        "cancelled": "cancelled",
    },
}
CAMPAIGN_STATUS_LABELS = {
    "th": labels.CAMPAIGN_STATUS_TH,
    "en": {
        "draft": "draft (awaiting approval)",
        "approved": "approved",
        "paused": "paused",
        "cancelled": "cancelled",
        "completed": "completed",
    },
}
ROLE_LABELS = {
    "th": {
        "viewer": "ผู้ดู",
        "editor": "ผู้แก้ไข",
        "approver": "ผู้อนุมัติ",
        "admin": "ผู้ดูแลระบบ",
    },
    "en": {r.value: r.value for r in Role},
}
HEALTH_LABELS = {
    "th": {
        "ok": "ปกติ",
        "needs_reconnect": "ต้องเชื่อมต่อใหม่",
        "permission_lost": "สิทธิ์ถูกถอน",
        "unknown": "ไม่ทราบ",
    },
    "en": {
        "ok": "ok",
        "needs_reconnect": "needs reconnecting",
        "permission_lost": "permission lost",
        "unknown": "unknown",
    },
}

# The pipeline's components as the dashboard names them.
COMPONENT_LABELS = {
    "th": {
        "dispatcher": "ตัวจัดคิวโพสต์",
        "recovery": "ตัวกู้คืนงานค้าง",
        "worker": "ตัวเผยแพร่",
        "metrics": "ตัวเก็บสถิติ",
    },
    "en": {
        "dispatcher": "dispatcher",
        "recovery": "recovery",
        "worker": "worker",
        "metrics": "metrics collector",
    },
}


@cache
def environment(language: str) -> Environment:
    """The template environment of ``language``."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    gettext = translations(language).gettext
    env.globals.update(
        channel_label=channel_labels(language),
        channel_can=channel_can,
        channel_media_keys=channel_media_keys,
        state_label=STATE_LABELS[language],
        campaign_status_label=CAMPAIGN_STATUS_LABELS[language],
        role_label=ROLE_LABELS[language],
        health_label=HEALTH_LABELS[language],
        languages=LANGUAGES,
        integer=labels.integer,
        percent=labels.percent,
        rate=partial(labels.rate, en=language == "en"),
        component_label=COMPONENT_LABELS[language],
        readable_content=partial(readable_content, language=language),
        explain=partial(wording.explain, _=gettext),
        outcome_label=partial(wording.outcome_label, _=gettext),
        zone_name=partial(wording.zone_name, _=gettext),
        sort_label=partial(wording.sort_label, _=gettext),
        health_advice=partial(wording.health_advice, _=gettext),
        problem_text=partial(wording.problem_text, _=gettext),
        audit_sentence=partial(wording.audit_sentence, _=gettext),
        audit_details=partial(wording.audit_details, _=gettext),
        people_label=partial(wording.people_label, _=gettext),
        consent_label=partial(wording.consent_label, _=gettext),
        media_kind_label=partial(wording.media_kind_label, _=gettext),
    )
    env.filters["readable"] = partial(readable, language=language)
    return env


def clock_for(request: Request, user: User | None) -> Clock:
    """How ``user`` reads dates (Thai and Buddhist era for a visitor)."""
    return Clock(
        language=language_of(user.language if user else None),
        buddhist_era=user.buddhist_era if user else True,
        zone=settings_of(request).zone,
    )


def day_input_problem(request: Request, user: User | None, text: str) -> str:
    """What is wrong with ``text`` typed as a day, in ``user``'s language and era."""
    _ = gettext_for(user)
    clock = clock_for(request, user)
    return str(
        _("“%(text)s” is not a date: write day/month/year (%(era)s), e.g. %(example)s.")
        % {
            "text": text[:40],
            "era": _("Buddhist era") if clock.buddhist_era else _("Common era"),
            "example": clock.typed(date(2026, 12, 25)),
        }
    )


def parse_day_input(request: Request, user: User | None, text: str) -> date:
    """A day ``user`` typed into a form (``dd/mm/yyyy`` in their era; ISO from the app's own
    links); 400 with :func:`day_input_problem` if it is none."""
    try:
        return clock_for(request, user).parse_typed(text)
    except ValueError:
        raise HTTPException(400, day_input_problem(request, user, text)) from None


def gettext_for(user: User | None) -> Any:
    """The gettext function of ``user``'s language, for messages made in Python."""
    return translations(language_of(user.language if user else None)).gettext


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """Show ``message`` on the next page this browser opens."""
    # Assigned, not appended: the session is saved only when one of its keys is set.
    request.session["flash"] = [*request.session.get("flash", []), [kind, message]]


def render(
    request: Request,
    template: str,
    *,
    user: User | None,
    status_code: int = 200,
    public: bool = False,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered for ``user`` in their language.  ``public`` pages (the email
    endpoints') leave the session alone, so they set no cookie."""
    language = language_of(user.language if user else None)
    messages = [] if public else request.session.pop("flash", [])
    html = (
        environment(language)
        .get_template(template)
        .render(
            request=request,
            user=user,
            lang=language,
            clock=clock_for(request, user),
            csrf="" if public else csrf_token(request),
            flashes=messages,
            path=request.url.path,
            Role=Role,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)
