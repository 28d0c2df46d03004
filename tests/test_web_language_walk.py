"""Every page in one language (#15): signed in with Thai chosen, with realistic data (problems of
every kind, an account that needs reconnecting, a campaign on every channel, audit entries), a
walk over every HTML page of the app -- enumerated from its routers, so a new page is walked
too -- finds no English word in the visible text (allow-list: brand and product names, slugs,
URLs, e-mail addresses); the same walk in English finds no Thai left untranslated beyond the
data people wrote (community and campaign names, post texts).  Both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine, select, update

from marketing.db import session_scope
from marketing.media_library import add_file, default_rules, move_into_library
from marketing.models import (
    AccountHealth,
    Attempt,
    AttemptOutcome,
    Campaign,
    ChannelAccount,
    Community,
    Highlight,
    MediaItem,
    PeopleShown,
    Post,
    PostState,
    Role,
    Subscriber,
    User,
)
from marketing.settings import get_settings
from marketing.web import create_app
from marketing.web.app import ROUTERS
from tests.support.media import EXAMPLES_MEDIA
from tests.support.web import NOW, WebClient, add_user, clock_at, email_post, import_sample

COMMUNITY = "nan-ban-doi-ngoen"

#: A campaign on every channel, applied and approved through the pages.
CAMPAIGN = """\
slug: walk-all-channels
name: เที่ยวชุมชนน่าน
window:
  start: 2031-04-10
  end: 2031-04-16
communities: [nan-ban-doi-ngoen]
channels:
  facebook:
    account: community
    message: "สุขสันต์วันสงกรานต์จาก{{ community.name_th }}"
  email:
    account: glo-email
    subject: "{{ subscriber.name }} ข่าวจากชุมชน"
    html: "<p>สวัสดี {{ subscriber.name }}</p>"
schedule:
  at: [2031-04-13T09:00:00+07:00]
