"""LINE's limits read as what they are on the problems page, in Thai: a month's messages used
up, or an hour's allowance, each with what to do -- not the generic "the channel refused"."""

from __future__ import annotations

import pytest

from marketing.models import Post, PostState
from marketing.web.i18n import translations
from marketing.web.wording import explain

TH = translations("th").gettext


def explained(code: str) -> tuple[str, str, bool]:
    post = Post(state=PostState.FAILED, last_error_code=code, transient_failures=0)
    found = explain(post, account="glo-line", _=TH)
    return found.problem, found.todo, found.retry


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("line:monthly-quota", "ข้อความของบัญชีนี้สำหรับเดือนนี้ใช้หมดแล้ว"),
        ("line:hourly-limit", "บัญชีนี้ส่งข้อความครบจำนวนที่ช่องทางอนุญาตต่อชั่วโมงแล้ว"),
        ("line:rate-limit", "บัญชีนี้ส่งข้อความครบจำนวนที่ช่องทางอนุญาตต่อชั่วโมงแล้ว"),
    ],
)
def test_line_limits_are_named_in_thai(code: str, problem: str) -> None:
    shown, todo, retry = explained(code)
    assert shown == problem
    assert todo.startswith("ไม่ต้องทำอะไร")
    assert retry


def test_a_refused_line_token_asks_for_a_reconnect() -> None:
    shown, todo, retry = explained("line:token")
    assert "glo-line" in shown and not retry
    assert explained("line:refused")[0] == TH("The channel refused this post.")
