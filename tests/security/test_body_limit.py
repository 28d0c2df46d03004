"""Request bodies (#12, items 8 and 12): a body over its route's limit is refused with 413
and a Thai page before the session is read, before sign-in and before anything is parsed or
spooled -- by its ``Content-Length`` without reading a byte, and a chunked one as soon as it
passes the limit -- while the sizes the pages promise still go through."""

from __future__ import annotations

import asyncio
import select
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from marketing.web.campaign_files import MAX_CAMPAIGN_BYTES
from marketing.web.guards import (
    CAMPAIGN_BODY_MAX_BYTES,
    FORM_MAX_BYTES,
    LARGEST_BODY_BYTES,
    MEDIA_CHUNK_BODY_MAX_BYTES,
    MEDIA_FORM_BODY_MAX_BYTES,
    SUBSCRIBER_BODY_MAX_BYTES,
    body_limit,
)
from tests.support.services import free_port, wait_until
from tests.support.web import WebClient, imported
from tests.test_web_auth import CAMPAIGN

HUGE = 256 * 1024 * 1024  # above every limit (the subscriber upload's is 200,065,536 bytes)
CHUNK = 64 * 1024
UPLOAD = "/communities/nan-ban-doi-ngoen/subscribers"
MULTIPART = b"multipart/form-data; boundary=xyz"
TOO_LARGE_TH = "คำขอมีขนาดใหญ่เกินไป"


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder uploads are spooled to (tempfile's), empty at the start."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# A well-formed start of an upload, then a file that never ends.
PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="list.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\nemail,name\r\n"
)


