"""A kept local Prefect server: started once, used by every `aios` command and the Python API.

Without one, Prefect starts a temporary server for each command (20-30 s on a small machine, and it
can time out under load). `aios server start` runs `prefect server start` in the background, bound
to 127.0.0.1, and records it in `<project>/.aios/server.json`: its URL, its pid and an identity (a
Prefect Variable set on it, so a different server later listening on the same port is not mistaken
for ours). `aios.config.bootstrap` reads the record before Prefect is imported and points the process at
the server when the user has not chosen one. Only the standard library is imported at module level:
this runs at the start of every command.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from uuid import uuid4

RECORD = Path(".aios") / "server.json"
LOG = Path(".aios") / "server.log"
IDENTITY_VARIABLE = "aios_server_identity"  # Prefect variable names: lowercase, digits, underscores
START_TIMEOUT = 300.0  # seconds; a first start migrates the database


@dataclass(frozen=True)
class KeptServer:
    """What `.aios/server.json` holds."""

    url: str  # the API URL, http://127.0.0.1:<port>/api
    pid: int  # of `prefect server start` (its own session: the process group to stop)
    identity: str  # also the value of the Prefect variable IDENTITY_VARIABLE on that server
    database: str  # "sqlite" or "postgresql"
    started_at: float
    runner_port: int = 0  # the warm runner (aios/runs/runner.py) on 127.0.0.1; 0: none
    runner_pid: int = 0  # its own session: the process group to stop
    token: str = ""  # the runner answers only requests carrying it (this file is 0600)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def record_path(home: Path) -> Path:
    return home / RECORD


def _read(home: Path) -> KeptServer | None:
    """The record as written, or None when there is none (or it is not one of ours)."""
    try:
        data = json.loads(record_path(home).read_text(encoding="utf-8"))
        fields = KeptServer.__dataclass_fields__
        return KeptServer(**{k: data[k] for k in fields if k in data})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_our_process(server: KeptServer) -> bool:
    """The recorded pid is alive AND is `prefect server start ... --port <our port>` (not a reused pid)."""
    args = _cmdline(server.pid)
    return (
        "prefect" in args
        and args[args.index("prefect") + 1 : args.index("prefect") + 3] == ["server", "start"]
        and "--port" in args
        and args[args.index("--port") + 1 : args.index("--port") + 2] == [str(server.port)]
    )


def runner_is_ours(server: KeptServer) -> bool:
    """The recorded runner pid is alive AND is `python -m aios.runs.runner --port <its port>`."""
    if not server.runner_pid:
        return False
    args = _cmdline(server.runner_pid)
    return args[1:] == ["-m", "aios.runs.runner", "--port", str(server.runner_port)]


def kept_server(home: Path) -> KeptServer | None:
    """The project's kept server if its process is running; a stale record (pid gone) is removed."""
    server = _read(home)
    if server is None:
        return None
    if is_our_process(server):
        return server
    _forget(home, server)
    return None


def _forget(home: Path, server: KeptServer) -> None:
    """Remove the record, but only if it is still the one we read (another command may have replaced it)."""
    if _read(home) == server:
        record_path(home).unlink(missing_ok=True)


