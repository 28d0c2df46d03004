"""A pytest plugin: no test reaches another machine.

``tests/conftest.py`` loads it (``pytest_plugins``), so it is active for every test.  While
pytest runs, ``socket.socket.connect``, ``connect_ex`` and ``sendto`` refuse any address
outside 127.0.0.0/8 and ::1 (Unix sockets are fine) by raising :class:`OutsideConnection`.
Everything that opens sockets from Python goes through them: ``socket.create_connection``,
asyncio, ssl, smtplib, http.client, requests/urllib3, httplib2 (the Facebook and Google
SDKs), redis-py.  A refused attempt also fails the test at teardown, even if the code under
test caught the exception and carried on.

What it does not cover:

- other processes: Celery workers started by ``tests.support.services``, redis-server,
  anything run with ``subprocess`` -- they are separate interpreters without this plugin;
  tests give them 127.0.0.1 addresses through their environment instead;
- C libraries that open their own sockets: libpq (psycopg's PostgreSQL connections) and
  the resolver inside ``getaddrinfo``.

A test that means to try an outside address takes the ``socket_guard`` fixture and calls
:meth:`SocketGuard.take_blocked` to collect (and so excuse) what was refused.  A test that
simulates other hosts in network namespaces of this machine (tests/support/hosts.py) lets
their private network through with :meth:`SocketGuard.allow` while they exist.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOCAL_NAMES = ("localhost", "localhost.")


class OutsideConnection(RuntimeError):
    """A test tried to open a connection to another machine.

    Not an ``OSError``, so client libraries do not take it for a network hiccup and retry.
    """


def is_local(family: int, address: Any) -> bool:
    """True if ``address`` (as given to ``connect``) stays on this machine."""
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    if family not in (socket.AF_INET, socket.AF_INET6):
        return False
    host = str(address[0]).split("%", 1)[0]  # drop an IPv6 zone index
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # any other name could resolve anywhere
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped in _LOOPBACK_V4
        return ip == ipaddress.IPv6Address("::1")
    return ip in _LOOPBACK_V4


def _where(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return repr(address)


class SocketGuard:
    """Patches ``socket.socket`` so that connections leave 127.0.0.1 only over its body."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self._lock = threading.Lock()
        self._originals: dict[str, Callable[..., Any]] = {}
        self._allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    @contextlib.contextmanager
    def allow(self, network: str) -> Iterator[None]:
        """Let connections into ``network`` through while the body runs: a private network
        of simulated hosts (network namespaces) that exists only on this machine."""
        net = ipaddress.ip_network(network)
        if not net.is_private or net.prefixlen < 16:
            raise ValueError(f"{network} is not a small private network")
        with self._lock:
            self._allowed.append(net)
        try:
            yield
        finally:
            with self._lock:
                self._allowed.remove(net)

    def _is_allowed(self, family: int, address: Any) -> bool:
        if family not in (socket.AF_INET, socket.AF_INET6):
            return False
        try:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        except ValueError:
            return False
        with self._lock:
            return any(ip in net for net in self._allowed)

    @property
    def installed(self) -> bool:
        return bool(self._originals)

    def check(self, sock: socket.socket, address: Any) -> None:
        """Raise :class:`OutsideConnection` (and remember it) if ``address`` is outside."""
        if is_local(sock.family, address) or self._is_allowed(sock.family, address):
            return
        where = _where(address)
        with self._lock:
            self.blocked.append(where)
        # Closed here: socket.create_connection cleans up only after an OSError, and a
        # leaked socket would turn into a ResourceWarning somewhere else.
        sock.close()
        raise OutsideConnection(
            f"socket guard: a test tried to reach {where}, outside this machine; tests "
            "reach only 127.0.0.1 -- point the client at a sandbox in channels/sandbox/"
        )

    def install(self) -> None:
        if self.installed:
            return
        guard = self
        originals = {
            name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto")
        }

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(sock, address)
            originals["connect"](sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(sock, address)
            return int(originals["connect_ex"](sock, address))

        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            if args:  # sendto(data, address) or sendto(data, flags, address)
                guard.check(sock, args[-1])
            return int(originals["sendto"](sock, data, *args))

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
        self._originals = originals

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(socket.socket, name, original)
        self._originals = {}

    def take_blocked(self) -> list[str]:
        """The addresses refused since the last call (and forget them)."""
        with self._lock:
            blocked, self.blocked = self.blocked, []
        return blocked


GUARD = SocketGuard()


def pytest_configure(config: pytest.Config) -> None:
    GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    GUARD.uninstall()


@pytest.fixture
def socket_guard() -> SocketGuard:
    """The active guard, for a test that tries an outside address on purpose."""
    return GUARD


def fail_if_refused(refused: list[str]) -> None:
    """Fail the current test if the guard refused anything during it."""
    if refused:
        pytest.fail(
            "the socket guard refused connections outside this machine: "
            + ", ".join(refused)
            + " (tests reach only 127.0.0.1; see tests/support/socket_guard.py)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_outside_connections() -> Iterator[None]:
    GUARD.take_blocked()
    yield
    fail_if_refused(GUARD.take_blocked())
