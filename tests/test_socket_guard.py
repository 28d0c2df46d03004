"""The socket guard keeps every test on this machine (tests/support/socket_guard.py)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import smtplib
import socket
from pathlib import Path

import pytest

from tests.support.socket_guard import (
    GUARD,
    OutsideConnection,
    SocketGuard,
    fail_if_refused,
    is_local,
)

OUTSIDE = ("93.184.216.34", 80)  # example.com's historical address


def test_the_guard_is_active_for_every_test() -> None:
    assert GUARD.installed
    assert socket.socket.connect.__qualname__.endswith("install.<locals>.connect")


def test_outside_address_is_refused_and_reported(socket_guard: SocketGuard) -> None:
    with pytest.raises(OutsideConnection, match="93.184.216.34:80"):
        socket.create_connection(OUTSIDE, timeout=1)
    assert socket_guard.take_blocked() == ["93.184.216.34:80"]


def test_clients_built_on_sockets_are_refused(socket_guard: SocketGuard) -> None:
    with pytest.raises(OutsideConnection):
        http.client.HTTPConnection(*OUTSIDE, timeout=1).request("GET", "/")
    with pytest.raises(OutsideConnection):
        smtplib.SMTP("93.184.216.34", 25, local_hostname="test.invalid", timeout=1)
    with pytest.raises(OutsideConnection):
        asyncio.run(asyncio.open_connection(*OUTSIDE))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OutsideConnection):
        udp.sendto(b"\0" * 12, ("8.8.8.8", 53))
    with socket.socket() as raw, pytest.raises(OutsideConnection):
        raw.connect_ex(("10.0.0.1", 22))
    # A name is refused before any lookup: it could resolve anywhere.
    with socket.socket() as raw, pytest.raises(OutsideConnection):
        raw.connect(("example.org", 443))
    assert len(socket_guard.take_blocked()) == 6


def test_a_swallowed_refusal_still_fails_the_test(socket_guard: SocketGuard) -> None:
    with contextlib.suppress(Exception):  # what careless code under test might do
        socket.create_connection(OUTSIDE, timeout=1)
    refused = socket_guard.take_blocked()
    with pytest.raises(pytest.fail.Exception, match="93.184.216.34:80"):
        fail_if_refused(refused)


def test_loopback_is_allowed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            accepted, _ = server.accept()
            with accepted:
                client.sendall("สวัสดี".encode())
                assert accepted.recv(64).decode() == "สวัสดี"


def test_unix_sockets_are_allowed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            accepted, _ = server.accept()
            accepted.close()


@pytest.mark.parametrize(
    ("family", "host", "local"),
    [
        (socket.AF_INET, "127.0.0.1", True),
        (socket.AF_INET, "127.45.6.7", True),
        (socket.AF_INET, "localhost", True),
        (socket.AF_INET6, "::1", True),
        (socket.AF_INET6, "::ffff:127.0.0.1", True),
        (socket.AF_INET, "0.0.0.0", False),
        (socket.AF_INET, "93.184.216.34", False),
        (socket.AF_INET, "192.168.1.10", False),
        (socket.AF_INET, "graph.facebook.com", False),
        (socket.AF_INET6, "2606:2800:220:1:248:1893:25c8:1946", False),
        (socket.AF_INET6, "::ffff:93.184.216.34", False),
        (socket.AF_INET6, "fe80::1%eth0", False),
    ],
)
def test_what_counts_as_local(family: int, host: str, local: bool) -> None:
    assert is_local(family, (host, 80)) is local


def test_a_simulated_hosts_network_is_let_through_only_while_allowed(
    socket_guard: SocketGuard,
) -> None:
    inside, outside = ("10.250.7.9", 6379), ("10.250.8.9", 6379)
    with socket_guard.allow("10.250.7.0/24"):
        with socket.socket() as sock:
            socket_guard.check(sock, inside)  # let through: no exception
        with socket.socket() as sock, pytest.raises(OutsideConnection):
            socket_guard.check(sock, outside)
    with socket.socket() as sock, pytest.raises(OutsideConnection):
        socket_guard.check(sock, inside)
    assert socket_guard.take_blocked() == ["10.250.8.9:6379", "10.250.7.9:6379"]
    with (
        pytest.raises(ValueError, match="not a small private network"),
        socket_guard.allow("93.184.216.0/24"),
    ):
        pass
