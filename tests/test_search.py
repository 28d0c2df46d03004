"""The one search box (#14), on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): a Thai word
from the middle of a post's text, communities by Thai name, English name and province,
subscribers by address only for editors and above, wildcard and query-syntax characters
matched as themselves, short queries, and the posts filter by a community's Thai name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, delete, select, text, update

from marketing import migrate
from marketing.db import get_engine, session_scope
from marketing.models import Community, Post, Role, Subscriber
from marketing.search import COUNT_CAP, search
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, email_post, import_sample

MIDDLE = "มาเที่ยวชุมชนของเรา ชมผ้าซิ่นลายน้ำไหลที่ทอด้วยมือ แล้วแวะชิมข้าวแคบกันนะคะ"


def _found(engine: Engine, query: str, kind: str, **kwargs: object) -> list[dict[str, object]]:
    with session_scope(engine) as session:
        result = search(session=session, query=query, **kwargs)  # type: ignore[arg-type]
        return next((g.items for g in result.groups if g.kind == kind), [])


def _post_with(engine: Engine, content: dict[str, str]) -> int:
    post_id = email_post(engine, sent=False)
    with session_scope(engine) as session:
        session.execute(update(Post).where(Post.id == post_id).values(content=content))
    return post_id


@pytest.fixture
def sample(engine: Engine) -> Engine:
    import_sample(engine)
    return engine


def test_a_thai_word_from_the_middle_of_a_post_finds_it(sample: Engine) -> None:
    post_id = _post_with(sample, {"subject": "ข่าวชุมชน", "html": f"<p>{MIDDLE}</p>"})
    other = _post_with(sample, {"subject": "ข่าวชุมชน", "html": "<p>กาแฟดริปจากเขาเมฆ</p>"})
    found = _found(sample, "ลายน้ำไหล", "posts")
    assert [p["id"] for p in found] == [post_id]
    assert "ลายน้ำไหล" in str(found[0]["snippet"]) and "<p>" not in str(found[0]["snippet"])
    # Two words, both required; each in the middle of the text.
    assert [p["id"] for p in _found(sample, "ซิ่น ข้าวแคบ", "posts")] == [post_id]
    assert _found(sample, "ซิ่น กาแฟดริป", "posts") == []
    # The index follows an update made by a bulk statement, and a deletion.
    with session_scope(sample) as session:
        session.execute(
            update(Post).where(Post.id == post_id).values(content={"subject": "ตลาดนัดวันเสาร์"})
        )
    assert _found(sample, "ลายน้ำไหล", "posts") == []
    assert [p["id"] for p in _found(sample, "นัดวันเสา", "posts")] == [post_id]
    with session_scope(sample) as session:
        session.execute(delete(Post).where(Post.id == post_id))
    assert _found(sample, "นัดวันเสา", "posts") == []
    assert [p["id"] for p in _found(sample, "ดริป", "posts")] == [other]


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("หม้อห้อม", "phrae-ban-thung-khram"),  # from the middle of the Thai name
        ("indigo", "phrae-ban-thung-khram"),  # English name, any case
        ("Khao Mek", "chumphon-ban-khao-mek"),
        ("แพร่", "phrae-ban-thung-khram"),  # province
        ("เลย", "loei-ban-phu-pha-mok"),
    ],
)
def test_a_community_is_found_by_thai_or_english_name_or_province(
    sample: Engine, query: str, slug: str
) -> None:
    assert [c["slug"] for c in _found(sample, query, "communities")] == [slug]


def test_wildcards_and_query_syntax_are_matched_as_themselves(sample: Engine) -> None:
    plain = _post_with(sample, {"subject": "ลดราคา 50 บาท"})
    marked = _post_with(sample, {"subject": "ลด 50% ทุกชิ้น a_b \\x \"คำพูด\" 'quote'"})
    for query in ("50%", "%", "_", "a_b", "\\x", '"คำพูด"', "'quote'"):
        assert [p["id"] for p in _found(sample, query, "posts")] == [marked], query
    assert [p["id"] for p in _found(sample, "ราคา 50", "posts")] == [plain]
    # FTS5 and SQL syntax is only text: no error, nothing found.
    for query in ('ผ้า" OR "', "NEAR(ผ้า ทอ)", "*", "x' OR '1'='1", "(", "--", ";"):
        assert _found(sample, query, "posts") == [], query


def test_a_short_query_falls_back_to_like_and_counts_are_bounded(sample: Engine) -> None:
    ids = [_post_with(sample, {"subject": f"ผ้าทอผืนที่ {n}"}) for n in range(COUNT_CAP + 2)]
    with session_scope(sample) as session:
        result = search(session=session, query="ผ้", limit=5)  # two characters
        posts = next(g for g in result.groups if g.kind == "posts")
        assert posts.count == COUNT_CAP and posts.more and len(posts.items) == 5
        assert {p["id"] for p in posts.items} <= set(ids)
        exact = search(session=session, query="ผืนที่ 101", kinds=("posts",))
        assert [p["id"] for p in exact.groups[0].items] == [ids[101]]
        assert search(session=session, query="   ").groups == []


def test_the_sqlite_index_is_made_again_when_a_migration_dropped_its_triggers(
    tmp_path: Path,
) -> None:
    # SQLite only: PostgreSQL's indexes need no triggers.
    sample = get_engine(f"sqlite:///{tmp_path / 'triggers.sqlite3'}")
    migrate.upgrade(sample)
    import_sample(sample)
    with sample.begin() as conn:
        conn.execute(text("DROP TRIGGER search_community_ai"))
        conn.execute(text("DELETE FROM search_community"))
    migrate.upgrade(sample)
    assert [c["slug"] for c in _found(sample, "หม้อห้อม", "communities")] == ["phrae-ban-thung-khram"]


# --- through the app ------------------------------------------------------------------------


@pytest.fixture
def app(sample: Engine) -> FastAPI:
    add_user(sample, "editor", Role.EDITOR)
    add_user(sample, "reader", Role.VIEWER)
    return create_app(engine=sample, clock=clock_at(NOW))


@pytest.fixture
def reader(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("reader")
    yield client
    client.close()


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def test_the_search_page_groups_results_with_thai_labels_and_links(
    editor: WebClient, sample: Engine
) -> None:
    post_id = _post_with(sample, {"subject": "ข่าว", "html": f"<p>{MIDDLE}</p>"})
    page = editor.get("/search", params={"q": "ผ้าซิ่น"})
    assert page.status_code == 200
    assert 'action="/search"' in page.text and 'role="search"' in page.text  # the header box
    assert f'href="/posts/{post_id}"' in page.text and "โพสต์" in page.text
    page = editor.get("/search", params={"q": "น่าน"})
    assert 'href="/communities/nan-ban-doi-ngoen"' in page.text and "ชุมชน" in page.text
    assert "ไม่พบ" in editor.get("/search", params={"q": "ไม่มีคำนี้แน่นอน"}).text
    # Every page has the box.
    assert 'id="search-q"' in editor.get("/calendar").text


def test_subscribers_are_found_by_address_only_by_editors_and_above(
    app: FastAPI, editor: WebClient, reader: WebClient, sample: Engine
) -> None:
    with session_scope(sample) as session:
        address = session.scalars(select(Subscriber.email).order_by(Subscriber.id)).first()
    assert address is not None
    part = address.split("@")[0]
    answer = editor.get("/api/v1/search", params={"q": part})
    assert answer.status_code == 200
    groups = {g["kind"]: g for g in answer.json()["groups"]}
    assert [s["email"] for s in groups["subscribers"]["items"]] == [address]
    assert address in editor.get("/search", params={"q": part}).text
    answer = reader.get("/api/v1/search", params={"q": part})
    assert "subscribers" not in {g["kind"] for g in answer.json()["groups"]}
    assert address not in reader.get("/search", params={"q": part}).text
    assert reader.get("/api/v1/search", params={"q": "x" * 201}).status_code == 422


def test_the_posts_filter_finds_a_community_by_its_thai_name(
    editor: WebClient, sample: Engine
) -> None:
    nan = email_post(sample, sent=False)
    phrae = email_post(sample, community="phrae-ban-thung-khram", sent=False)
    page = editor.get("/posts", params={"community": "ดอยเงิน"})
    assert f'href="/posts/{nan}"' in page.text and f'href="/posts/{phrae}"' not in page.text
    page = editor.get("/posts", params={"community": "phrae-ban-thung-khram"})
    assert f'href="/posts/{phrae}"' in page.text and f'href="/posts/{nan}"' not in page.text
    assert editor.get("/posts", params={"community": "   "}).status_code == 200  # no word
    page = editor.get("/posts", params={"campaign": "ข่าวชุม"})  # words of its name
    assert f'href="/posts/{nan}"' in page.text
    with session_scope(sample) as session:
        assert session.scalars(select(Community.id)).first() is not None
