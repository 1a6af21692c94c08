"""Run the emulator: `serve()` in-process, `python -m aios.emulators.server`, or
`running_emulator()` which starts it in a subprocess for tests."""

from __future__ import annotations

import argparse
import logging
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

import uvicorn

from aios.emulators.app import LoopbackOnlyControl, build_app
from aios.emulators.control import EmulatorControl
from aios.errors import AiosError
from aios.loopback import is_loopback

DEFAULT_PORT = 8765


class _DropCutNoise(logging.Filter):
    """The `cut` fault returns mid-body on purpose; uvicorn would log that as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Loopback binds need nothing; any other needs `allow_remote` and gets a warning (returned, to print)."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise AiosError(
            f"--host {host}: not a loopback address; the emulators accept any key and log every request, "
            "so binding beyond this machine needs --allow-remote"
        )
    return (
        f"warning: the emulators listen on {host}: anyone who reaches this port can call the emulated APIs "
        "(the /_control routes still answer loopback clients only)"
    )


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, allow_remote: bool = False) -> None:
    """Serve the emulator until interrupted (blocking); a non-loopback `host` needs `allow_remote`
    (callers print `check_bind`'s warning themselves, before their own banner)."""
    check_bind(host, allow_remote)
    logging.getLogger("uvicorn.error").addFilter(_DropCutNoise())
    # A short graceful-shutdown timeout cancels requests parked in the `hang` fault.
    uvicorn.run(build_app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)


def serve_standalone(build, description: str, default_port: int, argv: list[str] | None = None) -> None:
    """Run one state-backend emulator on its own: `build(tokens, auto_create=...)` makes the app."""
    import argparse

    import uvicorn

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--port", type=int, default=default_port)
    p.add_argument("--token", action="append", help="accepted bearer token (repeatable)")
    p.add_argument("--auto-create", action="store_true", help="unknown ids exist (empty) on first use")
    a = p.parse_args(argv)
    _exit_on_bad_bind(a.host, a.allow_remote)
    app = LoopbackOnlyControl(build(a.token, auto_create=a.auto_create))
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")


def _exit_on_bad_bind(host: str, allow_remote: bool) -> None:
    try:
        warning = check_bind(host, allow_remote)
    except AiosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if warning:
        print(warning, file=sys.stderr)


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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    _exit_on_bad_bind(args.host, args.allow_remote)
    serve(args.host, args.port, allow_remote=args.allow_remote)


if __name__ == "__main__":
    main()
