"""A campaign file as a form, and a form written back into the file.

Each field of the form is named by the path of the campaign file it edits, written as
problems name fields (``channels.youtube.title``), so a problem found by
:func:`marketing.web.campaign_files.check_campaign_text` -- the same check as
``marketing campaign validate`` -- is shown next to its field.  The form carries the text it
was made from (``base``); :func:`apply_form` writes only the fields whose submitted value
differs from what that text shows, through :class:`campaigns.yamledit.CampaignDocument`, so
comments, order and untouched values stay as they were written.

A template kept in a file (``html: {file: ...}``) is shown, not edited here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from campaigns.yamledit import CampaignDocument, as_date
from marketing.conventions import DEFAULT_TIMEZONE, SLUG_PATTERN
from marketing.problems import Path_, Problem


@dataclass(frozen=True)
class FieldSpec:
    name: str  # the form input's name: the field path as problems name it
    label: str  # msgid
    kind: str = "text"  # text, textarea, lines, select, checkbox, radio
    choices: tuple[str, ...] = ()
    example: str = ""  # what to type, shown as code (not words)
    template: bool = False  # may be {file: ...}


def N_(message: str) -> str:
    """A message to translate where it is shown (marks it for extraction)."""
    return message


def _channel(kind: str, specs: list[FieldSpec]) -> list[FieldSpec]:
    return [FieldSpec(f"channels.{kind}.enabled", N_("Post on this channel"), "checkbox"), *specs]


SECTIONS: list[tuple[str, list[FieldSpec]]] = [
    (
        N_("Campaign"),
        [
            FieldSpec("slug", N_("Short name (slug)"), example="songkran-2027"),
            FieldSpec("name", N_("Name")),
            FieldSpec("description", N_("Description"), "textarea"),
            FieldSpec("timezone", N_("Time zone"), example=DEFAULT_TIMEZONE),
            FieldSpec("window.start", N_("Starts"), example="2027-04-01T10:00+07:00"),
            FieldSpec("window.end", N_("Ends"), example="2027-04-20"),
        ],
    ),
    (
        N_("Communities"),
        [
            FieldSpec(
                "communities.mode", N_("Which communities"), "radio", ("all", "list", "tags")
            ),
            FieldSpec("communities.list", N_("Communities (one slug a line)"), "lines"),
            FieldSpec(
                "communities.tags", N_("Communities with any of these tags (one a line)"), "lines"
            ),
            FieldSpec(
                "highlights",
                N_("Highlights autopilot: post each community's next highlight"),
                "checkbox",
            ),
        ],
    ),
    (
        "Facebook",
        _channel(
            "facebook",
            [
                FieldSpec(
                    "channels.facebook.account",
                    N_("Account"),
                    example="community",
                ),
                FieldSpec("channels.facebook.message", N_("Message"), "textarea", template=True),
                FieldSpec("channels.facebook.link", N_("Link"), template=True),
                FieldSpec(
                    "channels.facebook.photo", N_("Photo (path in the media folder)"), template=True
                ),
                FieldSpec(
                    "channels.facebook.video", N_("Video (path in the media folder)"), template=True
                ),
                FieldSpec("channels.facebook.video_title", N_("Video title"), template=True),
                FieldSpec(
                    "channels.facebook.variants",
                    N_(
                        "Other messages to test (variants b, c, ...; a line of --- between "
                        "two): the campaign's first posts take turns, the later posts get the "
                        "winner"
                    ),
                    "textarea",
                ),
                FieldSpec(
                    "channels.facebook.test.share",
                    N_("Percent of the posts in the test"),
                    example="40",
                ),
                FieldSpec(
                    "channels.facebook.test.wait",
                    N_("Wait after the last test post before choosing"),
                    example="24h",
                ),
                FieldSpec(
                    "channels.facebook.test.min_sample",
                    N_("Views a variant needs before a winner is named"),
                    example="1000",
                ),
            ],
        ),
    ),
    (
        "YouTube",
        _channel(
            "youtube",
            [
                FieldSpec(
                    "channels.youtube.account",
                    N_("Account"),
                    example="community",
                ),
                FieldSpec(
                    "channels.youtube.title", N_("Title (at most 100 characters)"), template=True
                ),
                FieldSpec(
                    "channels.youtube.description", N_("Description"), "textarea", template=True
                ),
                FieldSpec("channels.youtube.tags", N_("Tags (one a line)"), "lines"),
                FieldSpec(
                    "channels.youtube.video", N_("Video (path in the media folder)"), template=True
                ),
                FieldSpec(
                    "channels.youtube.privacy",
                    N_("Privacy"),
                    "select",
                    ("private", "unlisted", "public"),
                ),
                FieldSpec(
                    "channels.youtube.publish_at",
                    N_("Make it public at the occurrence time"),
                    "checkbox",
                ),
                FieldSpec(
                    "channels.youtube.upload_ahead", N_("Upload this long before"), example="3h"
                ),
                FieldSpec("channels.youtube.category", N_("Category number"), example="19"),
                FieldSpec("channels.youtube.made_for_kids", N_("Made for kids"), "checkbox"),
                FieldSpec("channels.youtube.language", N_("Language"), example="th"),
            ],
        ),
    ),
    (
        N_("E-mail"),
        _channel(
            "email",
            [
                FieldSpec("channels.email.account", N_("Sending account")),
                FieldSpec("channels.email.sender_name", N_("Sender name"), template=True),
                FieldSpec("channels.email.subject", N_("Subject"), template=True),
                FieldSpec("channels.email.preheader", N_("Preheader"), template=True),
                FieldSpec(
                    "channels.email.html", N_("E-mail body (HTML)"), "textarea", template=True
                ),
                FieldSpec("channels.email.text", N_("Plain text"), "textarea", template=True),
                FieldSpec("channels.email.reply_to", N_("Reply to"), template=True),
                FieldSpec(
                    "channels.email.audience.tags",
                    N_("Only subscribers with any of these tags (one a line)"),
                    "lines",
                ),
            ],
        ),
    ),
    (
        N_("Schedule"),
        [
            FieldSpec("schedule.kind", N_("Kind of schedule"), "radio", ("at", "every", "rrule")),
            FieldSpec(
                "schedule.at",
                N_("Times (one a line; a key first if you like)"),
                "lines",
                example="announce 2027-04-05T10:00+07:00",
            ),
            FieldSpec("schedule.every", N_("Every"), example="weekly on monday 10:00"),
            FieldSpec(
                "schedule.rrule",
                N_("Recurrence rule (RFC 5545)"),
                example="FREQ=WEEKLY;BYDAY=MO;BYHOUR=10",
            ),
            FieldSpec(
                "schedule.rotation.enabled",
                N_("Rotation: take turns among the communities"),
                "checkbox",
            ),
            FieldSpec("schedule.rotation.per_slot", N_("Communities per time")),
            FieldSpec("schedule.rotation.once", N_("Each community once only"), "checkbox"),
            FieldSpec("schedule.quiet_hours.enabled", N_("Quiet hours"), "checkbox"),
            FieldSpec("schedule.quiet_hours.start", N_("Quiet from"), example="22:00"),
            FieldSpec("schedule.quiet_hours.end", N_("Quiet until"), example="07:00"),
            FieldSpec(
                "schedule.quiet_hours.then",
                N_("A time in quiet hours is"),
                "select",
                ("postpone", "skip"),
            ),
        ],
    ),
]
# The choices of radio buttons and lists, in words.
CHOICES = {
    "all": N_("All communities"),
    "list": N_("These communities"),
    "tags": N_("Communities with these tags"),
    "at": N_("At these times"),
    "every": N_("Repeating (every ...)"),
    "rrule": N_("Recurrence rule"),
    "private": N_("private"),
    "unlisted": N_("unlisted"),
    "public": N_("public"),
    "postpone": N_("moved to the end of the quiet hours"),
    "skip": N_("skipped"),
}
FIELDS = {spec.name: spec for _, specs in SECTIONS for spec in specs}
CHANNELS = ("facebook", "youtube", "email")
ON = "on"

# A problem at a path the form has no field for is shown at this field instead.
_ALIASES = {
    "communities": "communities.list",
    "window": "window.start",
    "schedule": "schedule.kind",
    "schedule.rotation": "schedule.rotation.enabled",
    "schedule.quiet_hours": "schedule.quiet_hours.enabled",
    "channels": "channels.facebook.enabled",
    "channels.email.audience": "channels.email.audience.tags",
}
for _kind in CHANNELS:
    _ALIASES[f"channels.{_kind}"] = f"channels.{_kind}.enabled"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _file_of(value: Any) -> str | None:
    if isinstance(value, Mapping) and set(value) == {"file"}:
        return str(value["file"])
    return None


def form_values(doc: CampaignDocument) -> dict[str, str]:
    """What the form shows for the file: one text per field name."""
    get = doc.get
    values: dict[str, str] = {}
    for name, spec in FIELDS.items():
        path = tuple(name.split("."))
        if spec.kind == "checkbox" or name.endswith(".enabled"):
            continue
        if spec.kind == "lines" and name not in (
            "communities.list",
            "communities.tags",
            "schedule.at",
        ):
            items = get(path) or []
            values[name] = (
                "\n".join(_text(i) for i in items) if isinstance(items, list) else _text(items)
            )
            continue
        if spec.template and _file_of(get(path)) is not None:
            values[name] = ""
            continue
        if name not in (
            "channels.facebook.variants",
            "communities.mode",
            "schedule.kind",
            "schedule.at",
            "communities.list",
            "communities.tags",
        ):
            values[name] = _text(get(path))
    communities = get(("communities",))
    values["communities.mode"] = (
        "list"
        if isinstance(communities, list)
        else "tags"
        if isinstance(communities, Mapping)
        else "all"
    )
    values["communities.list"] = (
        "\n".join(_text(c) for c in communities) if isinstance(communities, list) else ""
    )
    tags = communities.get("tags") if isinstance(communities, Mapping) else None
    values["communities.tags"] = "\n".join(_text(t) for t in tags) if isinstance(tags, list) else ""
    values["channels.facebook.variants"] = _variant_messages(
        get(("channels", "facebook", "variants"))
    )
    values["highlights"] = ON if get(("highlights",)) == "next" else ""
    for kind in CHANNELS:
        values[f"channels.{kind}.enabled"] = ON if doc.has(("channels", kind)) else ""
    values["channels.youtube.publish_at"] = (
        ON if get(("channels", "youtube", "publish_at")) == "occurrence" else ""
    )
    values["channels.youtube.made_for_kids"] = (
        ON if get(("channels", "youtube", "made_for_kids")) is True else ""
    )
    values["schedule.rotation.enabled"] = ON if doc.has(("schedule", "rotation")) else ""
    values["schedule.rotation.once"] = ON if get(("schedule", "rotation", "once")) is True else ""
    values["schedule.quiet_hours.enabled"] = ON if doc.has(("schedule", "quiet_hours")) else ""
    kind = next((k for k in ("at", "every", "rrule") if doc.has(("schedule", k))), "at")
    values["schedule.kind"] = kind
    values["schedule.at"] = "\n".join(_at_line(item) for item in _as_list(get(("schedule", "at"))))
    return values


def file_templates(doc: CampaignDocument) -> dict[str, str]:
    """Fields whose template is kept in a file: field name -> the file's path."""
    out = {}
    for name, spec in FIELDS.items():
        if spec.template and (path := _file_of(doc.get(tuple(name.split("."))))) is not None:
            out[name] = path
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _at_line(item: Any) -> str:
    if isinstance(item, Mapping):
        return f"{_text(item.get('key'))} {_text(item.get('time'))}".strip()
    return _text(item)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]", text) if line.strip()]


