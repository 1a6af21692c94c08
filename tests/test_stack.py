"""The local stack cleans up after itself and trusts only servers it started.

A test session's database is dropped when it ends, and so are those of sessions that crashed; a
service counts as up only when the socket answering on its port belongs to the process we started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from aios.drill.stack import (
    Process,
    _admin,
    drop_orphaned_databases,
    free_port,
    pid_alive,
    session_database,
    spawn,
    wait_http,
)

PREFIX = "aios_stacktest_"  # not the session's prefix: these tests never touch a live session's database


def databases() -> set[str]:
    return set(_admin(f"SELECT datname FROM pg_database WHERE starts_with(datname, '{PREFIX}')"))


def gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_the_session_database_is_dropped_when_the_session_ends():
    with session_database(PREFIX) as url:
        name = url.rsplit("/", 1)[1]
        assert name in databases()
    assert name not in databases()


def test_databases_of_sessions_whose_process_is_gone_are_dropped_and_live_ones_kept():
    from aios.drill.stack import create_postgres_database, drop_postgres_database

    dead, live = f"{PREFIX}{gone_pid()}", f"{PREFIX}{os.getpid()}"
    for name in (dead, live):
        create_postgres_database(name)
    try:
        assert dead in drop_orphaned_databases(PREFIX)
        assert dead not in databases() and live in databases()
    finally:
        for name in (dead, live):
            drop_postgres_database(name)


def http_server(tmp_path, port: int) -> Process:
    return spawn("http", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], {}, tmp_path, tmp_path)


def test_a_server_we_started_passes_the_ownership_check(tmp_path):
    port = free_port()
    server = http_server(tmp_path, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 30, server.proc, server.log)
        server.check_listens_on(port)
    finally:
        server.stop()


def test_a_port_answered_by_someone_else_fails_the_ownership_check(tmp_path):
    """Our child lost the port to another listener: its health URL answers, but not from it."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ours = spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path, tmp_path)
        try:
            with pytest.raises(RuntimeError, match=rf"port {port} answers, but not from our sleeper"):
                ours.check_listens_on(port)
        finally:
            ours.stop()