def user_chose_a_server(prefect_home: Path) -> bool:
    """PREFECT_API_URL in the environment or in a Prefect profile: the user's choice wins over ours."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    profiles = prefect_home / "profiles.toml"
    try:
        return "PREFECT_API_URL" in profiles.read_text(encoding="utf-8")
    except OSError:
        return False


def use_kept_server(home: Path, prefect_home: Path) -> KeptServer | None:
    """Point this process (and the processes it starts) at the kept server, unless the user chose one."""
    if user_chose_a_server(prefect_home):
        return None
    server = kept_server(home)
    if server is not None:
        os.environ["PREFECT_API_URL"] = server.url
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(ui: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the server never talks to itself by URL
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env["PREFECT_UI_ENABLED"] = "true" if ui else "false"
    keep_database_connections(env)
    return env


POOL_SIZE = "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"


def keep_database_connections(env: dict[str, str]) -> None:
    """A server on PostgreSQL keeps 20 connections open unless told otherwise (Prefect keeps 5, and opens and
    closes up to 10 more per burst): a drain of 16 runs at once then opened 1.4-2.4 new PostgreSQL sessions per
    run, ≈ 20 % of the stack's CPU (bench/drain.py: 4.3-4.6 runs/s with Prefect's pool, 6.1-6.9 with 20)."""
    if database_kind(env) == "postgresql":
        env.setdefault(POOL_SIZE, "20")


def database_kind(env: dict[str, str]) -> str:
    url = env.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


class ServerError(RuntimeError):
    """The kept server could not be started (one line: why, and where its log is)."""


def start(home: Path, port: int | None = None, ui: bool = True, timeout: float = START_TIMEOUT) -> tuple[KeptServer, bool]:
    """Start the project's server in the background (or return the running one); (server, started now)."""
    import httpx

    running = kept_server(home)
    if running is not None:
        if runner_is_ours(running):
            return running, False
        runner = _start_runner(home, running.url, time.monotonic() + timeout)  # it died, or predates runners
        server = replace(running, **runner)
        _write(home, server)
        return server, False
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = _server_env(ui)
    env["PREFECT_UI_API_URL"] = url
    log = home / LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = _spawn([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home, log)
    server = KeptServer(url=url, pid=proc.pid, identity=uuid4().hex, database=database_kind(env), started_at=time.time())
    deadline = time.monotonic() + timeout
    _wait_until_healthy(proc, f"{url}/health", deadline, "the Prefect server", log)
    response = httpx.post(f"{url}/variables/", json={"name": IDENTITY_VARIABLE, "value": server.identity}, timeout=10)
    if response.status_code == 409:  # a database kept from an earlier server: take it over
        httpx.patch(f"{url}/variables/name/{IDENTITY_VARIABLE}", json={"value": server.identity}, timeout=10).raise_for_status()
    else:
        response.raise_for_status()
    try:
        server = replace(server, **_start_runner(home, url, deadline))
    except ServerError:
        _stop_group(proc.pid)
        raise
    _write(home, server)
    return server, True


def _write(home: Path, server: KeptServer) -> None:
    """The record, readable by this user only: it holds the runner's token."""
    from aios.files import atomic_write_text

    path = record_path(home)
    if path.exists():
        path.chmod(0o600)  # before the token is in it (an existing file keeps its mode)
    atomic_write_text(path, json.dumps(asdict(server), indent=2) + "\n", new_file_mode=0o600)


def _start_runner(home: Path, url: str, deadline: float) -> dict:
    """Start the warm runner (aios/runs/runner.py) against the server at `url`; its record fields once it answers."""
    from aios.runs.runner import LOG as RUNNER_LOG
    from aios.runs.runner import TOKEN_ENV

    port, token = _free_port(), secrets.token_urlsafe(32)
    env = dict(os.environ) | {"PREFECT_API_URL": url, "AIOS_HOME": str(home), TOKEN_ENV: token}
    log = home / RUNNER_LOG
    proc = _spawn([sys.executable, "-m", "aios.runs.runner", "--port", str(port)], env, home, log)
    health = f"http://127.0.0.1:{port}/health"
    _wait_until_healthy(proc, health, deadline, "the aios runner", log, headers={"Authorization": f"Bearer {token}"})
    return {"runner_port": port, "runner_pid": proc.pid, "token": token}


def _spawn(argv: list[str], env: dict[str, str], home: Path, log: Path) -> subprocess.Popen:
    """Start a kept process with its output appended to `log`."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            argv, env=env, cwd=home, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives this command; stop() signals its whole group
        )


def _wait_until_healthy(
    proc: subprocess.Popen, health_url: str, deadline: float, what: str, log: Path, headers: dict[str, str] | None = None
) -> None:
    """Return once `health_url` answers 200; a process that exits or stays silent past `deadline` is a
    ServerError naming its log (and a silent one is stopped first)."""
    import httpx

    began = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode} while starting; see {log}")
        try:
            if httpx.get(health_url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop_group(proc.pid)
            raise ServerError(f"{what} did not answer within {time.monotonic() - began:.0f} s; see {log}")
        time.sleep(0.25)


def identity_on_server(server: KeptServer, timeout: float = 2) -> str | None:
    """The identity the server at the recorded URL holds (None: it does not answer, or holds none)."""
    import httpx

    try:
        response = httpx.get(f"{server.url}/variables/name/{IDENTITY_VARIABLE}", timeout=timeout)
    except httpx.HTTPError:
        return None
    return response.json().get("value") if response.status_code == 200 else None


def stop(home: Path, timeout: float = 20) -> tuple[KeptServer | None, bool]:
    """Stop the server this project started, never another process: (its record, whether it was running).

    A record whose pid is gone, or now belongs to some other program, is only removed.
    """
    server = _read(home)
    if server is None:
        return None, False
    if runner_is_ours(server):
        _stop_group(server.runner_pid, timeout)
    running = is_our_process(server)
    if running:
        _stop_group(server.pid, timeout)
    _forget(home, server)
    return server, running


def _stop_group(pid: int, timeout: float = 20) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (a zombie still answers kill 0)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
