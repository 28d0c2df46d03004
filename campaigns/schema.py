"""The campaign file format as pydantic models, one per section.

Sections are validated one at a time (see :mod:`campaigns.loader`), so a mistake in one
section does not hide the mistakes in the others.  Values people write often in more than
one way have their own validators with messages that say what to write instead:
:data:`TemplateField` (inline text or ``{file: ...}``), :data:`Moment` (a date or an aware
date-time; a date-time without an offset is refused), and clock times.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from campaigns.schedule import ScheduleError, parse_clock
from channels import registry
from channels.campaign_input import (
    ChannelInput,
    Duration,
    TemplateField,
    TemplateRef,
    Text,
)
from marketing.conventions import SLUG_PATTERN

__all__ = ["ChannelInput", "Duration", "TemplateField", "TemplateRef", "Text"]

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- values with their own rules ------------------------------------------------------------


def _moment(value: Any) -> date | datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                datetime.fromisoformat(text)
                if "T" in text or " " in text or ":" in text
                else date.fromisoformat(text)
            )
        except ValueError:
            raise PydanticCustomError(
                "moment",
                "{value} is not a date or time; write 2027-04-13 or 2027-04-13T10:00+07:00",
                {"value": repr(value)},
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "naive_datetime",
                "{value} has no time zone offset; write it with one, e.g. "
                "{example}+07:00 for Bangkok time",
                {"value": value.isoformat(), "example": value.strftime("%Y-%m-%dT%H:%M")},
            )
        return value
    if isinstance(value, date):
        return value
    raise PydanticCustomError(
        "moment",
        "write a date (2027-04-13) or a date and time with offset (2027-04-13T10:00+07:00)",
    )


Moment = Annotated[date | datetime, PlainValidator(_moment)]
"""A date, or an aware date-time; a date-time without a UTC offset is refused."""


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return parse_clock(str(value))
    except ScheduleError as exc:
        raise PydanticCustomError("clock", str(exc)) from None


Clock = Annotated[time, PlainValidator(_clock)]


def _zone(value: Any) -> str:
    text = str(value).strip() if isinstance(value, str) else None
    try:
        if not text:
            raise ValueError
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PydanticCustomError(
            "timezone",
            "unknown time zone {value}; use an IANA name such as Asia/Bangkok",
            {"value": repr(value)},
        ) from None
    return text


Zone = Annotated[str, PlainValidator(_zone)]


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


# --- sections --------------------------------------------------------------------------------


class WindowIn(_Strict):
    start: Moment
    end: Moment


class CommunityTagsIn(_Strict):
    tags: Annotated[list[Text], Field(min_length=1)]


def channel_models() -> dict[str, type[ChannelInput]]:
    """Each channel's block, by its key in the file (declared by the channel's spec)."""
    return {spec.kind: spec.campaign_model for spec in registry.specs()}


class AtIn(_Strict):
    """A one-off time with a key of its own (``{key: launch, time: ...}``); a plain value in
    the ``at`` list is a :data:`Moment` without a key."""

    key: Slug
    time: Moment


class RotationIn(_Strict):
    per_slot: Annotated[int, Field(ge=1, le=10_000)] = 1
    once: bool = False


class QuietHoursIn(_Strict):
    start: Clock
    end: Clock
    then: Literal["postpone", "skip"] = "postpone"


class BestTimeIn(_Strict):
    """One post per community and channel each day or week, at the time its figures say
    works best (see :mod:`campaigns.besttime`)."""

    per: Literal["day", "week"] = "week"
    min_gap: Duration = "2h"  # between two posts on one Facebook Page or YouTube channel


class ScheduleIn(_Strict):
    at: Annotated[list[Any], BeforeValidator(_as_list)] | None = None
    every: Text | None = None
    rrule: Text | None = None
    best_time: BestTimeIn | None = None
    rotation: RotationIn | None = None
    quiet_hours: QuietHoursIn | None = None


TOP_LEVEL = (
    "slug",
    "name",
    "description",
    "timezone",
    "window",
    "communities",
    "highlights",
    "channels",
    "schedule",
)
REQUIRED = ("slug", "name", "window", "communities", "channels", "schedule")
