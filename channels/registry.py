"""The one place that lists the channels.  Adding a channel: one module, one line in
:data:`CHANNEL_MODULES` (``docs/channels.md``, "Adding a channel").

Each listed module declares ``SPEC``, its :class:`channels.base.ChannelSpec`.  The modules
are imported on the first lookup, not when this module is: they bring their SDKs, which
commands that need no channel should not pay for.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from channels.base import QUEUE_PREFIX, Adapter, Capability, ChannelSpec

#: The channel modules, in the order channels are shown (reports, forms, menus).
CHANNEL_MODULES: tuple[str, ...] = (
    "channels.facebook",
    "channels.youtube",
    "channels.email",
    "channels.line",
)


@cache
def _specs() -> dict[str, ChannelSpec]:
    found: dict[str, ChannelSpec] = {}
    for name in CHANNEL_MODULES:
        spec = getattr(import_module(name), "SPEC", None)
        if not isinstance(spec, ChannelSpec):
            raise TypeError(f"{name} declares no SPEC (a channels.base.ChannelSpec)")
        if spec.kind in found:
            raise ValueError(f"{name} declares channel {spec.kind!r} a second time")
        found[spec.kind] = spec
    return found


def specs() -> tuple[ChannelSpec, ...]:
    """Every channel's spec, in :data:`CHANNEL_MODULES` order."""
    return tuple(_specs().values())


def kinds() -> tuple[str, ...]:
    """Every channel's kind, in :data:`CHANNEL_MODULES` order."""
    return tuple(_specs())


def spec_for(kind: str) -> ChannelSpec:
    """The spec of channel ``kind`` (a ``ChannelKind`` or its value)."""
    try:
        return _specs()[str(kind)]
    except KeyError:
        known = ", ".join(sorted(_specs()))
        raise KeyError(f"unknown channel {str(kind)!r}; known: {known}") from None


def with_capability(capability: Capability) -> tuple[ChannelSpec, ...]:
    """The channels that can do ``capability``, in :data:`CHANNEL_MODULES` order."""
    return tuple(spec for spec in specs() if capability in spec.capabilities)


def kinds_that(capability: Capability) -> tuple[str, ...]:
    """The kinds of the channels that can do ``capability``."""
    return tuple(spec.kind for spec in with_capability(capability))


def limits_for(kind: str) -> type[Adapter]:
    """The class that declares ``kind``'s limits and checks content against them."""
    return spec_for(kind).limits


#: The queue of the periodic work (dispatch, recovery, metrics) and Celery's default.
DEFAULT_QUEUE = "default"


def queues() -> tuple[str, ...]:
    """Every Celery queue of the service: the default one and each channel's publish queue
    (a worker started without ``-Q`` consumes them all)."""
    return (DEFAULT_QUEUE, *publish_queues())


def labels(language: str) -> dict[str, str]:
    """kind -> the channel's name in ``language`` (Thai for ``th``, else English)."""
    return {s.kind: s.label_th if language == "th" else s.label_en for s in specs()}


def colours() -> dict[str, str]:
    """kind -> the channel's colour in charts."""
    return {s.kind: s.colour for s in specs()}


def publish_queues() -> tuple[str, ...]:
    """The Celery queue of every channel's publish tasks."""
    return tuple(spec.queue for spec in specs())


def queue_for(kind: str) -> str:
    """The Celery queue publish tasks of ``kind`` go to."""
    return f"{QUEUE_PREFIX}{spec_for(kind).kind}"