"""

#: Words that are names in every language: brands, products, units and abbreviations that
#: Thai staff read as they are.
BRANDS = {
    "Facebook",
    "YouTube",
    "LINE",
    "CSV",
    "JSON",
    "HTML",
    "UTM",
    "ID",
    "URL",
    "YAML",
    "SMTP",
    "API",
    "Page",  # Facebook's own name for a Page ("เพจ" in running text)
    "Bearer",
    "Google",
    "Developers",  # LINE Developers, the site where an Official Account's tokens are issued
    "Messaging",  # Messaging API, the name of that site's tab
    "UTF",  # UTF-8
    "IP",
    "OTOP",
    "English",  # the language's own name in the choice of language
    "testclient",  # the test client's address in the sign-in list (data)
}
#: A problem each way a post goes wrong: (state, code, message and hint as the pipeline writes
#: them -- English, for the logs and the command line).
PROBLEMS = [
    (
        PostState.NEEDS_RECONNECT,
        "missing_secret",
        "secret FB_PAGE_NAN is not set: export MARKETING_SECRET_FB_PAGE_NAN=...",
        "secret FB_PAGE_NAN is not set: export MARKETING_SECRET_FB_PAGE_NAN=...",
    ),
    (
        PostState.NEEDS_RECONNECT,
        "account_unhealthy",
        "token expired",
        "Renew the account's token (see `marketing accounts`), then run "
        "`marketing accounts reconnected SLUG`: its waiting posts go out again.",
    ),
    (
        PostState.FAILED,
        "facebook:media-refused",
        "media file photo.png is outside the media folder",
        "Put the file in the media folder, fix the campaign and apply it again.",
    ),
    (
        PostState.FAILED,
        "email:development-secret",
        "the development secret signs tracking links",
        "set MARKETING_SECRET_KEY",
    ),
    (
        PostState.FAILED,
        "smtp-554",
        "SMTP 554 relay refused",
        "the relay will refuse this again: check the address or the content",
    ),
    (
        PostState.FAILED,
        "facebook:unreachable",
        "Graph API unreachable",
        "The channel failed 5 times in a row. Check its status, then `marketing posts retry 4`.",
    ),
    (
        PostState.FAILED,
        "invalid-address",
        "invalid address",
        "correct the subscriber's address in the community list and import it again",
    ),
    (
        PostState.UNCONFIRMED,
        "facebook:no-answer",
        "Could not confirm whether it was published: no answer",
        "Look for this post on the channel. If it is there: "
        "`marketing posts resolve 5 --published URL`; if not: `marketing posts retry 5`.",
    ),
]
#: What a person types exactly as written, so the Thai text names it as it is: the columns of
#: a subscriber file, and on the page about access tokens (for people who write scripts) the
#: HTTP header and the command that makes one.
TYPED = {
    "email",
    "name",
    "tags",
    "consent_source",
    "consent_at",
    "Authorization",
    "marketing",
    "users",
    "token",
}
#: Pages in Thai for every reader: the public reconnect page, which a community's member opens
#: without an account (no language chosen).  The HTML reports are walked in both languages.
THAI_ONLY = ("/reconnect/",)
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
THAI = re.compile(r"[\u0e00-\u0e7f]+")
# Whole tokens that are data or addresses, not words: URLs, e-mail addresses, slugs, file names,
# times, numbers.
NOT_WORDS = re.compile(
    r"^(https?://\S*|\S+@\S+|[a-z0-9]+(-[a-z0-9]+)+|\S+\.(png|jpg|mp4|yaml|csv|html|md)|#?\d\S*)$"
)


class VisibleText(HTMLParser):
    """The text a person sees or hears: text nodes outside <script>/<style>, and the title,
    placeholder, aria-label, alt and value (of buttons) attributes.  Left out: what a person
    wrote themselves (a <textarea>'s text) and what is marked ``translate="no"`` (the HTML
    way to say "not words": a channel's own message kept for the administrator, file column
    names, commands)."""

    SKIP = {"script", "style", "textarea"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # open elements: (tag, words left out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("title", "placeholder", "aria-label", "alt"):
            if values.get(name):
                self.chunks.append(str(values[name]))
        if tag == "input" and values.get("type") in {"submit", "button"} and values.get("value"):
            self.chunks.append(str(values["value"]))
        if tag not in self.VOID:
            skip = tag in self.SKIP or values.get("translate") == "no"
            self._stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self._stack):
            while self._stack and self._stack.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not any(skip for _, skip in self._stack) and data.strip():
            self.chunks.append(data.strip())


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks


def english_words(chunk: str, data: set[str]) -> list[str]:
    """The English words of ``chunk`` that are neither names, addresses nor data."""
    found = []
    for token in chunk.split():
        bare = token.strip("()[]{}.,;:!?\"'«»“”‘’·…")
        if not bare or NOT_WORDS.match(bare) or {token, bare} & data or bare in TYPED:
            continue
        found += [w for w in ENGLISH_WORD.findall(bare) if w not in BRANDS and w not in data]
    return found


def thai_left(chunk: str, data: list[str]) -> list[str]:
    """Thai in ``chunk`` beyond the data people wrote and the language's own name."""
    for text in data:
        chunk = chunk.replace(text, " ")
    return [t for t in THAI.findall(chunk) if t != "ไทย"]


