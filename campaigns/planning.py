"""Planning: a campaign definition and the reference data become a list of posts.

One :class:`PlannedPost` per (campaign, community, channel account, occurrence), with its
content rendered and checked against the channel's limits
(``channels.registry.limits_for(kind).content_problems``), a deterministic idempotency key,
and a content hash.  Planning reads the database (communities, accounts, highlights,
subscribers, and the campaign's existing posts) and writes nothing; :mod:`campaigns.lifecycle`
stores the plan.

Rules worth knowing (``docs/campaigns.md`` has them for staff):

* Rotation: the schedule's occurrences are slots; slot *i* goes to the next ``per_slot``
  communities in order (the order listed, or by slug for ``all`` and tag selections), round
  and round (``once``: a single round).  Assignment is computed over the whole window, so it
  does not shift as time passes.
* Past occurrences: an occurrence already past when planning is not planned anew; one that
  already has posts keeps them.
* Highlights autopilot (``highlights: next``): each (community, occurrence) features the
  community's next highlight that is eligible -- ``people_consent`` true, or tagged
  ``no-people`` -- and not yet posted (``last_posted_at`` empty), in ``position`` order.  An
  occurrence that already has posts keeps its highlight (re-planning never reshuffles), and no
  highlight is given twice in one plan.  When a community has none left, that occurrence is
  not planned for it.
* Email goes only to communities with at least one consenting subscriber in the audience.
* Best-time schedules (``schedule.best_time``): each community's time in a period is drawn
  from the figures the caller passes (``best_times``), kept across re-plans while allowed,
  and spread on shared Pages (see :mod:`campaigns.besttime`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.besttime import (
    BestTimeSnapshot,
    BestTimeSource,
    Period,
    SlotBook,
    block_of,
    candidates,
    choose_slot,
    draw_seed,
)
from campaigns.formatting import tracked_url
from campaigns.loader import CampaignDefinition, ChannelBlock, VariantTest, media_keys, where
from campaigns.reference import (
    CANCELLED_STATE,
    EDITABLE_STATES,
    AccountRef,
    CommunityRef,
    ExistingPost,
    HighlightRef,
    Reference,
)
from campaigns.schedule import Occurrence
from campaigns.templates import (
    COMMUNITY_HELPERS,
    DESTINATIONS,
    SUBSCRIBER,
    UNSUBSCRIBE_URL,
    AccountView,
    CampaignView,
    CommunityView,
    CompiledTemplate,
    HighlightView,
    OccurrenceView,
    RenderFailure,
)
from channels.base import Capability
from channels.registry import limits_for, spec_for
from marketing.media import LIBRARY, MediaRefused, resolve_media
from marketing.problems import InvalidInput, Path_, Problem, format_path, problem_at

NO_PEOPLE_TAG = "no-people"
"""A highlight tagged so shows no person, so it may be posted without ``people_consent``."""

VARIANT_KEYS = ("a", "b", "c", "d", "e")
"""Variant names: a is the channel's own content, b... the listed variants."""

EDITABLE = EDITABLE_STATES
"""Post states that re-planning may change or cancel; every other state is left alone."""

# Content keys that must be present even when empty, so the limits report them.
_REQUIRED_KEYS = {"message", "title", "video", "subject", "html"}


def _shares_page(channel: ChannelBlock) -> bool:
    """Whether ``channel``'s posts stand on a shared timeline (a Page, a channel), so a
    best-time schedule keeps them apart; one-to-many sends (e-mail) do not."""
    return not spec_for(channel.kind).can(Capability.SEND_TO_MANY)