class Sent:
    """What a client sent into the app, chunk by chunk, as a server passes it on."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read = 0

    async def receive(self) -> Message:
        if self.read >= self.total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, self.total - self.read)
        chunk = (PART + b"x" * CHUNK)[:size] if self.read == 0 else b"x" * size
        self.read += size
        return {"type": "http.request", "body": chunk, "more_body": self.read < self.total}


def call(
    app: FastAPI, method: str, path: str, body: Sent, headers: list[tuple[bytes, bytes]]
) -> tuple[int, str]:
    """``app`` answering one request whose body streams from ``body``."""
    answer: dict[str, Any] = {"body": b""}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, body.receive, send))
    return answer["status"], answer["body"].decode("utf-8")


def test_routes_have_their_own_limits() -> None:
    assert body_limit("POST", "/login") == FORM_MAX_BYTES
    assert body_limit("POST", "/campaigns/check") == CAMPAIGN_BODY_MAX_BYTES
    assert body_limit("POST", "/campaigns/apply") == CAMPAIGN_BODY_MAX_BYTES
    assert body_limit("POST", "/api/v1/campaigns") == CAMPAIGN_BODY_MAX_BYTES
    assert body_limit("POST", UPLOAD) == SUBSCRIBER_BODY_MAX_BYTES
    assert body_limit("POST", UPLOAD + "/../../login") == FORM_MAX_BYTES
    assert body_limit("POST", "/library") == MEDIA_FORM_BODY_MAX_BYTES
    assert body_limit("POST", "/api/v1/media") == MEDIA_FORM_BODY_MAX_BYTES
    assert body_limit("PUT", "/api/v1/media/uploads/abc") == MEDIA_CHUNK_BODY_MAX_BYTES
    assert body_limit("POST", "/api/v1/media/uploads") == FORM_MAX_BYTES  # JSON: name, size
    assert body_limit("POST", "/library/1/people") == FORM_MAX_BYTES
    assert LARGEST_BODY_BYTES == MEDIA_FORM_BODY_MAX_BYTES > SUBSCRIBER_BODY_MAX_BYTES
    assert SUBSCRIBER_BODY_MAX_BYTES > CAMPAIGN_BODY_MAX_BYTES


@pytest.mark.parametrize("path", [UPLOAD, "/login", "/campaigns/check", "/api/v1/campaigns"])
def test_a_declared_256_mb_body_without_a_session_is_refused_unread(
    app: FastAPI, spool: Path, path: str
) -> None:
    body = Sent(HUGE)
    status, page = call(
        app,
        "POST",
        path,
        body,
        [(b"content-type", MULTIPART), (b"content-length", str(HUGE).encode())],
    )
    assert status == 413
    assert body.read == 0
    assert list(spool.iterdir()) == []
    if not path.startswith("/api/"):
        assert TOO_LARGE_TH in page and f"{body_limit('POST', path):,}" in page


@pytest.mark.parametrize("path", [UPLOAD, "/login"])
def test_a_chunked_256_mb_body_without_a_session_is_cut_off_at_the_limit(
    app: FastAPI, spool: Path, path: str
) -> None:
    body = Sent(HUGE)
    status, page = call(app, "POST", path, body, [(b"content-type", MULTIPART)])
    assert status == 413 and TOO_LARGE_TH in page
    assert body.read <= body_limit("POST", path) + CHUNK
    assert list(spool.iterdir()) == []  # what was spooled is gone with the request


def test_a_body_within_the_limit_reaches_the_page(app: FastAPI) -> None:
    editor = WebClient(app).sign_in("editor")
    try:
        answer = editor.post(
            UPLOAD,
            {"consent_source": "แบบฟอร์มกระดาษ", "consent_date": "2026-11-01"},
            files={"file": ("list.csv", b"email,name\nnew@example.org,Som\n", "text/csv")},
        )
        page = imported(editor, answer)
        assert "นำเข้ารายชื่อแล้ว: ใหม่ 1 คน" in page.text
    finally:
        editor.close()


def test_a_campaign_text_as_large_as_the_editor_promises_is_checked(app: FastAPI) -> None:
    """The editor promises 2,000,000 bytes; the form parser used to stop text at 1 MiB."""
    padding = "# " + "ก" * ((MAX_CAMPAIGN_BYTES - 100_000) // 3) + "\n"
    text = padding + CAMPAIGN
    assert 1024 * 1024 < len(text.encode("utf-8")) <= MAX_CAMPAIGN_BYTES
    editor = WebClient(app).sign_in("editor")
    try:
        answer = editor.post("/campaigns/check", files={"yaml": (None, text)})
        assert answer.status_code == 200, answer.text[-800:]
        assert "songkran-web" in answer.text
        applied = editor.post("/campaigns/apply", {"yaml": text})  # percent-encoded: 3x
        assert applied.status_code == 303, applied.text[-800:]
    finally:
        editor.close()


class Counting:
    """The app under uvicorn, counting the body bytes it takes in."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def server(app: FastAPI) -> Iterator[tuple[int, Counting]]:
    counting = Counting(app)
    port = free_port()
    config = uvicorn.Config(counting, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="uvicorn to start")
    try:
        yield port, counting
    finally:
        server.should_exit = True
        thread.join(10)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"</html>" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


def test_uvicorn_refuses_a_declared_256_mb_upload_before_the_body_is_sent(
    server: tuple[int, Counting],
) -> None:
    port, counting = server
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {HUGE}\r\n\r\n".encode()
        )
        answer = _answer(sock)  # no byte of the body was sent
    assert answer.startswith(b"HTTP/1.1 413")
    assert TOO_LARGE_TH.encode() in answer
    assert counting.read == 0


def test_uvicorn_cuts_off_a_chunked_upload_at_the_limit(server: tuple[int, Counting]) -> None:
    port, counting = server
    chunk = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)
    sent = len(PART)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n".encode()
            + b"%x\r\n%s\r\n" % (len(PART), PART)
        )
        try:
            # Until the answer comes (uvicorn itself would read and drop the rest: the proxy's
            # client_max_body_size is what stops a client on the network).
            while sent < HUGE and not select.select([sock], [], [], 0)[0]:
                sock.sendall(chunk)
                sent += CHUNK
        except OSError:
            pass  # the server answered and closed the connection
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert TOO_LARGE_TH.encode() in answer
    assert sent < HUGE
    # The limit and the one message that crossed it: what uvicorn buffered between two reads
    # of the app (it stops reading the socket at 64 KiB buffered; one read brings 256 KiB).
    assert counting.read <= SUBSCRIBER_BODY_MAX_BYTES + 1024 * 1024
