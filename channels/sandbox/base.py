"""What every sandbox HTTP server shares: a thread-served socket on 127.0.0.1, a clock that
tests and the demo can move forward, deterministic engagement, and fault injection.

A sandbox is never used unless configured: the adapters talk to it only when their base URL
points at it.  Each server keeps what was published so a test can count publications per
marker, and exposes the same state over HTTP under ``/_sandbox/`` for processes that did
not start it (``marketing sandbox``, benchmarks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal


class SandboxClock:
    """Wall-clock time plus an offset that :meth:`advance` moves forward (never back), and an
    optional speed-up so the demo can let "days" of engagement pass in seconds."""

    def __init__(self, *, speed: float = 1.0) -> None:
        self._offset = timedelta(0)
        self._speed = speed
        self._started = datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        real = datetime.now(UTC)
        with self._lock:
            return self._started + (real - self._started) * self._speed + self._offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += delta


def engagement(
    seed: int, external_id: str, age: timedelta, *, reach: int = 5_000
) -> dict[str, int]:
    """Deterministic, monotonically growing engagement of one publication ``age`` after it was
    published: the same seed, id and age always give the same numbers."""
    digest = hashlib.sha256(f"{seed}:{external_id}".encode()).digest()
    scale = 0.3 + (digest[0] / 255) * 1.4  # some posts do better than others
    hours = max(age.total_seconds(), 0.0) / 3600
    grown = 1 - math.exp(-hours / 18)  # most engagement within the first days
    views = int(reach * scale * grown)
    return {
        "views": views,
        "reactions": int(views * (0.03 + digest[1] / 255 * 0.05)),
        "comments": int(views * (0.002 + digest[2] / 255 * 0.01)),
        "shares": int(views * (0.001 + digest[3] / 255 * 0.006)),
        "clicks": int(views * (0.01 + digest[4] / 255 * 0.03)),
    }


Action = Literal["error", "drop_before", "drop_after", "drop_during", "delay", "hold"]

#: The longest a ``hold`` fault keeps an answer when ``seconds`` is not given: a test that
#: forgets :meth:`Fault.release` slows itself down, it never hangs a server thread for good.
HOLD_LIMIT = 120.0


@dataclass
class Fault:
    """One injected fault: requests matching ``method`` and ``path`` (a regex searched in the
    path) get ``action``, ``times`` times (None: until cleared), or each time with
    ``probability`` (drawn from the server's seeded random stream).

    - ``error``: answer ``status`` with ``body`` (JSON) and ``headers``; nothing is stored
    - ``drop_before``: close the connection before doing anything
    - ``drop_after``: do the work (the post is created), then close without answering --
      the ambiguous case
    - ``drop_during``: the connection dies after ``after_bytes`` bytes of the request body:
      the handler sees only those bytes (an upload keeps them), then the connection closes
      without an answer
    - ``delay``: sleep ``seconds`` first, then answer normally
    - ``hold``: do the work (the post is created), then hold the answer until the test calls
      :meth:`release` (or ``seconds`` pass; :data:`HOLD_LIMIT` when 0).  :meth:`wait_held`
      returns once a request is being held, so a test knows a call is in flight -- and whose,
      if only one client is running -- and can kill the client before letting the answer go
      (into a closed socket, as on the real server).  :meth:`SandboxServer.stop` releases
      every hold.
    """

    action: Action
    method: str = "*"
    path: str = ""
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after_bytes: int = 0
    times: int | None = 1
    probability: float = 1.0
    # ``hold``: set when a request is being held; set by release() to let it answer.
    _held: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )
    _released: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and re.search(self.path, path) is not None

    def wait_held(self, timeout: float) -> bool:
        """Whether a request reached this ``hold`` fault within ``timeout`` seconds."""
        return self._held.wait(timeout)

    def release(self) -> None:
        """Let every request this ``hold`` fault holds (or will hold) answer."""
        self._released.set()

    def hold(self) -> None:
        """Called by the handler: say a request is held, and wait for :meth:`release`."""
        self._held.set()
        self._released.wait(self.seconds or HOLD_LIMIT)


class FaultPlan:
    """The faults a server will inject, consumed in order of registration."""

    def __init__(self, seed: int = 0) -> None:
        import random

        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.injected: list[tuple[str, str, Action]] = []
        self._holds: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
            if fault.action == "hold":
                self._holds.append(fault)
        return fault

    def release_all(self) -> None:
        """Let every held answer go (the server is stopping)."""
        with self._lock:
            for fault in self._holds:
                fault.release()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, if any (and count it as used)."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                self.injected.append((method, path, fault.action))
                return fault
        return None


class DropConnection(Exception):
    """Raised by a handler to close the socket without an answer."""


class SandboxHandler(BaseHTTPRequestHandler):
    """Base request handler: JSON helpers and fault injection around ``route``.

    Subclasses implement :meth:`route`; the server instance is ``self.server`` (a
    :class:`SandboxServer` subclass's ``_HTTPServer``) and the sandbox is ``self.sandbox``.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY the body waits for the
    # client's delayed ACK (about 40 ms a request on Linux).
    disable_nagle_algorithm = True
    sandbox: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet; tests read state, not logs

    def _dispatch(self) -> None:
        # One handler serves every request of a keep-alive connection: forget the last body.
        self._body: bytes | None = None
        self._body_limit: int | None = None
        self._hold: Fault | None = None
        fault = self.sandbox.faults.take(self.command, self.path)
        if fault and fault.action == "drop_before":
            self._drop()
            return
        if fault and fault.action == "delay":
            time.sleep(fault.seconds)
        if fault and fault.action == "error":
            self._read_body()
            self.send_json(fault.status, fault.body or {"error": "injected"}, fault.headers)
            return
        # drop_after: let the handler do its work (create the post) but swallow its answer;
        # drop_during: the same, with only the first ``after_bytes`` of the body arrived;
        # hold: the same, but the answer goes out once the test releases it.
        self._hold = fault if fault and fault.action == "hold" else None
        self._silenced = bool(fault and fault.action in ("drop_after", "drop_during"))
        if fault and fault.action == "drop_during":
            self._body_limit = fault.after_bytes
        try:
            if self.path.startswith("/_sandbox/"):
                self.control()
            else:
                self.route()
        except DropConnection:
            self._drop()
            return
        if fault and fault.action in ("drop_after", "drop_during"):
            self._drop()

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self._dropped = True

    def _read_body(self) -> bytes:
        if getattr(self, "_body", None) is None:
            length = int(self.headers.get("Content-Length") or 0)
            if getattr(self, "_body_limit", None) is not None:
                length = min(length, self._body_limit or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body or b""

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_bytes(status, data, "application/json; charset=UTF-8", headers)

    def send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the request -- unless a fault says to swallow the answer.  Handlers answer
        only through this method (or :meth:`send_json`) so fault injection always works."""
        if getattr(self, "_dropped", False) or getattr(self, "_silenced", False):
            return
        hold = getattr(self, "_hold", None)
        if hold is not None:
            self._hold = None
            hold.hold()
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up waiting (its timeout) and closed: as on the real server,
            # the work is done and the answer goes nowhere.
            self.close_connection = True
            self._dropped = True

    def route(self) -> None:
        raise NotImplementedError

    def control(self) -> None:
        """``GET /_sandbox/state`` -> the sandbox's :meth:`SandboxServer.state`."""
        if self.command == "GET" and self.path.startswith("/_sandbox/state"):
            self.send_json(200, self.sandbox.state())
        elif self.command == "POST" and self.path.startswith("/_sandbox/faults"):
            spec = json.loads(self._read_body() or b"{}")
            self.sandbox.faults.add(Fault(**spec))
            self.send_json(200, {"ok": True})
        elif self.command == "POST" and self.path.startswith("/_sandbox/advance"):
            spec = json.loads(self._read_body() or b"{}")
            self.sandbox.clock.advance(timedelta(seconds=float(spec.get("seconds", 0))))
            self.send_json(200, {"now": self.sandbox.clock.now().isoformat()})
        else:
            self.send_json(404, {"error": "unknown sandbox control"})


class SandboxServer:
    """An HTTP sandbox on 127.0.0.1, served by a background thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  ``port=0`` picks a free
    port; :attr:`url` is the base URL once started.
    """

    handler_class: ClassVar[type[SandboxHandler]] = SandboxHandler

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: SandboxClock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.clock = clock or SandboxClock()
        self.faults = FaultPlan(seed)
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        handler = type(f"{type(self).__name__}Handler", (self.handler_class,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one interval
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.release_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        """What the sandbox holds, as JSON-able data (subclasses add to it)."""
        return {"now": self.clock.now().isoformat(), "faults_injected": len(self.faults.injected)}
