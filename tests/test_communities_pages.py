"""The communities list a page at a time (#19): every community on exactly one page, in
province order, with each shown community's subscribers and accounts."""

from __future__ import annotations

import re

from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.models import ChannelAccount, Community, Role, Subscriber
from marketing.web import create_app
from marketing.web.communities import COMMUNITY_PAGE
from tests.support.web import NOW, WebClient, add_user, clock_at, import_sample

LINK = re.compile(r'<a href="/communities/([a-z0-9-]+)">')


def test_every_community_is_on_exactly_one_page_in_province_order(engine: Engine) -> None:
    import_sample(engine)
    add_user(engine, "reader", Role.VIEWER)
    with session_scope(engine) as s:
        for n in range(2 * COMMUNITY_PAGE + 7):
            s.add(
                Community(
                    slug=f"extra-{n:03d}",
                    name_th=f"ชุมชนเพิ่ม {n:03d}",
                    name_en=f"Extra {n}",
                    # Provinces out of slug order, so the order is the page's, not the table's.
                    province=["ตาก", "กระบี่", "น่าน"][n % 3],
                )
            )
        s.flush()
        last = s.scalars(select(Community).where(Community.slug == "extra-106")).one()
        s.add(
            Subscriber(
                community_id=last.id, email="a@example.org", consent_source="form", consent_at=NOW
            )
        )
        expected = s.execute(
            select(Community.slug, Community.province).order_by(
                Community.province, Community.name_th, Community.id
            )
        ).all()
        accounts = s.scalars(
            select(ChannelAccount.display_name).where(ChannelAccount.community_id.is_(None))
        ).all()
    client = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("reader")
    try:
        seen: list[str] = []
        path: str | None = "/communities"
        pages = 0
        while path:
            answer = client.get(path)
            assert answer.status_code == 200
            shown = LINK.findall(answer.text)
            assert 0 < len(shown) <= COMMUNITY_PAGE
            if "extra-106" in shown:
                row = answer.text[answer.text.index('href="/communities/extra-106"') :]
                assert re.search(r'data-label="[^"]+">1</td>', row.split("</tr>")[0])
            for name in accounts:  # the programme-wide accounts on every page
                assert name in answer.text
            seen += shown
            pages += 1
            found = re.search(r'href="(/communities\?page=\d+)" rel="next"', answer.text)
            path = found[1] if found else None
        assert pages == -(-len(expected) // COMMUNITY_PAGE) >= 3
        assert seen == [slug for slug, _province in expected]
        assert "ก่อนหน้า" in answer.text and "ถัดไป" not in answer.text  # Thai pager
        # A page past the end shows the last one.
        assert LINK.findall(client.get("/communities?page=999").text) == shown
    finally:
        client.close()
