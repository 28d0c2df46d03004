"""Words and number formats that people read in reports (Thai for HTML, English for terminals)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from channels import registry
from marketing.reports.period import thai_date

# "all" is the row of every channel together; each channel's own name and colour come from
# its spec (channels.registry).
ALL_CHANNELS = {"th": "รวมทุกช่องทาง", "en": "All"}
ALL_COLOUR = "#555555"


def channel_names(*, en: bool) -> dict[str, str]:
    """kind (and ``all``) -> what a report calls it, in English or Thai."""
    language = "en" if en else "th"
    return {**registry.labels(language), "all": ALL_CHANNELS[language]}


def channel_colours() -> dict[str, str]:
    """kind (and ``all``) -> its colour in charts."""
    return {**registry.colours(), "all": ALL_COLOUR}


METRIC_EN = {
    "posts": "Posts",
    "views": "Views",
    "reactions": "Reactions",
    "comments": "Comments",
    "shares": "Shares",
    "clicks": "Clicks",
    "opens": "E-mail opens",
    "unsubscribes": "Unsubscribes",
    "emails_sent": "E-mails sent",
    "interactions": "Interactions",
    "reach": "Reach",
    "engagement_rate": "Engagement rate",
}

METRIC_TH = {
    "posts": "โพสต์",
    "views": "การมองเห็น",
    "reactions": "การแสดงความรู้สึก",
    "comments": "ความคิดเห็น",
    "shares": "การแชร์",
    "clicks": "การคลิก",
    "opens": "การเปิดอีเมล",
    "unsubscribes": "ยกเลิกรับข่าวสาร",
    "emails_sent": "อีเมลที่ส่ง",
    "interactions": "การมีส่วนร่วม",
    "reach": "การเข้าถึง",
    "engagement_rate": "อัตราการมีส่วนร่วม",
}

TREND_TH = {
    "inactive": "ไม่มีความเคลื่อนไหว",
    "new": "เริ่มมีผลงาน",
    "growing": "เติบโต",
    "steady": "คงที่",
    "declining": "ลดลง",
}
TREND_EN = {
    "inactive": "inactive",
    "new": "new",
    "growing": "growing",
    "steady": "steady",
    "declining": "declining",
}
# Trends that ask staff to look closer.
NEEDS_HELP = frozenset({"inactive", "declining"})

STATE_TH = {
    "scheduled": "รอเวลาเผยแพร่",
    "queued": "อยู่ในคิว",
    "publishing": "กำลังเผยแพร่",
    "published": "เผยแพร่แล้ว",
    "failed": "ล้มเหลว",
    "unconfirmed": "ยังไม่ยืนยันผล",
    "needs_reconnect": "ต้องเชื่อมต่อบัญชีใหม่",
    "cancelled": "ยกเลิกแล้ว",
}

STATE_EN = {
    "scheduled": "scheduled",
    "queued": "queued",
    "publishing": "publishing",
    "published": "published",
    "failed": "failed",
    "unconfirmed": "unconfirmed",
    "needs_reconnect": "needs reconnecting",
    "cancelled": "cancelled",
}

CAMPAIGN_STATUS_TH = {
    "draft": "ร่าง (รออนุมัติ)",
    "approved": "อนุมัติแล้ว",
    "paused": "หยุดชั่วคราว",
    "cancelled": "ยกเลิกแล้ว",
    "completed": "เสร็จสิ้น",
}

CAMPAIGN_STATUS_EN = {
    "draft": "draft (awaiting approval)",
    "approved": "approved",
    "paused": "paused",
    "cancelled": "cancelled",
    "completed": "completed",
}

SORT_TH = {
    "rate": "อัตราการมีส่วนร่วม",
    "interactions": "จำนวนการมีส่วนร่วม",
    "reach": "การเข้าถึง",
    "views": "การมองเห็น",
    "posts": "จำนวนโพสต์",
    "growth": "การเปลี่ยนแปลงของการมีส่วนร่วม",
    "rate-change": "การเปลี่ยนแปลงของอัตราการมีส่วนร่วม",
    "name": "ชื่อชุมชน",
    "slug": "รหัสชุมชน",
    "province": "จังหวัด",
}

SORT_EN = {
    "rate": "engagement rate",
    "interactions": "interactions",
    "reach": "reach",
    "views": "views",
    "posts": "posts",
    "growth": "change in interactions",
    "rate-change": "change in engagement rate",
    "name": "community name",
    "slug": "community code",
    "province": "province",
}

RATE_DEFINITION_TH = (
    "อัตราการมีส่วนร่วม = การมีส่วนร่วม ÷ การเข้าถึง คำนวณจากผลรวมของทั้งช่วงเวลา "
    "(ไม่ใช่ค่าเฉลี่ยของอัตรารายวัน) — เฟซบุ๊กและยูทูบ: (การแสดงความรู้สึก + ความคิดเห็น + "
    "การแชร์ + การคลิก) ÷ การมองเห็น; อีเมล: การคลิก ÷ อีเมลที่ส่ง; รวมทุกช่องทาง: "
    "ผลรวมการมีส่วนร่วมของทุกช่องทาง ÷ ผลรวมการเข้าถึงของทุกช่องทาง (ถ่วงน้ำหนักตามการเข้าถึง)"
)
RATE_DEFINITION_EN = (
    "Engagement rate = interactions / reach, from the period's sums (never an average of "
    "daily rates). Facebook, YouTube: (reactions + comments + shares + clicks) / views; "
    "email: clicks / emails sent; all channels: the sum of interactions / the sum of reach "
    "(weighted by reach)."
)


def percent(value: float, *, digits: int = 2) -> str:
    """``0.0345`` as ``3.45%``."""
    return f"{value * 100:.{digits}f}%"


NEW_TH, NEW_EN = "ใหม่", "new"


def _nothing_before(current: float | None, *, en: bool) -> str:
    # Nothing to compare with: "new" when there is something now, a dash when both are empty.
    if current:
        return NEW_EN if en else NEW_TH
    return "—"


def change(value: float | None, *, current: float | None = None, en: bool = False) -> str:
    """A relative change as ``+25.0%`` / ``-3.1%``; "ใหม่" (``new``) when the previous period
    had none and ``current`` has some, ``—`` when both had none."""
    if value is None:
        return _nothing_before(current, en=en)
    return f"{value * 100:+.1f}%"


def points(value: float | None, *, current: float | None = None, en: bool = False) -> str:
    """A rate difference in percentage points (``value`` is in points): ``+1.20 จุด``
    (``+1.20 pt`` in English); "ใหม่" / ``new`` as :func:`change` when there was no reach
    before (``current``: the reach now)."""
    if value is None:
        return _nothing_before(current, en=en)
    return f"{value:+.2f} {'pt' if en else 'จุด'}"


def versus_before(
    value: float | None, *, current: float, is_points: bool = False, en: bool = False
) -> str:
    """A card's line under a figure: ``เทียบช่วงก่อน +25.0%``, or "ใหม่ (ช่วงก่อนไม่มีข้อมูล)" when
    the previous period had nothing (no change from zero is ever shown); English with ``en``."""
    if value is None:
        nothing = "no data in the previous period" if en else "ช่วงก่อนไม่มีข้อมูล"
        if current:
            return f"{NEW_EN if en else NEW_TH} ({nothing})"
        return nothing
    shown = points(value, en=en) if is_points else change(value, en=en)
    return f"{'vs the previous period' if en else 'เทียบช่วงก่อน'} {shown}"


def rate(subject: Any, *, en: bool = False) -> str:
    """``subject``'s engagement rate as a percentage -- or, while it rests on too few emails and
    views (``rate_meaningful`` is false), "ยังน้อยเกินไป (3 ฉบับ)" / ``too few (3 emails)``;
    ``—`` with no reach at all."""
    if subject.rate_meaningful:
        return percent(subject.engagement_rate)
    if not subject.reach:
        return "—"
    counts = []
    if subject.views:
        counts.append(f"{subject.views:,} views" if en else f"{subject.views:,} ครั้ง")
    if subject.emails_sent:
        counts.append(f"{subject.emails_sent:,} emails" if en else f"{subject.emails_sent:,} ฉบับ")
    return f"{'too few' if en else 'ยังน้อยเกินไป'} ({', '.join(counts)})"


def integer(value: int) -> str:
    """``12345`` as ``12,345``."""
    return f"{value:,}"


def local_time(value: datetime | None, *, zone: ZoneInfo, buddhist_era: bool) -> str:
    """An aware time shown in ``zone``: ``5 ต.ค. 2569 10:00``; empty for None."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{thai_date(local.date(), buddhist_era=buddhist_era)} {local:%H:%M}"


def metric_text(name: str, metrics: Any, *, en: bool = False) -> str:
    """One figure of ``metrics`` as shown in a table: the rate as a percentage (see
    :func:`rate`), counts with thousands separators."""
    if name == "engagement_rate":
        return rate(metrics, en=en)
    return integer(getattr(metrics, name))
