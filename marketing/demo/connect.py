"""The demo connects its Facebook Pages, YouTube channels and LINE Official Accounts as an
admin would: through the web app's connect flows (:mod:`marketing.web.connect`), over HTTP,
with a browser-like client.

The web app runs in this process under uvicorn on a free loopback port.  A demo admin signs
in; "Connect a Facebook Page" leads to the Graph sandbox's Login dialog, whose form is
submitted as shown (every Page and permission ticked), and the picker as shown (each Page
tied to its community); then one pass through Google's consent page per YouTube channel,
and each LINE OA's channel access token pasted into the LINE form (checked against the LINE
sandbox's bot info).
The tokens the sandboxes issue land only in the encrypted store (``account_token``); the
service never sees the Pages' and channels' preset tokens.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests
from sqlalchemy import func, select

from channels.sandbox.suite import SandboxSuite
from marketing.db import get_engine, session_scope
from marketing.models import AccountToken, ChannelAccount, ChannelKind, Role
from marketing.settings import DEVELOPMENT_TOKEN_KEY, get_settings

#: The Facebook app and Google OAuth client the sandboxes know (sandbox-only values).
APP_ID, APP_SECRET = "2564000000001", "demo-sandbox-app-secret"
CLIENT_ID = "demo-sandbox.apps.googleusercontent.com"
CLIENT_SECRET = "demo-sandbox-client-secret"
FACEBOOK_USER = "demo-page-admin"
TIMEOUT = 30.0


def connect_settings(suite: SandboxSuite) -> dict[str, str]:
    """The settings that let the web app connect accounts through the sandboxes; the token
    key is the development one, refused as soon as the public URL is not this machine."""
    return {
        "MARKETING_FACEBOOK_APP_ID": APP_ID,
        "MARKETING_FACEBOOK_APP_SECRET": APP_SECRET,
        "MARKETING_FACEBOOK_DIALOG_URL": suite.graph.url,
        "MARKETING_GOOGLE_CLIENT_ID": CLIENT_ID,
        "MARKETING_GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "MARKETING_GOOGLE_AUTH_URI": suite.youtube.url + "/o/oauth2/auth",
        "MARKETING_GOOGLE_TOKEN_URI": suite.youtube.url + "/token",
        "MARKETING_TOKEN_KEYS": DEVELOPMENT_TOKEN_KEY,
    }


@dataclass(frozen=True)
class Connected:
    """How many accounts of each kind the store serves after connecting."""

    pages: int
    channels: int
    line: int = 0


def prepare_sandboxes(suite: SandboxSuite) -> list[str]:
    """Make the database's Facebook Pages and YouTube channels exist in the sandboxes, with
    preset tokens nobody is told (only tokens issued through the consent flows act), a
    Facebook user managing every Page, the app and the OAuth client; return the channel ids."""
    with session_scope() as session:
        accounts = session.execute(
            select(ChannelAccount.kind, ChannelAccount.external_id, ChannelAccount.display_name)
            .where(ChannelAccount.kind.in_((ChannelKind.FACEBOOK, ChannelKind.YOUTUBE)))
            .order_by(ChannelAccount.slug)
        ).all()
    pages = [(i, n) for k, i, n in accounts if k == ChannelKind.FACEBOOK]
    channels = [(i, n) for k, i, n in accounts if k == ChannelKind.YOUTUBE]
    for page_id, name in pages:
        suite.graph.register_page(page_id, secrets.token_urlsafe(24), name)
    for channel_id, title in channels:
        suite.youtube.register_channel(channel_id, secrets.token_urlsafe(24), title=title)
    suite.graph.register_app(APP_ID, APP_SECRET)
    suite.graph.register_user(FACEBOOK_USER, "ผู้ดูแลเพจชุมชน (เดโม)", [p for p, _ in pages])
    suite.youtube.register_client(CLIENT_ID, CLIENT_SECRET)
    return [c for c, _ in channels]


def prepare_line(suite: SandboxSuite) -> list[str]:
    """Make the database's LINE Official Accounts exist in the LINE sandbox, each acting
    with a new channel access token (as issued in the LINE Developers console); return the
    tokens, which the demo admin pastes into the connect page."""
    with session_scope() as session:
        accounts = session.execute(
            select(ChannelAccount.external_id, ChannelAccount.display_name)
            .where(ChannelAccount.kind == ChannelKind.LINE)
            .order_by(ChannelAccount.slug)
        ).all()
    tokens = []
    for external_id, name in accounts:
        token = secrets.token_urlsafe(32)
        suite.line.register_channel(
            token,
            user_id=external_id if external_id.startswith("U") else None,
            basic_id=external_id if external_id.startswith("@") else None,
            display_name=name,
            friends=20,
        )
        tokens.append(token)
    return tokens


def connect_accounts(*, channel_ids: Iterable[str], line_tokens: Iterable[str] = ()) -> Connected:
    """Connect every Page (one pass through Facebook Login), each channel (one pass
    through Google's consent page each) and each LINE Official Account (its channel access
    token pasted) from the web app, as a signed-in admin would."""
    password = secrets.token_urlsafe(24)
    with ExitStack() as stack:
        # The admin's password is hashed (argon2, outside the GIL) on a thread while the web
        # app is imported here, rather than before it (#19); nothing else writes meanwhile.
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="demo-admin"))
        admin = pool.submit(_create_admin, password)
        base = stack.enter_context(_web_app())
        admin.result()
        browser = stack.enter_context(Browser())
        page = browser.get(f"{base}/login")
        page = browser.submit(page, "/login", fill={"username": "demo-admin", "password": password})
        page = browser.submit(browser.get(f"{base}/accounts/connect"), "/accounts/connect/facebook")
        page = browser.submit(page, None, button=("decision", "allow"))  # every box ticked
        # The picker (each Page tied to its community) leads back to the connect page.
        page = browser.submit(page, "/accounts/connect/pick")
        for channel_id in channel_ids:
            page = browser.submit(page, "/accounts/connect/youtube")
            page = browser.submit(
                page,
                "/o/oauth2/approve",
                fill={"channel_id": channel_id},
                button=("decision", "allow"),
            )
            page = browser.submit(page, "/accounts/connect/pick")
        for token in line_tokens:
            page = browser.submit(page, "/accounts/connect/line", fill={"token": token})
    with session_scope() as session:
        served = dict(
            session.execute(
                select(ChannelAccount.kind, func.count())
                .join(AccountToken, AccountToken.account_id == ChannelAccount.id)
                .group_by(ChannelAccount.kind)
            ).all()
        )
    return Connected(
        pages=served.get(ChannelKind.FACEBOOK, 0),
        channels=served.get(ChannelKind.YOUTUBE, 0),
        line=served.get(ChannelKind.LINE, 0),
    )


def _create_admin(password: str) -> None:
    from marketing.web.staff import create_user

    with session_scope() as session:
        create_user(
            session=session,
            username="demo-admin",
            password=password,
            role=Role.ADMIN,
            display_name="ผู้ดูแลระบบ (เดโม)",
        )


@contextmanager
def _web_app() -> Iterator[str]:
    """The web app on the demo's database under uvicorn on a free loopback port; its URL.
    The app's public URL is that address, so the providers' redirects come back to it."""
    import uvicorn

    from marketing.web import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = get_settings().model_copy(update={"public_base_url": base})
    app = create_app(engine=get_engine(), settings=settings)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="demo-web", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the web app did not start for connecting the demo's accounts")
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Form:
    """One HTML form as a browser would submit it."""

    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    """The forms of a page: hidden and text inputs, ticked checkboxes and radios, each
    select's chosen option (or its first), and the named submit buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and "disabled" not in a:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.forms[-1].fields.append((a["name"], a.get("value", "on")))
            elif kind == "submit":
                self.forms[-1].buttons.append((a["name"], a.get("value", "")))
            elif kind not in ("button", "reset", "file", "image"):
                self.forms[-1].fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("name") and a.get("type", "submit") == "submit":
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a.get("name") or None, []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self._options and self.forms:
            chosen = next((v for v, on in self._options if on), self._options[0][0])
            self.forms[-1].fields.append((self._select, chosen))
            self._select = None


