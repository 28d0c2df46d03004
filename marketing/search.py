"""One search over campaigns, posts, communities and subscribers, for the page's search box,
the JSON API and the posts filter.

Thai is written without spaces between words, so words cannot be found by splitting text
on spaces.  Search matches substrings instead, through a trigram index on each backend:

* **PostgreSQL**: the ``pg_trgm`` extension and GIN trigram indexes (migration
  ``0011_search``) on the expressions searched here: a post's text (:data:`POST_TEXT_KEYS`
  of its content, through the SQL function ``post_search_text``), a community's Thai and
  English names and province, a campaign's name and slug, a subscriber's address.
  ``ILIKE '%term%'`` uses them for terms of three characters or more.
* **SQLite**: FTS5 tables with the ``trigram`` tokenizer (SQLite 3.34 or later), one per
  kind, whose rowid is the object's id, kept in step with their table by triggers
  (:func:`install_sqlite_index`), so the bulk statements that store a plan keep them right
  too.  Subscribers are left out on purpose: an FTS5 index keeps the trigrams of a deleted
  text in its segments until they are merged, and an erased address (PDPA) must not survive
  in the file; their addresses are matched with ``LIKE`` on the table (their numbers are
  small).

A query is split on spaces into terms; every term must match (in any of the kind's
fields).  A term shorter than three characters cannot use a trigram index: then the kind is
searched with ``LIKE`` over only its newest :data:`SHORT_SCAN` rows, so a one-letter query
costs the same however large the tables grow.  ``%``, ``_`` and ``\\`` in a query are
matched as themselves; a query is at most :data:`MAX_QUERY` characters and
:data:`MAX_TERMS` terms.  Each kind reads at most :data:`COUNT_CAP` + 1 matches (counted up to
:data:`COUNT_CAP`, shown as "more than") and answers at most ``limit`` of them in its own
order (posts: latest time first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from marketing.models import Campaign, Community, Post, Subscriber

MAX_QUERY = 100
MAX_TERMS = 5
MIN_TRIGRAM = 3
SHORT_SCAN = 5_000
COUNT_CAP = 100
KINDS = ("campaigns", "posts", "communities", "subscribers")

POST_TEXT_KEYS = ("message", "title", "description", "subject", "preheader", "text", "html")
"""The content keys whose text a post is found by (every channel's words for people)."""

# The SQLite FTS5 tables: name -> (table, the columns it reads, the SQL of the indexed text
# for row ``{row}``).
_SQLITE_INDEXES: dict[str, tuple[str, str, str]] = {
    "search_post": (
        "post",
        "content",
        " || ' ' || ".join(
            f"coalesce(json_extract({{row}}.content, '$.{key}'), '')" for key in POST_TEXT_KEYS
        ),
    ),
    "search_community": (
        "community",
        "name_th, name_en, province, slug",
        "{row}.name_th || ' ' || {row}.name_en || ' ' || {row}.province || ' ' || {row}.slug",
    ),
    "search_campaign": ("campaign", "name, slug", "{row}.name || ' ' || {row}.slug"),
}
SQLITE_SEARCH_TABLES = tuple(_SQLITE_INDEXES)
_FTS_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")

# PostgreSQL: the expression indexes (name, table, expression).
PG_POST_TEXT = "post_search_text(content)"
PG_INDEXES = (
    ("ix_post_search_trgm", "post", PG_POST_TEXT),
    ("ix_community_name_th_trgm", "community", "name_th"),
    ("ix_community_name_en_trgm", "community", "name_en"),
    ("ix_community_province_trgm", "community", "province"),
    ("ix_campaign_name_trgm", "campaign", "name"),
    ("ix_campaign_slug_trgm", "campaign", "slug"),
    ("ix_subscriber_email_trgm", "subscriber", "email"),
)


def is_search_index(name: str | None) -> bool:
    """Whether a table or index is part of the search index (built by migration, not by the
    models): for Alembic's comparison of the models with the database."""
    if not name:
        return False
    if name.endswith("_trgm"):
        return True
    return any(name == t or name in (t + s for s in _FTS_SHADOWS) for t in SQLITE_SEARCH_TABLES)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: leave the search index out of the comparison."""
    return not (reflected and compare_to is None and is_search_index(name))


def install_pg_index(connection: Connection) -> None:
    """Create ``pg_trgm``, the post text function and the trigram indexes (idempotent)."""
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    parts = " || ' ' || ".join(f"coalesce(content->>'{key}', '')" for key in POST_TEXT_KEYS)
    # IMMUTABLE: json ->> and || are; an index may then be built on it.
    connection.execute(
        text(
            "CREATE OR REPLACE FUNCTION post_search_text(content json) RETURNS text "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {parts} $$"
        )
    )
    for name, table, expression in PG_INDEXES:
        connection.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                f"USING gin (({expression}) gin_trgm_ops)"
            )
        )


def drop_pg_index(connection: Connection) -> None:
    for name, _table, _expression in PG_INDEXES:
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    connection.execute(text("DROP FUNCTION IF EXISTS post_search_text(json)"))


def install_sqlite_index(connection: Connection) -> bool:
    """Create any missing FTS5 table or trigger, and fill a table whose triggers were
    missing (a migration that rebuilds a table in SQLite drops its triggers).  Idempotent;
    True if something had to be made."""
    made = False
    existing = set(
        connection.execute(
            text("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        ).scalars()
    )
    for index, (table, columns, expression) in _SQLITE_INDEXES.items():
        triggers = {f"{index}_ai", f"{index}_au", f"{index}_ad"}
        if index in existing and triggers <= existing:
            continue
        made = True
        if index not in existing:
            connection.execute(
                text(f"CREATE VIRTUAL TABLE {index} USING fts5(body, tokenize='trigram')")
            )
        for trigger in triggers & existing:
            connection.execute(text(f"DROP TRIGGER {trigger}"))
        new, old = expression.format(row="new"), expression.format(row="old")
        connection.execute(
            text(
                f"CREATE TRIGGER {index}_ai AFTER INSERT ON {table} BEGIN "
                f"INSERT INTO {index}(rowid, body) VALUES (new.id, {new}); END"
            )
        )
        connection.execute(
            text(
                # Only an update of the columns it reads (a post's state changes often).
                f"CREATE TRIGGER {index}_au AFTER UPDATE OF {columns}, id ON {table} "
                f"WHEN ({old}) IS NOT ({new}) OR old.id != new.id BEGIN "
                f"DELETE FROM {index} WHERE rowid = old.id; "
                f"INSERT INTO {index}(rowid, body) VALUES (new.id, {new}); END"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER {index}_ad AFTER DELETE ON {table} BEGIN "
                f"DELETE FROM {index} WHERE rowid = old.id; END"
            )
        )
        connection.execute(text(f"DELETE FROM {index}"))
        connection.execute(
            text(
                f"INSERT INTO {index}(rowid, body) "
                f"SELECT id, {expression.format(row=table)} FROM {table}"
            )
        )
    return made


def drop_sqlite_index(connection: Connection) -> None:
    for index in SQLITE_SEARCH_TABLES:
        for suffix in ("_ai", "_au", "_ad"):
            connection.execute(text(f"DROP TRIGGER IF EXISTS {index}{suffix}"))
        connection.execute(text(f"DROP TABLE IF EXISTS {index}"))


# --- the query ------------------------------------------------------------------------------


def terms_of(query: str) -> list[str]:
    """The terms of a query: split on white space, at most :data:`MAX_TERMS`, each once."""
    terms: list[str] = []
    for term in query[:MAX_QUERY].split():
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_match(terms: Sequence[str]) -> str:
    """An FTS5 query: every term as a quoted phrase (quotes doubled), all required."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _matches(columns: Sequence[Any], terms: Sequence[str]) -> ColumnElement[bool]:
    return and_(*(or_(*(c.ilike(_like_pattern(t), escape="\\") for c in columns)) for t in terms))


@dataclass
class Group:
    """The results of one kind: at most ``limit`` items, and how many matched (counted up to
    :data:`COUNT_CAP`; ``more``: more than that)."""

    kind: str
    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    more: bool = False


@dataclass
class SearchResult:
    query: str
    terms: list[str]
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)