def idempotency_key(campaign: str, community: str, account: str, occurrence: str) -> str:
    """The post's key: 32 hex characters of sha256 over its four coordinates."""
    text = "\x1f".join((campaign, community, account, occurrence))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def content_hash(content: dict[str, Any]) -> str:
    """sha256 (hex) of ``content`` in a canonical JSON form."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def highlight_eligible(highlight: HighlightRef) -> bool:
    """May ``highlight`` be posted at all: consent given, or tagged as showing no people."""
    return highlight.people_consent or NO_PEOPLE_TAG in (highlight.tags or [])


@dataclass(frozen=True)
class PlannedPost:
    """One post a campaign will make."""

    idempotency_key: str
    occurrence_key: str
    scheduled_at: datetime
    channel: str  # a channel kind (channels.registry)
    community_id: int
    community_slug: str
    account_id: int
    account_slug: str
    highlight_id: int | None
    content: dict[str, Any]
    content_hash: str


@dataclass
class Plan:
    """What a campaign will publish, and what planning had to leave out (``notes``)."""

    definition: CampaignDefinition
    posts: list[PlannedPost]
    notes: list[str]
    source_hash: str
    communities: list[str]  # slugs covered

    @property
    def slug(self) -> str:
        return self.definition.slug


@dataclass
class _Tally:
    """Problems that repeat for many communities, reported once with a count."""

    found: dict[tuple[Any, ...], tuple[Problem, list[str]]] = field(default_factory=dict)

    def add(self, problem: Problem, community: str) -> None:
        # "is 143 characters" and "is 151 characters" are the same problem of one field.
        shape = re.sub(r"\d[\d,.]*", "#", problem.message)
        key = (problem.file, problem.line, problem.column, problem.field, shape)
        self.found.setdefault(key, (problem, []))[1].append(community)

    def problems(self) -> list[Problem]:
        out = []
        for problem, communities in self.found.values():
            names = list(dict.fromkeys(communities))
            where = f"for community {names[0]}"
            if len(names) > 1:
                where += f" and {len(names) - 1} more"
            out.append(
                Problem(
                    problem.file,
                    problem.line,
                    problem.column,
                    problem.field,
                    f"{problem.message} ({where})",
                    problem.hint,
                    # A coded problem is shown in the reader's words (the same for every
                    # community it was found for).
                    problem.code,
                    problem.values,
                )
            )
        return out


def plan_campaign(
    *,
    reference: Reference,
    definition: CampaignDefinition,
    now: datetime | None = None,
    best_times: BestTimeSnapshot | BestTimeSource | None = None,
    seed: int = 0,
) -> Plan:
    """The posts ``definition`` makes, with the communities, accounts and the rest that
    ``reference`` holds; InvalidInput with every problem (the definition's own and those
    found against the reference data and by rendering) if there is any.  A best-time
    schedule draws from ``best_times`` (a snapshot, or a function giving one, called only
    then; None: every block alike) with generators seeded from ``seed``."""
    return _Planner(reference, definition, now or datetime.now(UTC), best_times, seed).plan()


class _Planner:
    def __init__(
        self,
        reference: Reference,
        definition: CampaignDefinition,
        now: datetime,
        best_times: BestTimeSnapshot | BestTimeSource | None = None,
        seed: int = 0,
    ):
        self.reference = reference
        self.d = definition
        self.now = now
        self.best_times = best_times
        self.seed = seed
        self.best_sources: Counter[str] = Counter()
        self.no_slot = 0
        self.problems: list[Problem] = list(definition.problems)
        self.tally = _Tally()
        self.notes: list[str] = []
        self._depends: dict[int, tuple[str, ...]] = {}
        self._rendered: dict[tuple[Any, ...], str | Problem] = {}
        self._media: dict[str, str | MediaRefused] = {}
        self._destination_links: dict[tuple[int, str], dict[str, str]] = {}

    def problem(
        self,
        path: Path_,
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        values: tuple[tuple[str, str], ...] = (),
    ) -> None:
        line, column = where(self.d.positions, path)
        self.problems.append(
            Problem(self.d.file, line, column, format_path(path), message, hint, code, values)
        )
        self.d.reported.add(path)

    # -- reading the reference data ---------------------------------------------------------

    def communities(self) -> list[CommunityRef]:
        selection = self.d.selection
        if selection.kind == "slugs":
            wanted = [slug for slug, _path in selection.slugs]
            found = {c.slug: c for c in self.reference.communities(wanted)}
            missing = [(slug, path) for slug, path in selection.slugs if slug not in found]
            if missing:
                known = self.reference.community_slugs()
                for slug, path in missing:
                    close = difflib.get_close_matches(slug, known, n=1)
                    self.problem(
                        path,
                        f"unknown community {slug!r}",
                        f"did you mean {close[0]}?"
                        if close
                        else "see `marketing communities list`, or import the community first",
                        code="unknown_community",
                        values=(("slug", slug), ("close", close[0] if close else "")),
                    )
            return [found[slug] for slug in wanted if slug in found]
        everyone = self.reference.communities()
        if selection.kind == "tags":
            tags = set(selection.tags)
            chosen = [c for c in everyone if tags & set(c.tags or [])]
            if not chosen:
                self.problem(
                    ("communities", "tags"),
                    f"no community has any of the tags {', '.join(selection.tags)}",
                    "check the spelling against `marketing communities list`",
                )
            return chosen
        if not everyone:
            self.problem(
                ("communities",),
                "there are no communities yet",
                "import them first: marketing communities import FILE",
            )
        return everyone

    def accounts_for(
        self,
        channel: ChannelBlock,
        communities: Sequence[CommunityRef],
        accounts: list[AccountRef],
    ) -> dict[int, AccountRef]:
        """community id -> the account that channel posts on for it."""
        path: Path_ = (*channel.path, "account")
        kind = channel.kind
        model = spec_for(channel.kind).campaign_model
        if channel.account == "community":
            own = {
                a.community_id: a for a in accounts if a.kind == kind and a.community_id is not None
            }
            lacking = [c.slug for c in communities if c.id not in own]
            if not model.community_accounts:
                self.problem(
                    path,
                    f"{channel.kind} goes out from a programme-wide sender account",
                    f"name it, e.g. account: glo-{channel.kind}",
                )
                return {}
            if lacking:
                shown = ", ".join(lacking[:5]) + (
                    f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
                )
                self.problem(
                    path,
                    f"{len(lacking)} of the communities have no {channel.kind} account of their "
                    f"own: {shown}",
                    f"import their accounts, post on a programme-wide account "
                    f"(account: glo-{channel.kind}), or leave those communities out",
                )
            return {c.id: own[c.id] for c in communities if c.id in own}
        by_slug = {a.slug: a for a in accounts}
        account = by_slug.get(channel.account)
        if account is None:
            close = difflib.get_close_matches(channel.account, list(by_slug), n=1)
            self.problem(
                path,
                f"unknown channel account {channel.account!r}",
                f"did you mean {close[0]}?"
                if close
                else "write community for each community's own account, or an account slug",
            )
            return {}
        if account.kind != kind:
            self.problem(
                path,
                f"{account.slug!r} is a {account.kind} account, not {channel.kind}",
            )
            return {}
        if account.community_id is not None and any(
            c.id != account.community_id for c in communities
        ):
            self.problem(
                path,
                f"{account.slug!r} belongs to one community, but the campaign covers others",
                "write community to post on each community's own account, or use a "
                "programme-wide account",
            )
            return {}
        if why := model.account_problem(account.external_id):
            self.problem(path, why)
            return {}
        return {c.id: account for c in communities}

    def audience(self, channel: ChannelBlock, communities: Sequence[CommunityRef]) -> set[int]:
        """Ids of the communities with at least one consenting subscriber in the audience."""
        rows = self.reference.subscriber_tags([c.id for c in communities])
        wanted = set(channel.audience_tags or [])
        reached: set[int] = set()
        for community_id, tags in rows:
            if not wanted or wanted & set(tags or []):
                reached.add(community_id)
        if wanted and not reached and communities:
            self.problem(
                (*channel.path, "audience", "tags"),
                f"no consenting subscriber has any of the tags {', '.join(sorted(wanted))}",
                "check the spelling of the tags against the subscriber lists",
            )
        return reached

    def existing(self) -> list[ExistingPost]:
        return self.reference.existing_posts(self.d.slug)

    # -- assigning ----------------------------------------------------------------------------

    def slots(self, communities: Sequence[CommunityRef]) -> dict[int, list[Occurrence]]:
        """community id -> its occurrences (all of them, or its rotation turns)."""
        occurrences = self.d.occurrences
        rotation = self.d.rotation
        if rotation is None or not communities:
            return {c.id: list(occurrences) for c in communities}
        per_slot = min(rotation.per_slot, len(communities))
        turns: dict[int, list[Occurrence]] = {c.id: [] for c in communities}
        for slot, occurrence in enumerate(occurrences):
            first = slot * per_slot
            if rotation.once and first >= len(communities):
                break
            for j in range(per_slot):
                position = first + j
                if rotation.once and position >= len(communities):
                    break
                turns[communities[position % len(communities)].id].append(occurrence)
        return turns

    def highlight_picks(
        self,
        communities: Sequence[CommunityRef],
        wanted: dict[int, list[Occurrence]],
        existing: list[ExistingPost],
    ) -> dict[tuple[int, str], HighlightRef | None]:
        """(community id, occurrence key) -> its highlight (None: none left)."""
        ids = [c.id for c in communities]
        by_community: dict[int, list[HighlightRef]] = {i: [] for i in ids}
        for h in self.reference.highlights(ids):
            by_community[h.community_id].append(h)
        by_id = {h.id: h for hs in by_community.values() for h in hs}
        settled: dict[tuple[int, str], int] = {}  # kept from existing posts
        fixed_ids: set[int] = set()  # highlights of posts re-planning cannot change
        for row in existing:
            if row.highlight_id is None or row.state == CANCELLED_STATE:
                continue
            settled.setdefault((row.community_id, row.occurrence_key), row.highlight_id)
            if row.state not in EDITABLE:
                fixed_ids.add(row.highlight_id)
        picks: dict[tuple[int, str], HighlightRef | None] = {}
        for community_id, occurrences in wanted.items():
            used: set[int] = set()
            for occurrence in occurrences:
                kept = by_id.get(settled.get((community_id, occurrence.key), -1))
                if (
                    kept is not None
                    and highlight_eligible(kept)
                    and (kept.last_posted_at is None or kept.id in fixed_ids)
                    and kept.id not in used
                ):
                    picks[(community_id, occurrence.key)] = kept
                    used.add(kept.id)
            for occurrence in occurrences:
                if (community_id, occurrence.key) in picks:
                    continue
                choice = next(
                    (
                        h
                        for h in by_community[community_id]
                        if h.id not in used and h.last_posted_at is None and highlight_eligible(h)
                    ),
                    None,
                )
                picks[(community_id, occurrence.key)] = choice
                if choice is not None:
                    used.add(choice.id)
        return picks

    # -- rendering ----------------------------------------------------------------------------

    def render_template(
        self,
        compiled: CompiledTemplate,
        context: dict[str, Any],
        coordinates: dict[str, Any],
        community: str,
    ) -> str | None:
        """One template rendered, or None after recording its problem.  A template is
        rendered once per distinct value of what it reads (a Facebook link that reads only
        ``community`` renders once per community, not once per post)."""
        depends = self._depends.get(id(compiled))
        if depends is None:
            depends = self._depends[id(compiled)] = _depends_on(compiled)
        key = (id(compiled), *(coordinates[name] for name in depends))
        found = self._rendered.get(key)
        if found is None:
            try:
                found = self.d.book.render(compiled, context)
            except RenderFailure as exc:
                found = exc.problem
            self._rendered[key] = found
        if isinstance(found, Problem):
            self.tally.add(found, community)
            return None
        return found

    def render(
        self,
        channel: ChannelBlock,
        context: dict[str, Any],
        coordinates: dict[str, Any],
        community: str,
    ) -> tuple[dict[str, Any], set[str]]:
        """The channel's content for one context, and the content keys that failed to render
        (their problems recorded)."""
        content: dict[str, Any] = {}
        failed: set[str] = set()
        for key, compiled in channel.templates.items():
            value = self.render_template(compiled, context, coordinates, community)
            if value is None:
                failed.add(key)
            elif value or key in _REQUIRED_KEYS:
                content[key] = value
        for key, listed in channel.template_lists.items():
            items = []
            for compiled in listed:
                item = self.render_template(compiled, context, coordinates, community)
                if item is None:
                    failed.add(key)
                elif item:
                    items.append(item)
            content[key] = items
        for key in media_keys(channel.kind):
            if content.get(key):
                resolved = self.media_path(content[key])
                if isinstance(resolved, MediaRefused):
                    failed.add(key)
                    path = channel.fields.get(key, channel.path)
                    if path not in self.d.reported:  # a literal path: the loader said so
                        self.tally.add(
                            problem_at(
                                self.d.file,
                                self.d.positions,
                                path,
                                resolved.message,
                                resolved.hint,
                                code=resolved.code,
                                values=resolved.values,
                            ),
                            community,
                        )
                    del content[key]
                else:
                    content[key] = resolved
        for key in spec_for(channel.kind).campaign_model.tracked_links:
            if content.get(key):
                content[key] = tracked_url(
                    content[key],
                    channel=channel.kind,
                    campaign=self.d.slug,
                    community=context["community"].slug,
                )
        content.update(channel.fixed)
        return content, failed

    def destination_links(self, community: CommunityRef, channel: str) -> dict[str, str]:
        """The community's destinations (kind -> the counted short link from ``channel``)
        for ``destination()`` in templates; the links are signed once per community and
        channel."""
        key = (community.id, channel)
        found = self._destination_links.get(key)
        if found is None:
            found = self._destination_links[key] = {
                d.kind: self.reference.destination_link(
                    community_id=community.id,
                    destination_id=d.id,
                    channel=channel,
                    campaign=self.d.slug,
                )
                for d in community.destinations
            }
        return found

    def media_path(self, written: str) -> str | MediaRefused:
        """The real path of a media file named relative to the media root, or why it may
        not be used (outside the root, not there: see :func:`marketing.media.resolve_media`)."""
        resolved = self._media.get(written)
        if resolved is None:
            try:
                real = resolve_media(written, root=self.d.media_root)
                resolved = self.consent_refusal(real, written) or str(real)
            except MediaRefused as exc:
                resolved = exc
            self._media[written] = resolved
        return resolved

    def consent_refusal(self, real: Path, written: str) -> MediaRefused | None:
        """Why a media library file may not be published: people can be recognised in it and
        no consent of theirs is recorded (the library page records it)."""
        try:
            relative = real.relative_to(self.d.media_root.resolve()).as_posix()
        except ValueError:
            return None
        if not relative.startswith(f"{LIBRARY}/"):
            return None
        name = self.reference.library_file_without_consent(relative)
        if name is None:
            return None
        return MediaRefused(
            f"people can be recognised in {name!r} and no consent of theirs is recorded",
            "record their consent on the file's page in the media library, or use another file",
            code="media_no_consent",
            path=name,
        )

    def content_for(
        self,
        channel: ChannelBlock,
        context: dict[str, Any],
        coordinates: dict[str, Any],
        occurrence: Occurrence,
    ) -> dict[str, Any] | None:
        """Rendered content within the channel's limits; None after recording problems."""
        community = context["community"].slug
        content, failed = self.render(channel, context, coordinates, community)
        ok = not failed
        for found in limits_for(channel.kind).content_problems(
            _with_time(channel, content, occurrence)
        ):
            ok = False
            path = channel.fields.get(found.field, channel.path)
            if found.field in failed or path in self.d.reported:
                continue  # already reported: its template failed, or the loader said so
            self.tally.add(
                problem_at(self.d.file, self.d.positions, path, found.message), community
            )
        return content if ok else None

    # -- the plan -----------------------------------------------------------------------------

    def plan(self) -> Plan:
        d = self.d
        communities = self.communities()
        accounts = self.reference.accounts()
        channels: list[tuple[ChannelBlock, dict[int, AccountRef], set[int] | None]] = []
        for channel in d.channels:
            on = self.accounts_for(channel, communities, accounts)
            sends_to_many = spec_for(channel.kind).can(Capability.SEND_TO_MANY)
            reached = self.audience(channel, communities) if sends_to_many else None
            channels.append((channel, on, reached))
        existing = self.existing()
        have = {(row.community_id, row.occurrence_key) for row in existing}
        turns = self.slots(communities)
        past = 0
        wanted: dict[int, list[Occurrence]] = {}
        for community in communities:
            mine = []
            for occurrence in turns[community.id]:
                if (
                    d.schedule_ok
                    and (occurrence.until or occurrence.at) < self.now
                    and (community.id, occurrence.key) not in have
                ):
                    past += 1
                    continue
                mine.append(occurrence)
            wanted[community.id] = mine
        picks = self.highlight_picks(communities, wanted, existing) if d.highlights else {}
        slots = (
            self.best_time_slots(communities, wanted, channels, existing)
            if d.best_time is not None and d.schedule_ok
            else {}
        )

        campaign_view = CampaignView(d.slug, d.name, d.description, d.timezone)
        zone = d.zone
        posts: list[PlannedPost] = []
        cache: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        variant_cache: dict[tuple[Any, ...], list[dict[str, Any]] | None] = {}
        # Tests over the campaign's posts, per channel: (index in posts, arms, key).
        post_tests: dict[str, list[tuple[int, list[dict[str, Any]], str]]] = {}
        rendered: set[tuple[int, str]] = set()
        no_highlight = 0
        no_audience: list[str] = []
        views: dict[str, OccurrenceView] = {}
        for community in communities:
            community_view = _community_view(community)
            highlights_seen: dict[int | None, HighlightView | None] = {}
            for occurrence in wanted[community.id]:
                highlight = picks.get((community.id, occurrence.key)) if d.highlights else None
                if d.highlights and highlight is None:
                    no_highlight += 1
                    continue
                occurrence_view = views.get(occurrence.key)
                if occurrence_view is None:
                    occurrence_view = views[occurrence.key] = _occurrence_view(occurrence, zone)
                hid = highlight.id if highlight is not None else None
                if hid not in highlights_seen:
                    highlights_seen[hid] = _highlight_view(highlight) if highlight else None
                period = occurrence
                for channel, on, reached in channels:
                    account = on.get(community.id)
                    if reached is not None and community.id not in reached:
                        if (community.slug not in no_audience) and account is not None:
                            no_audience.append(community.slug)
                        continue
                    if d.best_time is not None and d.schedule_ok:
                        slot = slots.get((community.id, channel.kind, period.key))
                        if slot is None:
                            continue  # no account, or no free time left (counted)
                        occurrence = replace(period, at=slot, nominal=slot, until=None)
                        occurrence_view = _occurrence_view(occurrence, zone)
                    reads = channel.reads
                    cache_key = (
                        channel.kind,
                        community.id,
                        account.id if account else None,
                        hid,
                        occurrence.key if reads is None or "occurrence" in reads else None,
                    )
                    if cache_key not in cache:
                        context = _context(
                            channel,
                            community_view,
                            campaign_view,
                            occurrence_view,
                            account,
                            highlights_seen[hid],
                            self.destination_links(community, channel.kind),
                        )
                        coordinates = {
                            "community": community.id,
                            "occurrence": occurrence.key,
                            "highlight": hid,
                            "account": account.id if account else None,
                        }
                        cache[cache_key] = self.content_for(
                            channel, context, coordinates, occurrence
                        )
                        if channel.variants:
                            variant_cache[cache_key] = self.variant_contents(
                                channel, context, coordinates, cache[cache_key]
                            )
                        rendered.add((community.id, channel.kind))
                    content = cache[cache_key]
                    if content is None or account is None:
                        continue
                    if channel.variants and _splits_posts(channel):
                        arms = variant_cache.get(cache_key)
                        if arms is not None:
                            at = occurrence.at
                            if channel.publish_at_occurrence:
                                at = occurrence.at - channel.upload_ahead
                            held = [_with_time(channel, arm, occurrence) for arm in arms]
                            post_tests.setdefault(channel.kind, []).append(
                                (
                                    len(posts),
                                    held,
                                    idempotency_key(
                                        d.slug, community.slug, account.slug, occurrence.key
                                    ),
                                )
                            )
                            posts.append(
                                PlannedPost(
                                    idempotency_key=post_tests[channel.kind][-1][2],
                                    occurrence_key=occurrence.key,
                                    scheduled_at=at,
                                    channel=channel.kind,
                                    community_id=community.id,
                                    community_slug=community.slug,
                                    account_id=account.id,
                                    account_slug=account.slug,
                                    highlight_id=hid,
                                    content=held[0],
                                    content_hash=content_hash(held[0]),
                                )
                            )
                        continue
                    if channel.variants:
                        arms = variant_cache.get(cache_key)
                        if arms is not None:
                            posts.extend(
                                self.variant_posts(
                                    channel, community, account, occurrence, arms, hid
                                )
                            )
                        continue
                    content = _with_time(channel, content, occurrence)
                    scheduled_at = occurrence.at
                    if channel.publish_at_occurrence:
                        scheduled_at = occurrence.at - channel.upload_ahead
                    posts.append(
                        PlannedPost(
                            idempotency_key=idempotency_key(
                                d.slug, community.slug, account.slug, occurrence.key
                            ),
                            occurrence_key=occurrence.key,
                            scheduled_at=scheduled_at,
                            channel=channel.kind,
                            community_id=community.id,
                            community_slug=community.slug,
                            account_id=account.id,
                            account_slug=account.slug,
                            highlight_id=hid,
                            content=content,
                            content_hash=content_hash(content),
                        )
                    )
        for channel, _on, _reached in channels:
            if channel.kind in post_tests:
                posts = self.split_posts(channel, posts, post_tests[channel.kind])
        self.check_unrendered(communities, channels, rendered, campaign_view)
        self.problems.extend(self.tally.problems())
        if self.problems:
            raise InvalidInput(self.problems)
        self.note_left_out(past, no_highlight, no_audience)
        self.note_best_times()
        return Plan(d, posts, self.notes, d.source_hash(), [c.slug for c in communities])

    def check_unrendered(
        self,
        communities: Iterable[CommunityRef],
        channels: list[tuple[ChannelBlock, dict[int, AccountRef], set[int] | None]],
        rendered: set[tuple[int, str]],
        campaign_view: CampaignView,
    ) -> None:
        """Render each community x channel not yet rendered once, to find template problems
        that the plan itself did not reach (past occurrences, rotation, no highlight left)."""
        if not self.d.occurrences:
            return
        occurrence = self.d.occurrences[0]
        occurrence_view = _occurrence_view(occurrence, self.d.zone)
        communities = list(communities)
        firsts: dict[int, HighlightRef] = {}
        if self.d.highlights:
            for h in self.reference.highlights([c.id for c in communities]):
                firsts.setdefault(h.community_id, h)  # by position, then id
        for community in communities:
            highlight_view, highlight_id = None, None
            if self.d.highlights:
                first = firsts.get(community.id)
                if first is None:
                    continue  # nothing to show the templates
                highlight_view, highlight_id = _highlight_view(first), first.id
            for channel, on, _reached in channels:
                if (community.id, channel.kind) in rendered:
                    continue
                account = on.get(community.id)
                context = _context(
                    channel,
                    _community_view(community),
                    campaign_view,
                    occurrence_view,
                    account,
                    highlight_view,
                    self.destination_links(community, channel.kind),
                )
                coordinates = {
                    "community": community.id,
                    "occurrence": occurrence.key,
                    "highlight": highlight_id,
                    "account": account.id if account else None,
                }
                self.content_for(channel, context, coordinates, occurrence)

    # -- variant tests --------------------------------------------------------------------------

    def variant_contents(
        self,
        channel: ChannelBlock,
        context: dict[str, Any],
        coordinates: dict[str, Any],
        content: dict[str, Any] | None,
    ) -> list[dict[str, Any]] | None:
        """Each variant's content (a: the channel's own, then b, c, ...); None after
        recording problems."""
        if content is None:
            return None
        community = context["community"].slug
        out = [content]
        ok = True
        for i, templates in enumerate(channel.variants):
            arm = dict(content)
            for key, compiled in templates.items():
                value = self.render_template(compiled, context, coordinates, community)
                if value is None:
                    ok = False
                    continue
                if key in media_keys(channel.kind) and value:
                    resolved = self.media_path(value)
                    if isinstance(resolved, MediaRefused):
                        ok = False
                        where_: Path_ = (*channel.path, "variants", i, key)
                        if where_ not in self.d.reported:
                            self.tally.add(
                                problem_at(
                                    self.d.file,
                                    self.d.positions,
                                    where_,
                                    resolved.message,
                                    resolved.hint,
                                    code=resolved.code,
                                    values=resolved.values,
                                ),
                                community,
                            )
                        continue
                    value = resolved
                arm[key] = value
            for found in limits_for(channel.kind).content_problems(arm):
                ok = False
                path: Path_ = (*channel.path, "variants", i, found.field)
                if path not in self.d.reported:
                    self.tally.add(
                        problem_at(self.d.file, self.d.positions, path, found.message), community
                    )
            out.append(arm)
        return out if ok else None

    def variant_posts(
        self,
        channel: ChannelBlock,
        community: CommunityRef,
        account: AccountRef,
        occurrence: Occurrence,
        arms: list[dict[str, Any]],
        highlight_id: int | None,
    ) -> list[PlannedPost]:
        """The test posts (one per variant, each to its part of the test share) and the post
        that sends the chosen variant to the rest after the wait."""
        test = channel.variant_test
        assert test is not None
        keys = VARIANT_KEYS[: len(arms)]
        test_id = f"{self.d.slug}/{community.slug}/{occurrence.key}"
        about = {"test": test_id, "arms": len(arms), "share": test.share}
        planned: list[tuple[str, datetime, dict[str, Any]]] = [
            (key, occurrence.at, {**arm, "variant": {**about, "arm": key}})
            for key, arm in zip(keys, arms, strict=True)
        ]
        varied = sorted({k for templates in channel.variants for k in templates})
        choices = {
            key: {k: arm[k] for k in varied if k in arm}
            for key, arm in zip(keys, arms, strict=True)
        }
        rest = _rest_content(arms[0], about, test, choices)
        planned.append(("rest", occurrence.at + test.wait, rest))
        out = []
        for key, at, content in planned:
            occurrence_key = f"{occurrence.key}~{key}"
            out.append(
                PlannedPost(
                    idempotency_key=idempotency_key(
                        self.d.slug, community.slug, account.slug, occurrence_key
                    ),
                    occurrence_key=occurrence_key,
                    scheduled_at=at,
                    channel=channel.kind,
                    community_id=community.id,
                    community_slug=community.slug,
                    account_id=account.id,
                    account_slug=account.slug,
                    highlight_id=highlight_id,
                    content=content,
                    content_hash=content_hash(content),
                )
            )
        return out

    def split_posts(
        self,
        channel: ChannelBlock,
        posts: list[PlannedPost],
        tested: list[tuple[int, list[dict[str, Any]], str]],
    ) -> list[PlannedPost]:
        """A test over the campaign's posts of ``channel`` (a Page post reaches everyone who
        follows the Page, so posts, not people, get the variants).  The first ``share``
        percent of its posts by time (ties in a fixed random order) are the test: shuffled
        by a hash of the test and each post, they take the variants in turn, so each variant
        gets as many posts as the others, give or take one.  Every later post is the rest:
        it carries variant a until the decision (see :mod:`marketing.post_variants`), which
        rewrites it to the chosen variant before it goes out."""
        test = channel.variant_test
        assert test is not None
        test_id = f"{self.d.slug}/{channel.kind}"
        arms = len(tested[0][1])
        keys = VARIANT_KEYS[:arms]

        def draw(key: str, salt: str) -> str:
            return hashlib.sha256(f"{test_id}\x1f{salt}\x1f{key}".encode()).hexdigest()

        order = sorted(tested, key=lambda t: (posts[t[0]].scheduled_at, draw(t[2], "order")))
        size = max(arms, -(-len(order) * test.share // 100))
        if size >= len(order):  # nothing would be left for the winner: no test
            self.notes.append(
                f"{channel.kind}: {len(order)} posts are too few for a variant test "
                f"(the test takes {size}, and the rest must get the winner); "
                "every post carries variant a"
            )
            return posts
        varied = sorted({k for templates in channel.variants for k in templates})
        about = {"test": test_id, "unit": "posts", "arms": arms, "share": test.share}
        out = list(posts)
        turns = sorted(order[:size], key=lambda t: draw(t[2], "arm"))
        for turn, (index, arm_contents, _key) in enumerate(turns):
            key = keys[turn % arms]
            content = {**arm_contents[turn % arms], "variant": {**about, "arm": key}}
            out[index] = replace(out[index], content=content, content_hash=content_hash(content))
        for index, arm_contents, _key in order[size:]:
            choices = {
                key: {k: arm.get(k) for k in varied}
                for key, arm in zip(keys, arm_contents, strict=True)
            }
            content = _rest_content(arm_contents[0], about, test, choices)
            out[index] = replace(out[index], content=content, content_hash=content_hash(content))
        return out

    # -- best times -----------------------------------------------------------------------------

    def snapshot(self) -> BestTimeSnapshot:
        given = self.best_times
        if given is None:
            return BestTimeSnapshot()
        if isinstance(given, BestTimeSnapshot):
            return given
        return given()

    def taken_elsewhere(self, accounts: set[int], book: SlotBook) -> None:
        """Times other campaigns' posts hold on ``accounts`` in the window, into ``book``."""
        if not accounts:
            return
        gap = book.gap
        for account_id, moment in self.reference.times_taken(
            self.d.slug, sorted(accounts), self.d.window_start - gap, self.d.window_end + gap
        ):
            book.take(account_id, moment)

    def best_time_slots(
        self,
        communities: Sequence[CommunityRef],
        wanted: dict[int, list[Occurrence]],
        channels: list[tuple[ChannelBlock, dict[int, AccountRef], set[int] | None]],
        existing: list[ExistingPost],
    ) -> dict[tuple[int, str, str], datetime | None]:
        """(community id, channel, period key) -> the post's time (None: no free time).

        Kept first: a post that can no longer change keeps its time, and so does a waiting one
        that is already due or whose time is still allowed and free; then the rest are drawn,
        period by period, community by community, so a kept post is never crowded out."""
        d = self.d
        rule = d.best_time
        assert rule is not None
        zone = d.zone
        book = SlotBook(rule.min_gap)
        social = {
            a.id for channel, on, _r in channels if _shares_page(channel) for a in on.values()
        }
        self.taken_elsewhere(social, book)
        stored = {row.key: row for row in existing}
        allowed: dict[str, dict[int, list[datetime]]] = {}

        def allowed_in(period: Occurrence) -> dict[int, list[datetime]]:
            found = allowed.get(period.key)
            if found is None:
                assert period.until is not None
                window = Period(period.key, period.at, period.until, period.index)
                found = allowed[period.key] = candidates(
                    window, zone=zone, rule=rule, not_before=self.now
                )
            return found

        chosen: dict[tuple[int, str, str], datetime | None] = {}
        pending: list[tuple[Occurrence, CommunityRef, ChannelBlock, AccountRef]] = []
        for period in d.occurrences:
            for community in communities:
                if period.key not in {o.key for o in wanted[community.id]}:
                    continue
                for channel, on, _reached in channels:
                    account = on.get(community.id)
                    if account is None:
                        continue
                    gapped = _shares_page(channel)
                    ahead = channel.upload_ahead if channel.publish_at_occurrence else timedelta()
                    row = stored.get(
                        idempotency_key(d.slug, community.slug, account.slug, period.key)
                    )
                    if row is not None and row.state != CANCELLED_STATE:
                        at = row.scheduled_at + ahead
                        times = allowed_in(period).get(block_of(at, zone), [])
                        if (
                            row.state not in EDITABLE
                            or at < self.now
                            or (at in times and (not gapped or book.free(account.id, at)))
                        ):
                            chosen[(community.id, channel.kind, period.key)] = at
                            if gapped:
                                book.take(account.id, at)
                            continue
                    pending.append((period, community, channel, account))
        snapshot = self.snapshot() if pending else BestTimeSnapshot()
        for period, community, channel, account in pending:
            posterior = snapshot.times_for(community.id, channel.kind)
            rng = draw_seed(self.seed, d.slug, community.slug, channel.kind, period.key)
            gapped = _shares_page(channel)
            account_id = account.id
            slot = choose_slot(
                posterior,
                allowed_in(period),
                rng=rng,
                free=lambda moment, a=account_id, g=gapped: not g or book.free(a, moment),  # type: ignore[misc]
            )
            if slot is None:
                self.no_slot += 1
            else:
                self.best_sources[posterior.source] += 1
                if gapped:
                    book.take(account.id, slot)
            chosen[(community.id, channel.kind, period.key)] = slot
        return chosen

    def note_best_times(self) -> None:
        sources = self.best_sources
        if sources:
            self.notes.append(
                f"best time: {sources['own']} post(s) timed by their community's own figures, "
                f"{sources['programme']} by the programme's pattern, "
                f"{sources['none']} drawn evenly (no figures yet)"
            )
        if self.no_slot:
            self.notes.append(
                f"best time: {self.no_slot} post(s) found no free time in their period "
                "(quiet hours, the gap between posts on one Page, or the period already past): "
                "not planned"
            )

    def note_left_out(self, past: int, no_highlight: int, no_audience: list[str]) -> None:
        d = self.d
        if past:
            self.notes.append(
                f"{past} community occurrence(s) already past when planned: not planned"
            )
        if no_highlight:
            self.notes.append(
                f"{no_highlight} community occurrence(s) have no eligible unposted highlight "
                f"left (people_consent: true or tag {NO_PEOPLE_TAG}): not planned"
            )
        if no_audience:
            shown = ", ".join(no_audience[:5]) + (" ..." if len(no_audience) > 5 else "")
            self.notes.append(
                f"{len(no_audience)} communities have no consenting subscriber in the email "
                f"audience, so get no email: {shown}"
            )
        if d.quiet_skipped:
            self.notes.append(f"{d.quiet_skipped} occurrence(s) dropped by quiet hours")


def _rest_content(
    first: dict[str, Any], about: dict[str, Any], test: VariantTest, choices: dict[str, Any]
) -> dict[str, Any]:
    """The content of a post that gets the chosen variant: the first variant until the
    decision, with what the decision needs (the wait, the minimum sample, every choice)."""
    return {
        **first,
        "variant": {
            **about,
            "arm": "rest",
            "wait": int(test.wait.total_seconds()),
            "min_sample": test.min_sample,
            "choices": choices,
        },
    }


def _splits_posts(channel: ChannelBlock) -> bool:
    """Whether ``channel``'s variant test splits the campaign's posts (not each audience)."""
    return channel.variant_test is not None and channel.variant_test.unit == "posts"


def _with_time(
    channel: ChannelBlock, content: dict[str, Any], occurrence: Occurrence
) -> dict[str, Any]:
    if not channel.publish_at_occurrence:
        return content
    return {**content, "publish_at": occurrence.at.astimezone(UTC).isoformat()}


_DIMENSIONS = ("community", "occurrence", "highlight", "account")


def _depends_on(compiled: CompiledTemplate) -> tuple[str, ...]:
    """Which of the post's coordinates a template's output can depend on."""
    reads = compiled.reads
    if reads is None:
        return _DIMENSIONS
    # tracked() and destination() read the community from the context without naming it
    # (CompiledTemplate.reads lists them when they are called).
    named = reads | ({"community"} if COMMUNITY_HELPERS & reads else set())
    return tuple(name for name in _DIMENSIONS if name in named)


def _occurrence_view(occurrence: Occurrence, zone: ZoneInfo) -> OccurrenceView:
    local = occurrence.at.astimezone(zone)
    return OccurrenceView(occurrence.key, local, local.date(), occurrence.index)


def _community_view(community: CommunityRef) -> CommunityView:
    return CommunityView(
        slug=community.slug,
        name_th=community.name_th,
        name_en=community.name_en,
        province=community.province,
        description=community.description,
        tags=tuple(community.tags or ()),
        website=community.website,
        timezone=community.timezone,
    )


def _highlight_view(highlight: HighlightRef) -> HighlightView:
    return HighlightView(
        key=highlight.key,
        title=highlight.title,
        body=highlight.body,
        media=tuple(highlight.media or ()),
        tags=tuple(highlight.tags or ()),
        link=highlight.link,
    )


def _context(
    channel: ChannelBlock,
    community: CommunityView,
    campaign: CampaignView,
    occurrence: OccurrenceView,
    account: AccountRef | None,
    highlight: HighlightView | None,
    destinations: dict[str, str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        DESTINATIONS: destinations or {},
        "community": community,
        "campaign": campaign,
        "occurrence": occurrence,
        "channel": channel.kind,
        "account": AccountView(account.slug, account.display_name)
        if account is not None
        else AccountView("(none)", "(none)"),
    }
    if highlight is not None:
        context["highlight"] = highlight
    if spec_for(channel.kind).campaign_model.per_recipient is not None:
        context["subscriber"] = SUBSCRIBER
        context["unsubscribe_url"] = UNSUBSCRIBE_URL
    return context