def problem_posts(engine: Engine) -> None:
    """One post in each problem of PROBLEMS, with a failed attempt each; the community's
    Facebook account needs reconnecting."""
    with session_scope(engine) as session:
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == f"{COMMUNITY}-facebook")
        ).one()
        account.health = AccountHealth.NEEDS_RECONNECT
        account.health_message = "Facebook refused the Page token: expired (code 190)"
    for state, code, message, hint in PROBLEMS:
        post_id = email_post(engine, slug="news", community=COMMUNITY, sent=False)
        with session_scope(engine) as session:
            session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(
                    state=state,
                    last_error=message,
                    last_error_code=code,
                    action_hint=hint,
                    attempt_count=1,
                )
            )
            outcome = {
                PostState.NEEDS_RECONNECT: AttemptOutcome.AUTH_EXPIRED,
                PostState.FAILED: AttemptOutcome.PERMANENT,
                PostState.UNCONFIRMED: AttemptOutcome.UNCONFIRMED,
            }[state]
            session.add(
                Attempt(
                    post_id=post_id,
                    number=1,
                    started_at=NOW - timedelta(minutes=5),
                    finished_at=NOW - timedelta(minutes=4),
                    outcome=outcome,
                    error_code=code,
                    error_message=message,
                    worker="celery@host",
                )
            )


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "malee", Role.ADMIN)
    add_user(engine, "somchai", Role.APPROVER)
    add_user(engine, "reader", Role.ADMIN, language="en")
    with session_scope(engine) as session:
        for user in session.scalars(select(User)):
            user.display_name = {"malee": "มาลี ใจดี", "somchai": "สมชาย รักถิ่น"}.get(
                user.username, user.display_name
            )
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def walked(app: FastAPI, engine: Engine) -> Iterator[FastAPI]:
    """The app after a day's work: a campaign applied and approved through the pages, posts
    in every problem, an account to reconnect, a subscriber import with problems."""
    malee = WebClient(app).sign_in("malee")
    answer = malee.post("/campaigns/apply", data={"yaml": CAMPAIGN})
    assert answer.status_code == 303, answer.text[:800]
    somchai = WebClient(app).sign_in("somchai")
    hashed = re.search(
        r'name="approval_hash" value="([^"]+)"', somchai.get("/campaigns/walk-all-channels").text
    )
    assert hashed, "no approval form on the campaign page"
    approved = somchai.post(
        "/campaigns/walk-all-channels/approve", data={"approval_hash": hashed[1]}
    )
    assert approved.status_code == 303, approved.text[:800]
    problem_posts(engine)
    with session_scope(engine) as session:  # the media library: a photo and a video
        root = get_settings().media_root
        for source in (
            EXAMPLES_MEDIA / "songkran-poster.png",
            EXAMPLES_MEDIA / "songkran-clip.mp4",
        ):
            add_file(
                session=session,
                source=move_into_library(source, root),
                name=source.name,
                root=root,
                rules=default_rules(),
                uploaded_by="malee",
                people=PeopleShown.YES,
            )
    malee.close()
    somchai.close()
    yield app


def pages(app: FastAPI, engine: Engine) -> list[str]:
    """Every HTML page of the app (GET routes of the routers, with real path values), and the
    variants a person reaches through its links."""
    with session_scope(engine) as session:
        values = {
            "slug": COMMUNITY,
            "post_id": str(session.scalars(select(Post.id).order_by(Post.id.desc())).first()),
            "token": "no-such-link",  # a reconnect link that is not one: its refusal page
            # The video: its page names a container and codecs.
            "item_id": str(session.scalars(select(MediaItem.id).order_by(MediaItem.id)).all()[-1]),
            "year": "2026",  # the yearly programme report
        }
        campaign = session.scalars(select(Campaign.slug).order_by(Campaign.id)).first()
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if route.path.startswith(("/api/", "/e/", "/go/", "/media/", "/static", "/login")):
            continue  # JSON, the e-mail and destination links (their own tests), files
        if route.path in {"/campaigns/{slug}/source"}:
            continue  # the campaign file as the person wrote it
        if route.path.startswith("/library/") and route.path.endswith(("/file", "/thumbnail")):
            continue  # a media library file, its thumbnail
        if route.path.startswith("/accounts/connect/") and route.path.endswith("/delegated"):
            continue  # a redirect to the provider's consent page (test_delegated_connect)
        if route.path.startswith("/imports/"):
            continue  # walked below, through an import
        here = dict(values)
        if route.path.startswith(("/campaigns/", "/reports/campaign")):
            here["slug"] = str(campaign)
        path = re.sub(r"\{(\w+)\}", lambda m: here[m[1]], route.path)  # noqa: B023
        found.append(path)
    assert len(found) >= 18  # the enumeration found the app's pages
    return [
        *found,
        "/posts?state=failed",
        "/calendar?view=week",
        "/posts/999999",  # the page for a post that is not there
    ]


def data_texts(engine: Engine) -> tuple[set[str], list[str]]:
    """What people wrote (names, texts), as words and as whole strings (longest first)."""
    with session_scope(engine) as session:
        strings: set[str] = set()
        for community in session.scalars(select(Community)):
            strings.update(
                s
                for s in (community.name_th, community.name_en, community.slug, community.province)
                if s
            )
            strings.update(community.description.split() if community.description else ())
            strings.update(community.tags or ())
        for highlight in session.scalars(select(Highlight)):
            for column in Highlight.__table__.columns:
                value = getattr(highlight, column.key)
                if isinstance(value, str):
                    strings.update([value, *value.split()])
                elif isinstance(value, list):
                    strings.update(str(v) for v in value)
        for row in session.execute(select(Campaign.name, Campaign.slug)):
            strings.update(row)
        for row in session.execute(select(ChannelAccount.display_name, ChannelAccount.slug)):
            strings.update(s for s in row if s)
        for row in session.execute(select(User.display_name, User.username)):
            strings.update(row)
        for row in session.execute(
            select(Subscriber.name, Subscriber.email, Subscriber.consent_source)
        ):
            strings.update(s for s in row if s)
        for content in session.scalars(select(Post.content)):
            strings.update(str(v) for v in content.values() if isinstance(v, str))
    words = {w for s in strings for w in s.split()}
    return words, sorted(strings, key=len, reverse=True)