def _post_text(content: dict[str, Any]) -> str:
    return " ".join(str(content.get(k) or "") for k in POST_TEXT_KEYS if content.get(k))


def snippet(body: str, terms: Sequence[str], width: int = 60) -> str:
    """Up to about ``2 * width`` characters of ``body`` around the first term found."""
    flat = re.sub(r"<[^>]{0,200}>", " ", body)
    flat = " ".join(flat.split())
    lower = flat.lower()
    at = min((i for i in (lower.find(t.lower()) for t in terms) if i >= 0), default=0)
    start = max(0, at - width)
    end = min(len(flat), at + width)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


class _Searcher:
    def __init__(self, session: Session, terms: list[str], limit: int) -> None:
        self.session = session
        self.terms = terms
        self.limit = limit
        self.dialect = session.get_bind().dialect.name
        self.short = any(len(t) < MIN_TRIGRAM for t in terms)

    def _ids(self, model: Any, columns: Sequence[Any], fts: str | None) -> Select[Any]:
        """A select of the ids of ``model`` that match every term."""
        if self.short:
            newest = select(model.id).order_by(model.id.desc()).limit(SHORT_SCAN).subquery()
            return select(model.id).where(
                model.id.in_(select(newest.c.id)), _matches(columns, self.terms)
            )
        if self.dialect == "sqlite" and fts is not None:
            return (
                select(literal_column("rowid").label("id"))
                .select_from(text(fts))
                .where(text(f"{fts} MATCH :fts_query").bindparams(fts_query=_fts_match(self.terms)))
            )
        return select(model.id).where(_matches(columns, self.terms))

    def _group(
        self,
        kind: str,
        model: Any,
        columns: Sequence[Any],
        fts: str | None,
        order: Sequence[Any],
    ) -> tuple[Group, list[Any]]:
        # At most COUNT_CAP + 1 matches are read, in whatever order the database finds them
        # (no ORDER BY: PostgreSQL cannot estimate how many rows a trigram LIKE matches and
        # would sort every match of a common word), so a common word costs as little as a
        # rare one; the kind's own order picks the ``limit`` shown among them.
        found = list(self.session.scalars(self._ids(model, columns, fts).limit(COUNT_CAP + 1)))
        group = Group(kind, count=min(len(found), COUNT_CAP), more=len(found) > COUNT_CAP)
        if not found:
            return group, []
        rows = list(
            self.session.scalars(
                select(model).where(model.id.in_(found)).order_by(*order).limit(self.limit)
            )
        )
        return group, rows

    def campaigns(self) -> Group:
        group, rows = self._group(
            "campaigns",
            Campaign,
            [Campaign.name, Campaign.slug],
            "search_campaign",
            [Campaign.created_at.desc(), Campaign.id.desc()],
        )
        group.items = [
            {
                "slug": c.slug,
                "name": c.name,
                "status": c.status.value,
                "url": f"/campaigns/{c.slug}",
            }
            for c in rows
        ]
        return group

    def communities(self) -> Group:
        group, rows = self._group(
            "communities",
            Community,
            [Community.name_th, Community.name_en, Community.province, Community.slug],
            "search_community",
            [Community.slug],
        )
        group.items = [
            {
                "slug": c.slug,
                "name_th": c.name_th,
                "name_en": c.name_en,
                "province": c.province,
                "url": f"/communities/{c.slug}",
            }
            for c in rows
        ]
        return group

    def posts(self) -> Group:
        if self.dialect == "postgresql":
            columns: list[Any] = [func.post_search_text(Post.content)]
        else:
            columns = [
                func.coalesce(func.json_extract(Post.content, f"$.{key}"), "")
                for key in POST_TEXT_KEYS
            ]
        group, rows = self._group(
            "posts", Post, columns, "search_post", [Post.scheduled_at.desc(), Post.id.desc()]
        )
        names = {
            p.id: (p.campaign.slug, p.campaign.name, p.community.slug, p.community.name_th)
            for p in rows
        }
        group.items = [
            {
                "id": p.id,
                "channel": p.channel.value,
                "state": p.state.value,
                "scheduled_at": p.scheduled_at,
                "campaign_slug": names[p.id][0],
                "campaign_name": names[p.id][1],
                "community_slug": names[p.id][2],
                "community_name": names[p.id][3],
                "snippet": snippet(_post_text(p.content), self.terms),
                "url": f"/posts/{p.id}",
            }
            for p in rows
        ]
        return group

    def subscribers(self) -> Group:
        group, rows = self._group(
            "subscribers", Subscriber, [Subscriber.email], None, [Subscriber.email, Subscriber.id]
        )
        slugs = {
            row.id: row.slug
            for row in self.session.execute(
                select(Community.id, Community.slug).where(
                    Community.id.in_({s.community_id for s in rows})
                )
            )
        }
        group.items = [
            {
                "email": s.email,
                "community_slug": slugs.get(s.community_id, ""),
                "subscribed": s.unsubscribed_at is None,
                "url": f"/communities/{slugs.get(s.community_id, '')}",
            }
            for s in rows
        ]
        return group


def search(
    *, session: Session, query: str, kinds: Sequence[str] = KINDS, limit: int = 10
) -> SearchResult:
    """Everything of ``kinds`` that matches every term of ``query`` (see the module
    docstring); the caller decides which kinds a person may see."""
    terms = terms_of(query)
    groups: list[Group] = []
    if terms:
        searcher = _Searcher(session, terms, limit)
        for kind in KINDS:
            if kind in kinds:
                groups.append(getattr(searcher, kind)())
    return SearchResult(query=" ".join(terms), terms=terms, groups=groups)


def community_ids_matching(session: Session, query: str) -> Select[Any]:
    """The ids of the communities whose slug, Thai or English name or province holds
    ``query`` (for the posts filter)."""
    terms = terms_of(query)
    if not terms:
        return select(Community.id).where(false())
    searcher = _Searcher(session, terms, limit=0)
    return searcher._ids(
        Community,
        [Community.name_th, Community.name_en, Community.province, Community.slug],
        "search_community",
    )
