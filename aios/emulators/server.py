"""Run the emulator: `serve()` in-process, `python -m aios.emulators.server`, or
`running_emulator()` which starts it in a subprocess for tests."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from aios.emulators.app import build_app
from aios.emulators.base import add_bind_arguments, check_bind, exit_on_bad_bind, run
from aios.emulators.control import EmulatorControl

DEFAULT_PORT = 8765


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, allow_remote: bool = False) -> None:
    """Serve the emulator until interrupted (blocking); a non-loopback `host` needs `allow_remote`
    (callers print `check_bind`'s warning themselves, before their own banner)."""
    check_bind(host, allow_remote)
    run(build_app(), host, port)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmulatorHandle:
    """A running emulator: its URLs and a control client."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: str | None = None

    @property
    def anthropic_base_url(self) -> str:
        return f"{self.url}/anthropic"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/openai/v1"

    def status_url(self, page: str) -> str:
        """Base of a Statuspage v2 API: append /api/v2/summary.json etc."""
        return f"{self.url}/status/{page}"

    @cached_property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.url)


@contextmanager
def running_emulator(port: int = 0, *, startup_timeout: float = 20.0) -> Iterator[EmulatorHandle]:
    """Start the emulator in a subprocess, wait until it is healthy, stop it on exit."""
    port = port or free_port()
    log = tempfile.NamedTemporaryFile(prefix="aios-emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aios.emulators.server", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    handle = EmulatorHandle(url=f"http://127.0.0.1:{port}", process=proc, log_path=log.name)
    ok = False
    try:
        deadline = time.monotonic() + startup_timeout
        while not handle.control.health():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start on port {port}:\n{_tail(log.name)}")
            time.sleep(0.05)
        yield handle
        ok = True
    finally:
        handle.control.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if ok:
            os.unlink(log.name)


def _tail(path: str, limit: int = 4000) -> str:
    with open(path, errors="replace") as fh:
        return fh.read()[-limit:]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aios local emulators (Anthropic, OpenAI, status pages)")
    add_bind_arguments(parser, DEFAULT_PORT)
    args = parser.parse_args(argv)
    exit_on_bad_bind(args.host, args.allow_remote)
    serve(args.host, args.port, allow_remote=args.allow_remote)


if __name__ == "__main__":
    main()