def _scalar(name: str, text: str) -> Any:
    text = text.strip() if "\n" not in text.strip() else text.replace("\r\n", "\n")
    if name in ("window.start", "window.end"):
        return as_date(text)
    if (
        name
        in (
            "channels.youtube.category",
            "schedule.rotation.per_slot",
            "channels.facebook.test.share",
            "channels.facebook.test.min_sample",
        )
        and text.isdigit()
    ):
        return int(text)
    return text


def apply_form(doc: CampaignDocument, submitted: Mapping[str, str]) -> None:
    """Write into ``doc`` every field of ``submitted`` whose value differs from what ``doc``
    shows (an emptied field removes its key; a missing checkbox is unticked)."""
    before = form_values(doc)
    files = file_templates(doc)
    now = {name: submitted.get(name, "").replace("\r\n", "\n") for name in FIELDS}

    def changed(*names: str) -> bool:
        return any(now[n].strip() != before.get(n, "").strip() for n in names)

    plain = [
        n
        for n, spec in FIELDS.items()
        if spec.kind in ("text", "textarea", "select")
        and n not in files
        and n != "channels.facebook.variants"
        and not n.startswith(("communities.", "schedule.kind"))
    ]
    for kind in CHANNELS:
        if not now[f"channels.{kind}.enabled"] and before[f"channels.{kind}.enabled"]:
            doc.delete(("channels", kind))
    for name in plain:
        if name.startswith("channels.") and not now[f"channels.{name.split('.')[1]}.enabled"]:
            continue
        if name.startswith("schedule.rotation.") and not now["schedule.rotation.enabled"]:
            continue
        if name.startswith("schedule.quiet_hours.") and not now["schedule.quiet_hours.enabled"]:
            continue
        if not changed(name):
            continue
        path: Path_ = tuple(name.split("."))
        if now[name].strip():
            doc.set(path, _scalar(name, now[name]))
        else:
            doc.delete(path)
    if changed("communities.mode", "communities.list", "communities.tags"):
        mode = now["communities.mode"]
        if mode == "list":
            doc.set(("communities",), _lines(now["communities.list"]))
        elif mode == "tags":
            doc.set(("communities",), {"tags": _lines(now["communities.tags"])})
        else:
            doc.set(("communities",), "all")
    if changed("highlights"):
        if now["highlights"]:
            doc.set(("highlights",), "next")
        else:
            doc.delete(("highlights",))
    if now["channels.youtube.enabled"]:
        if changed("channels.youtube.tags"):
            tags = [
                line.strip() for line in now["channels.youtube.tags"].split("\n") if line.strip()
            ]
            _set_or_delete(doc, ("channels", "youtube", "tags"), tags)
        if changed("channels.youtube.publish_at"):
            _set_or_delete(
                doc,
                ("channels", "youtube", "publish_at"),
                "occurrence" if now["channels.youtube.publish_at"] else None,
            )
        if changed("channels.youtube.made_for_kids"):
            _set_or_delete(
                doc,
                ("channels", "youtube", "made_for_kids"),
                True if now["channels.youtube.made_for_kids"] else None,
            )
    if now["channels.facebook.enabled"] and changed("channels.facebook.variants"):
        _set_or_delete(
            doc,
            ("channels", "facebook", "variants"),
            _variants_from(
                doc.get(("channels", "facebook", "variants")), now["channels.facebook.variants"]
            ),
        )
    if now["channels.email.enabled"] and changed("channels.email.audience.tags"):
        _set_or_delete(
            doc,
            ("channels", "email", "audience", "tags"),
            _lines(now["channels.email.audience.tags"]),
        )
    if changed("schedule.kind", "schedule.at", "schedule.every", "schedule.rrule"):
        kind = now["schedule.kind"] if now["schedule.kind"] in ("at", "every", "rrule") else "at"
        for other in ("at", "every", "rrule"):
            if other != kind:
                doc.delete(("schedule", other))
        if kind == "at":
            _set_or_delete(doc, ("schedule", "at"), _at_items(doc, now["schedule.at"]))
        else:
            _set_or_delete(doc, ("schedule", kind), now[f"schedule.{kind}"].strip() or None)
    for block in ("rotation", "quiet_hours"):
        if not now[f"schedule.{block}.enabled"] and before[f"schedule.{block}.enabled"]:
            doc.delete(("schedule", block))
    if now["schedule.rotation.enabled"]:
        if not before["schedule.rotation.enabled"]:
            doc.set(
                ("schedule", "rotation", "per_slot"),
                _scalar("schedule.rotation.per_slot", now["schedule.rotation.per_slot"] or "1"),
            )
        if changed("schedule.rotation.once"):
            _set_or_delete(
                doc,
                ("schedule", "rotation", "once"),
                True if now["schedule.rotation.once"] else None,
            )