class Browser:
    """Just enough of a browser: cookies, redirects followed, forms submitted as shown."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, url: str) -> requests.Response:
        return self._check(self.http.get(url, timeout=TIMEOUT))

    def submit(
        self,
        page: requests.Response,
        action: str | None,
        *,
        fill: dict[str, str] | None = None,
        button: tuple[str, str] | None = None,
    ) -> requests.Response:
        """Submit the form of ``page`` whose action is ``action`` (None: the first form),
        with ``fill`` replacing fields and ``button`` the one pressed."""
        parser = _Forms()
        parser.feed(page.text)
        form = next(
            (f for f in parser.forms if action is None or urlsplit(f.action).path == action),
            None,
        )
        if form is None:
            raise RuntimeError(
                f"no form {action or ''} on {urlsplit(page.url).path}: {_text(page.text)}"
            )
        values = dict(fill or {})
        data = [(k, v) for k, v in form.fields if k not in values] + list(values.items())
        if button is not None:
            data.append(button)
        target = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return self._check(self.http.post(target, data=data, timeout=TIMEOUT))
        return self._check(self.http.get(target, params=data, timeout=TIMEOUT))

    @staticmethod
    def _check(answer: requests.Response) -> requests.Response:
        if answer.status_code >= 400:
            raise RuntimeError(
                f"{urlsplit(answer.url).path} answered {answer.status_code}: {_text(answer.text)}"
            )
        return answer


def _text(page: str) -> str:
    """A page's words without its markup, shortened (for an error message)."""
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:400]
