"""The words a channel's block in a campaign file is written with.

Each channel declares its block as a :class:`ChannelInput` (``FacebookIn`` in
``channels/facebook.py``, ...) and names it in its :class:`channels.base.ChannelSpec`; the
campaign loader (:mod:`campaigns.loader`) reads every block through these class attributes
and methods, so it names no channel.  Pure: pydantic only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints
from pydantic_core import PydanticCustomError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True)
class TemplateRef:
    """A template: inline ``text`` or a ``file`` next to the campaign file."""

    text: str | None = None
    file: str | None = None


def _template_ref(value: Any) -> TemplateRef:
    if isinstance(value, bool):
        raise PydanticCustomError("template", "write text here, not true/false")
    if isinstance(value, str | int | float):
        return TemplateRef(text=str(value))
    if isinstance(value, dict):
        extra = sorted(set(value) - {"file"})
        if extra or not isinstance(value.get("file"), str) or not value["file"].strip():
            raise PydanticCustomError(
                "template",
                "a template in a file is written {file: path/next/to/the/campaign.j2}",
            )
        return TemplateRef(file=value["file"].strip())
    raise PydanticCustomError(
        "template", "write the text here, or {file: path/next/to/the/campaign.j2}"
    )


TemplateField = Annotated[TemplateRef, PlainValidator(_template_ref)]


def duration(text: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1d"`` -> a timedelta; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d{1,4})\s*([mhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. 90m, 2h or 1d")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _duration(value: Any) -> str:
    try:
        duration(str(value))
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None
    return str(value)


Duration = Annotated[str, PlainValidator(_duration)]


class VariantTestIn(BaseModel):
    """How a variant test runs: each variant goes to an equal part of ``share`` percent of
    the audience; after ``wait`` the winner (see :mod:`marketing.variants`) goes to the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: Annotated[int, Field(ge=2, le=90)] = 20
    wait: Duration = "4h"
    min_sample: Annotated[int, Field(ge=30, le=1_000_000)] = 200


class PostsVariantTestIn(VariantTestIn):
    """How a test over a campaign's posts runs (a Page post reaches all its followers, so the
    posts themselves are split): the first ``share`` percent of the campaign's posts of the
    channel carry the variants, in balanced random turns; ``wait`` after the last of them
    went out, the winner (interactions per view, ``min_sample`` views a variant) goes to
    the rest."""

    share: Annotated[int, Field(ge=2, le=90)] = 40
    wait: Duration = "24h"
    min_sample: Annotated[int, Field(ge=30, le=1_000_000)] = 1_000


class ChannelInput(BaseModel):
    """A channel's block in a campaign file.  Every field named in :attr:`templates` is a
    :data:`TemplateField` rendered into the content key of the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields rendered into the content key of the same name, in this order.
    templates: ClassVar[tuple[str, ...]] = ()
    #: Fields that are a list of templates, each rendered into the list under that key.
    template_lists: ClassVar[tuple[str, ...]] = ()
    #: Content keys whose rendered text is HTML (autoescaped).
    html_templates: ClassVar[frozenset[str]] = frozenset()
    #: Content keys rendered once per recipient (``{{ subscriber.name }}`` allowed); None:
    #: the channel has no recipients of its own.
    per_recipient: ClassVar[frozenset[str] | None] = None
    #: Content keys holding a web link that gets the channel's UTM values.
    tracked_links: ClassVar[tuple[str, ...]] = ()
    #: False: posts go out on a programme-wide account only (``account: community`` refused).
    community_accounts: ClassVar[bool] = True
    #: What a variant test splits: each post's ``audience`` (e-mail: every recipient gets
    #: one variant) or the campaign's ``posts`` (a Page post reaches all its followers).
    variant_unit: ClassVar[Literal["audience", "posts"]] = "audience"

    account: Text = "community"

    def fixed(self) -> dict[str, Any]:
        """Content values that are not templates."""
        return {}

    def written_at(self) -> dict[str, str]:
        """Content key -> the field it is written in, for keys whose field has another name
        or that are not templates (so a problem with them points at the right line)."""
        return {}

    def publish_at_occurrence(self) -> bool:
        """Whether the channel makes the post public at the occurrence by itself (the post
        goes out :meth:`goes_out_before` earlier)."""
        return False

    def goes_out_before(self) -> timedelta:
        """How long before the occurrence a post that the channel makes public by itself
        goes out."""
        return timedelta(0)

    def audience_tags(self) -> list[str] | None:
        """The subscriber tags a post is limited to; None: every consenting subscriber."""
        return None

    def variant_templates(self) -> list[dict[str, TemplateRef]]:
        """The variants to test against the block's own content (each: content key ->
        template, in the order written, under ``variants``); [] if none or the channel has
        no variant tests."""
        return []

    def variant_test(self) -> VariantTestIn | None:
        """How the variant test runs, as written under ``test`` (None: not written)."""
        return None

    @classmethod
    def default_variant_test(cls) -> VariantTestIn:
        """How a variant test runs when ``test`` is not written."""
        return PostsVariantTestIn() if cls.variant_unit == "posts" else VariantTestIn()

    @classmethod
    def account_problem(cls, external_id: str) -> str | None:
        """Why an account of this channel cannot post (its id is not valid); None if it can."""
        return None