def walk(client: WebClient, paths: list[str]) -> dict[str, list[str]]:
    texts = {}
    for path in paths:
        page = client.get(path)
        if not page.headers["content-type"].startswith("text/html"):
            continue  # not a page: probes and metrics (/healthz, /metrics) answer for machines
        # A refusal is a page too (a missing post, a connect callback without its state).
        assert page.status_code in {200, 400, 403, 404}, (path, page.status_code, page.text[:500])
        texts[path] = visible_text(page.text)
    assert len(texts) >= 18, sorted(texts)  # the walk saw the app's pages
    return texts


def test_thai_pages_have_no_english_words(walked: FastAPI, engine: Engine) -> None:
    words, _ = data_texts(engine)
    client = WebClient(walked).sign_in("malee")
    found = {}
    for path, chunks in walk(client, pages(walked, engine)).items():
        english = [(w, c) for c in chunks for w in english_words(c, words)]
        if english:
            found[path] = english[:8]
    assert not found, "\n".join(f"{p}: {e}" for p, e in found.items())


def test_english_pages_have_no_thai_left(walked: FastAPI, engine: Engine) -> None:
    _, strings = data_texts(engine)
    client = WebClient(walked).sign_in("reader")
    found = {}
    paths = [p for p in pages(walked, engine) if not p.startswith(THAI_ONLY)]
    texts = walk(client, paths)
    reports = {p: " ".join(c) for p, c in texts.items() if p.startswith("/reports/")}
    assert "All communities (by engagement rate)" in reports["/reports/overview"]
    assert any("Posts by state" in text for text in reports.values())  # the campaign's
    for path, chunks in texts.items():
        thai = [(t, c) for c in chunks for t in thai_left(c, strings)]
        if thai:
            found[path] = thai[:8]
    assert not found, "\n".join(f"{p}: {e}" for p, e in found.items())


#: A campaign file with a problem of each kind that has a code: a value that cannot be read,
#: a missing and an unknown field, an unknown community, media outside and missing.
MISTAKES = """\
slug: walk-mistakes
name: ทดลอง
window:
  start: 2031-04-31
  end: 2031-04-16
communities: [nan-ban-doi-ngoen, nan-ban-doi-ngoenn]
colour: red
channels:
  facebook:
    account: community
    message: "สวัสดี"
    photo: ../../etc/passwd
  youtube:
    account: community
    title: t
    video: missing.mp4
schedule:
  at: [2031-04-13T09:00:00+07:00]
"""


def test_a_campaign_files_problems_are_in_thai(app: FastAPI, engine: Engine) -> None:
    malee = WebClient(app).sign_in("malee")
    checked = malee.post("/campaigns/check", data={"yaml": MISTAKES})
    assert checked.status_code == 422, checked.text[:800]
    text = " ".join(visible_text(checked.text))
    assert "อ่านค่า 2031-04-31 ไม่ได้" in text  # the file is read before it is checked
    fixed = MISTAKES.replace("2031-04-31", "2031-04-10")
    checked = malee.post("/campaigns/check", data={"yaml": fixed})
    text = " ".join(visible_text(checked.text))
    assert "ไม่มีชุมชน nan-ban-doi-ngoenn — หมายถึง nan-ban-doi-ngoen หรือเปล่า" in text
    assert "../../etc/passwd ออกนอกโฟลเดอร์สื่อ" in text
    assert "ไม่พบไฟล์สื่อ missing.mp4 ในโฟลเดอร์สื่อ" in text
    assert "ไม่ใช่ช่องที่รู้จัก" in text  # colour
    assert "/data/media" not in checked.text  # no server path on the page
    words, _ = data_texts(engine)
    words |= {"../../etc/passwd", "missing.mp4"}  # paths as the person wrote them
    english = [w for c in visible_text(checked.text) for w in english_words(c, words)]
    assert not english, english
    malee.close()
