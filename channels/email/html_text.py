"""The HTML body: a plain-text alternative derived from it, its links rewritten to
tracking links, and the snippets added to it (preheader, unsubscribe footer, open pixel)."""

from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError

from channels.base import (
    Recipient,
)
from channels.email.identity import _validated
from channels.email.limits import SLOT_PATTERN, merge_slot


class _TextFromHtml(HTMLParser):
    """Plain text of an HTML email: blocks become paragraphs, links keep their address."""

    _BLOCKS = frozenset(
        {
            *("address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"),
            *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li"),
            *("main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot"),
            *("th", "thead", "tr", "ul"),
        }
    )
    _HIDDEN = frozenset({"head", "script", "style", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n\n- ")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self._hidden:
                self.parts.append(alt)
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":  # <a/> has no text; everything else is as if opened
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(self._hidden - 1, 0)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            target = (href or "").strip()
            if target.startswith("mailto:"):
                target = target[len("mailto:") :].split("?", 1)[0]
            label = "".join(self.parts[start:])
            if target and not target.startswith("#") and target not in label:
                self.parts.append(f" ({target})")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


@functools.lru_cache(maxsize=16)
def text_from_html(html: str) -> str:
    """The plain-text alternative of an HTML email (merge slots pass through untouched)."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


class _Anchors(HTMLParser):
    """Where each ``<a>`` start tag is in the source, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[tuple[int, int], str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append((self.getpos(), self.get_starttag_text() or "", attrs))

    handle_startendtag = handle_starttag


_Anchor = tuple[int, str, list[tuple[str, str | None]]]


@functools.lru_cache(maxsize=16)
def _anchors(html: str) -> tuple[_Anchor, ...]:
    """Each ``<a>`` start tag of ``html``: (offset, source text, attributes), parsed once
    per distinct HTML (a campaign email is rewritten once per recipient)."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    line_starts = [0]
    for line in html.split("\n")[:-1]:
        line_starts.append(line_starts[-1] + len(line) + 1)
    found = []
    for (lineno, column), source, attrs in parser.found:
        start = line_starts[lineno - 1] + column
        if html[start : start + len(source)] == source:  # never rewrite what we cannot place
            found.append((start, source, attrs))
    return tuple(found)


@functools.lru_cache(maxsize=16)
def _links_hold_slots(html: str) -> bool:
    """Whether any link address of ``html`` holds a merge slot, other than a link that is
    the unsubscribe slot and nothing else: that one is never rewritten (the unsubscribe
    link is not tracked, and its slot is no web address), so it does not make the links
    differ per recipient."""
    unsubscribe = merge_slot("unsubscribe_url")
    return any(
        name == "href"
        and value is not None
        and value.strip() != unsubscribe
        and SLOT_PATTERN.search(value)
        for _start, _source, attrs in _anchors(html)
        for name, value in attrs
    )


def rewrite_links(html: str, rewrite: Callable[[str], str | None]) -> str:
    """``html`` with each ``<a href>`` replaced by ``rewrite(href)`` (None: keep it).

    Only the start tags of links change; everything else stays byte for byte.
    """
    pieces: list[str] = []
    done = 0
    for start, source, attrs in _anchors(html):
        new_attrs = []
        changed = False
        for name, value in attrs:
            if name == "href" and value is not None:
                replacement = rewrite(value.strip())
                if replacement is not None:
                    value, changed = replacement, True
            new_attrs.append((name, value))
        if not changed:
            continue
        rendered = "".join(
            f" {name}" if value is None else f' {name}="{html_lib.escape(value, quote=True)}"'
            for name, value in new_attrs
        )
        closing = "/>" if source.rstrip().endswith("/>") else ">"
        pieces += [html[done:start], f"<a{rendered}{closing}"]
        done = start + len(source)
    pieces.append(html[done:])
    return "".join(pieces)


def _is_web_link(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def click_targets(
    content: Mapping[str, Any], recipient: Recipient, *, unsubscribe_url: str
) -> frozenset[str]:
    """Every address a click link in this post's email to ``recipient`` can lead to: the
    http(s) links of its HTML with the recipient's merge fields filled in, as
    :meth:`EmailAdapter.render` signs them.  The click endpoint redirects only to these, so
    even a forged token cannot send a reader to a site the post never linked to."""
    try:
        email = _validated(recipient.email).normalized
    except EmailNotValidError:
        return frozenset()  # no email could have been sent to this address
    values = {"name": recipient.name, "email": email, "unsubscribe_url": unsubscribe_url}
    found = set()
    for _start, _source, attrs in _anchors(str(content.get("html") or "")):
        for name, value in attrs:
            if name == "href" and value is not None:
                url = SLOT_PATTERN.sub(lambda slot: values[slot.group(1)], value).strip()
                if _is_web_link(url) and url != unsubscribe_url:
                    found.add(url)
    return frozenset(found)


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def _after_body_open(html: str, snippet: str) -> str:
    found = _BODY_OPEN.search(html)
    if found is None:
        return snippet + html
    return html[: found.end()] + snippet + html[found.end() :]


def _before_body_close(html: str, snippet: str) -> str:
    closes = list(_BODY_CLOSE.finditer(html))
    if not closes:
        return html + snippet
    at = closes[-1].start()
    return html[:at] + snippet + html[at:]


# Shown in the footer when the content has no unsubscribe_url slot of its own: Thai law
# (Computer Crime Act, 2017 amendment) requires a way to opt out of marketing email.
UNSUBSCRIBE_FOOTER_HTML = (
    '<p style="font-size:12px;color:#666666;margin-top:24px">'
    "ไม่ต้องการรับอีเมลจากเราอีก? "
    f'<a href="{merge_slot("unsubscribe_url")}">ยกเลิกการรับข่าวสาร (unsubscribe)</a></p>'
)
UNSUBSCRIBE_FOOTER_TEXT = f"\n--\nยกเลิกการรับข่าวสาร (unsubscribe): {merge_slot('unsubscribe_url')}\n"
# Hidden preview text: inboxes show the first text of the body next to the subject.
_PREHEADER_HTML = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all">{}</div>'
)
_PIXEL_HTML = (
    '<img src="{}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


# --- configuration --------------------------------------------------------------------