VARIANT_BREAK = "---"


def _variant_messages(variants: Any) -> str:
    """The form's text for Facebook ``variants``: each variant's message, a line of ``---``
    between two (a variant with a photo only shows as an empty part)."""
    if not isinstance(variants, list):
        return ""
    parts = []
    for variant in variants:
        message = variant.get("message") if isinstance(variant, Mapping) else None
        parts.append("" if _file_of(message) is not None else _text(message))
    return f"\n{VARIANT_BREAK}\n".join(parts)


def _variants_from(old: Any, text: str) -> list[Any]:
    """Facebook ``variants`` from the form's text: the n-th part is the n-th variant's
    message; what else a variant had (a photo, a message kept in a file) is kept; a part
    left empty keeps a variant only if it has a photo."""
    parts = [p.strip() for p in re.split(rf"(?m)^\s*{VARIANT_BREAK}\s*$", text)]
    if len(parts) == 1 and not parts[0]:
        parts = []
    before = list(old) if isinstance(old, list) else []
    out: list[Any] = []
    parts += [""] * (len(before) - len(parts))  # a variant not written: only its photo stays
    for i, part in enumerate(parts):
        variant = before[i] if i < len(before) and isinstance(before[i], Mapping) else {}
        message = variant.get("message")
        if _file_of(message) is not None and not part:
            out.append(variant)
            continue
        if part and _text(message) == part:
            out.append(variant)  # unchanged: keeps its node and style
            continue
        kept = {k: v for k, v in variant.items() if k != "message"}
        if part:
            out.append({**kept, "message": part} if kept else {"message": part})
        elif kept:
            out.append(kept)
    return out


