"""The channel registry: every channel is one spec, and what lists channels agrees with it."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from channels import registry
from channels.base import Adapter, BulkSender, Capability, ChannelSpec, Publisher
from channels.campaign_input import ChannelInput
from marketing.models import ChannelKind
from marketing.settings import Settings

SPECS = registry.specs()


def test_every_channel_kind_has_one_spec_in_the_listed_order() -> None:
    assert [s.kind for s in SPECS] == [k.value for k in ChannelKind]
    assert registry.kinds() == tuple(k.value for k in ChannelKind)
    assert len({s.queue for s in SPECS}) == len(SPECS)
    assert registry.publish_queues() == tuple(f"publish.{k.value}" for k in ChannelKind)


def test_an_unknown_channel_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown channel 'fax'; known: email, facebook"):
        registry.spec_for("fax")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_a_spec_declares_everything_a_channel_needs(spec: ChannelSpec, tmp_path: Path) -> None:
    assert spec.label_th and spec.label_en and not spec.label_th.isascii()
    assert re.fullmatch(r"#[0-9a-f]{6}", spec.colour)
    assert spec.utm_source and spec.utm_medium
    assert issubclass(spec.campaign_model, ChannelInput)
    assert issubclass(spec.limits, Adapter) and spec.limits.kind == spec.kind
    assert typing.is_typeddict(spec.content)
    declared = typing.get_type_hints(spec.content)
    # What the campaign block renders and the media keys are content keys.
    assert set(spec.campaign_model.templates) <= set(declared)
    assert set(spec.campaign_model.template_lists) <= set(declared)
    assert set(spec.media_keys) <= set(declared)
    assert spec.code("timeout") == f"{spec.kind}:timeout"
    # Settings come from the service's settings by their names, and build the adapter.
    values = spec.settings_from(Settings(data_dir=tmp_path))
    assert isinstance(values, spec.settings_model)
    built = spec.build(values)
    assert built.kind == spec.kind
    if spec.can(Capability.PUBLISH):
        assert isinstance(built, Publisher)
    if spec.can(Capability.SEND_TO_MANY):
        assert isinstance(built, BulkSender)


def test_a_channel_either_publishes_or_sends_to_many() -> None:
    spec = SPECS[0]
    with pytest.raises(ValueError, match="either publishes or sends to many"):
        ChannelSpec(
            **{
                **{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                "capabilities": frozenset({Capability.PUBLISH, Capability.SEND_TO_MANY}),
            }
        )


def test_channels_import_nothing_from_marketing() -> None:
    root = Path(__file__).resolve().parents[1] / "channels"
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"\s*(from marketing\b|import marketing\b)", line)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("recorded", "today"),
    [
        ("no_token", "youtube:no-token"),
        ("invalid-address", "email:invalid-address"),
        ("smtp-550", "email:smtp-550"),
        ("youtube:wrong-channel", "youtube:wrong-channel"),
        ("facebook:190/463", "facebook:190/463"),
    ],
)
def test_codes_recorded_before_the_channel_vocabulary_read_as_todays(
    recorded: str, today: str
) -> None:
    from marketing.web import wording

    assert wording.current_code(recorded) == today
    assert wording._family(recorded) == wording._family(today)


def test_a_channel_without_a_preview_of_its_own_shows_its_text_links_and_media() -> None:
    from marketing.web.rendering import environment

    shown = (
        environment("th")
        .get_template("content/any.html")
        .render(
            channel_name="facebook",
            post_id=None,
            content={
                "message": "ผ้าทอบ้านดอยเงิน <b>",
                "link": "https://example.org/x",
                "photo": "/media/ผ้าทอ.png",
                "tags": ["ผ้า", "น่าน"],
            },
        )
    )
    assert '<pre class="wrap">ผ้าทอบ้านดอยเงิน &lt;b&gt;</pre>' in shown
    assert '<a href="https://example.org/x" rel="noreferrer">' in shown
    assert "ไฟล์สื่อ: ผ้าทอ.png" in shown and "/media/" not in shown
    assert "ผ้า, น่าน" in shown


def test_best_times_are_learnt_for_the_channels_that_publish_and_report_engagement() -> None:
    from marketing.besttimes import best_times_channels
    from marketing.besttimes_view import checked_channel

    assert [k.value for k in best_times_channels()] == ["facebook", "youtube", "line"]
    assert checked_channel("youtube") == ChannelKind.YOUTUBE
    with pytest.raises(ValueError, match="learnt for facebook, youtube, line, not 'email'"):
        checked_channel("email")
