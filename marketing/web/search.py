"""The one search box: ``/search`` (a page, the box is in every page's header) and
``GET /api/v1/search?q=`` (JSON), over :func:`marketing.search.search`.

Subscribers (their addresses) are searched only for editors and above, who import them;
a viewer's search leaves that kind out altogether, page and API alike."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from marketing.models import Role, User
from marketing.search import COUNT_CAP, KINDS, MAX_QUERY, search
from marketing.web.api import router as api_router
from marketing.web.deps import DB, Viewer
from marketing.web.rendering import render

router = APIRouter(include_in_schema=False)

PAGE_LIMIT = 20
API_LIMIT = 50
SUBSCRIBERS_ROLE = Role.EDITOR
"""The least role that may find subscribers by address."""

Q = Annotated[str, Query(max_length=MAX_QUERY * 2)]


def kinds_for(user: User) -> tuple[str, ...]:
    """The kinds ``user`` may search."""
    if user.role.allows(SUBSCRIBERS_ROLE):
        return KINDS
    return tuple(k for k in KINDS if k != "subscribers")


@router.get("/search")
def search_page(request: Request, user: Viewer, session: DB, q: Q = "") -> Response:
    result = search(session=session, query=q, kinds=kinds_for(user), limit=PAGE_LIMIT)
    return render(
        request,
        "search.html",
        user=user,
        q=q[:MAX_QUERY],
        result=result,
        cap=COUNT_CAP,
        limit=PAGE_LIMIT,
    )


class SearchGroupOut(BaseModel):
    kind: str
    count: int
    more: bool
    items: list[dict[str, Any]]


class SearchOut(BaseModel):
    query: str
    terms: list[str]
    groups: list[SearchGroupOut]


@api_router.get("/search", response_model=SearchOut)
def search_api(
    user: Viewer,
    session: DB,
    q: Q,
    limit: Annotated[int, Query(ge=1, le=API_LIMIT)] = 10,
) -> SearchOut:
    """Campaigns, posts (by any words of their text, Thai included), communities (Thai or
    English name, province) and -- for editors and above -- subscribers (address) matching
    every word of ``q``; each kind counted up to 100 (``more``: over that)."""
    result = search(session=session, query=q, kinds=kinds_for(user), limit=limit)
    return SearchOut(
        query=result.query,
        terms=result.terms,
        groups=[
            SearchGroupOut(
                kind=g.kind,
                count=g.count,
                more=g.more,
                items=[
                    {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()}
                    for item in g.items
                ],
            )
            for g in result.groups
        ],
    )