def _set_or_delete(doc: CampaignDocument, path: Path_, value: Any) -> None:
    if value in (None, [], ""):
        doc.delete(path)
    else:
        doc.set(path, value)


def _at_items(doc: CampaignDocument, text: str) -> list[Any]:
    """The ``at`` list from its lines; an item written as before keeps its node (and style)."""
    old = {_at_line(item): item for item in _as_list(doc.get(("schedule", "at")))}
    items: list[Any] = []
    for line in (raw.strip() for raw in text.split("\n")):
        if not line:
            continue
        if line in old:
            items.append(old[line])
            continue
        key, _, rest = line.partition(" ")
        if rest.strip() and re.match(SLUG_PATTERN, key):
            items.append({"key": key, "time": rest.strip()})
        else:
            items.append(line)
    return items


def field_for(problem: Problem) -> str | None:
    """The form field a problem belongs next to, or None (shown above the form)."""
    path = re.sub(r"\[\d+\]", "", problem.field or "")
    while path:
        if path in FIELDS:
            return path
        if path in _ALIASES:
            return _ALIASES[path]
        path = path.rpartition(".")[0]
    return None


@dataclass
class ShownField:
    spec: FieldSpec
    value: str
    file: str | None = None  # the template's file, when kept in one
    problems: list[Problem] = field(default_factory=list)


def shown_sections(
    values: Mapping[str, str], files: Mapping[str, str], problems: list[Problem]
) -> tuple[list[tuple[str, list[ShownField]]], list[Problem]]:
    """The form's sections with values and problems, and the problems of no field."""
    by_field: dict[str, list[Problem]] = {}
    loose: list[Problem] = []
    for problem in problems:
        name = field_for(problem)
        if name is None:
            loose.append(problem)
        else:
            by_field.setdefault(name, []).append(problem)
    sections = [
        (
            title,
            [
                ShownField(
                    spec,
                    values.get(spec.name, ""),
                    files.get(spec.name),
                    by_field.get(spec.name, []),
                )
                for spec in specs
            ],
        )
        for title, specs in SECTIONS
    ]
    return sections, loose
