"""A local stack of real processes: emulators, a Prefect server (SQLite or PostgreSQL) and process workers.

The offline demo (`aios drill`), the end-to-end tests and the benchmarks all start the same stack,
so what the tests prove is what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aios.config.bootstrap import result_storage
from aios.config.kept_server import keep_database_connections

EMULATOR_KEY = "emulator-key"  # the emulators accept any non-empty key; this one is not a secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def redis_messaging(db: int, host: str = "127.0.0.1", port: int = 6379) -> dict[str, str]:
    """Prefect's settings for a multi-worker API server: messaging and leases in Redis (emptied first)."""
    import redis

    redis.Redis(host=host, port=port, db=db).flushdb()
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": host,
        "PREFECT_REDIS_MESSAGING_PORT": str(port),
        "PREFECT_REDIS_MESSAGING_DB": str(db),
    }


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def check_listens_on(self, port: int) -> None:
        """Raise unless the socket listening on `port` is held by this process or its session's children."""
        listening = listening_inodes(port)
        owners = [pid for pid in session_pids(self.proc.pid) if socket_inodes(pid) & listening]
        if not owners:
            raise RuntimeError(
                f"port {port} answers, but not from our {self.name} (pid {self.proc.pid}): another process holds it"
            )

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group and every descendant (a worker starts each flow run in a session of
        its own), SIGKILL whatever is left after `timeout`."""
        family = descendants(self.proc.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + 5
        while any(pid_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def spawn(name: str, args: list[str], env: dict[str, str], cwd: Path, logdir: Path) -> Process:
    log = logdir / f"{name}.log"
    handle = log.open("ab")
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, proc, log)


POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(*statements: str, dsn: str = POSTGRES_ADMIN_DSN) -> list[str]:
    """Run statements on the server's admin database; returns the names from a final SELECT, if any."""
    import asyncpg

    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            *setup, last = statements
            for statement in setup:
                await conn.execute(statement)
            if last.lstrip().upper().startswith("SELECT"):
                return [row[0] for row in await conn.fetch(last)]
            await conn.execute(last)
            return []
        finally:
            await conn.close()

    return asyncio.run(run())


def create_postgres_database(name: str, dsn: str = POSTGRES_ADMIN_DSN) -> str:
    """A fresh database for one stack; returns the SQLAlchemy URL Prefect wants."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"', dsn=dsn)
    host = dsn.split("@", 1)[1].rsplit("/", 1)[0]
    user = dsn.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql+asyncpg://{user}@{host}/{name}"


def drop_postgres_database(name: str, dsn: str = POSTGRES_ADMIN_DSN) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dsn=dsn)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_orphaned_databases(prefix: str, dsn: str = POSTGRES_ADMIN_DSN) -> list[str]:
    """Drop the `<prefix><pid>` databases whose process is gone (a crashed or killed session); returns their names."""
    names = _admin(f"SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}')", dsn=dsn)
    orphaned = [n for n in names if n[len(prefix):].isdigit() and not pid_alive(int(n[len(prefix):]))]
    for name in orphaned:
        drop_postgres_database(name, dsn)
    return orphaned


@contextlib.contextmanager
def session_database(prefix: str, dsn: str = POSTGRES_ADMIN_DSN) -> Iterator[str]:
    """`<prefix><this pid>`, fresh, dropped on exit; orphans of dead sessions with the same prefix go first."""
    drop_orphaned_databases(prefix, dsn)
    name = f"{prefix}{os.getpid()}"
    url = create_postgres_database(name, dsn)
    try:
        yield url
    finally:
        drop_postgres_database(name, dsn)


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on this TCP port (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(int(fields[9]))
    return inodes


def session_pids(leader: int) -> list[int]:
    """The processes of the session `leader` started (spawn() gives each service its own session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[3]) == leader:  # fields after the name: state ppid pgrp session
                    pids.append(int(entry))
    return pids


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


@dataclass
class LocalStack:
    """Start with `with LocalStack(...) as stack:`; `stack.env` is what a client process needs."""

    project: Path
    database_url: str | None = None  # None: SQLite in the stack's own PREFECT_HOME
    workers: int = 1
    worker_query_seconds: float = 1.0
    with_prefect: bool = True
    ui: bool = False
    emulate_llms: bool = True  # False: keep the user's ANTHROPIC_*/OPENAI_* (a live drill)
    scheduler: bool = True  # off in tests and drills, so cron runs don't mix with the runs under test
    server_workers: int = 1  # API worker processes (more than one needs PostgreSQL and Redis)
    redis_db: int = 5
    workdir: Path | None = None
    processes: list[Process] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    emulator_url: str = ""
    api_url: str = ""

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="aios-stack-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        providers = ("ANTHROPIC_", "OPENAI_") if self.emulate_llms else ()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", *providers))}
        emu_port = free_port()
        self.emulator_url = f"http://127.0.0.1:{emu_port}"
        llms = {
            "ANTHROPIC_BASE_URL": f"{self.emulator_url}/anthropic",
            "ANTHROPIC_API_KEY": EMULATOR_KEY,
            "OPENAI_BASE_URL": f"{self.emulator_url}/openai/v1",
            "OPENAI_API_KEY": EMULATOR_KEY,
        }
        self.env = {
            **base_env,
            **(llms if self.emulate_llms else {}),
            "AIOS_HOME": str(self.project),
            "AIOS_EMULATOR_URL": self.emulator_url,
            "AIOS_STATUS_CLAUDE_URL": f"{self.emulator_url}/status/claude",
            "AIOS_STATUS_OPENAI_URL": f"{self.emulator_url}/status/openai",
            "PREFECT_HOME": str(self.workdir / "prefect"),
            "PREFECT_LOCAL_STORAGE_PATH": str(result_storage(self.project)),  # shared with in-process runs, as bootstrap sets it
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
            "AIOS_STATE_PATH": str(self.workdir / "state" / "aios.json"),
            "AIOS_STATE_JOURNAL_PATH": str(self.workdir / "state" / "journal.jsonl"),
            "AIOS_MEMORY_DIR": str(self.workdir / "memory"),
            # The stack's own failure memory: a drill's outage must not open the circuits of the project it runs
            # in, nor two stacks from one checkout (a soak and the test suite) trip each other's.
            "AIOS_BREAKER_PATH": str(self.workdir / "breakers.json"),
        }
        emulator = spawn(
            "emulator",
            [sys.executable, "-m", "aios.emulators.server", "--host", "127.0.0.1", "--port", str(emu_port)],
            self.env,
            self.project,
            self.workdir,
        )
        self.processes.append(emulator)
        if self.with_prefect:
            self._start_prefect()
        wait_http(f"{self.emulator_url}/_control/health", 30, emulator.proc, emulator.log)
        emulator.check_listens_on(emu_port)

    def _start_prefect(self, port: int | None = None) -> None:
        port = port or free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        server_env = {
            **self.env,
            "PREFECT_UI_ENABLED": "true" if self.ui else "false",
            "PREFECT_UI_API_URL": self.api_url,  # the UI's browser side must reach this port, not 4200
        }
        if not self.scheduler:
            server_env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
        if self.database_url:
            server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
            keep_database_connections(server_env)
        if self.server_workers > 1:
            server_env.update(redis_messaging(self.redis_db))
            # Migrate once up front: several API workers migrating a fresh database race each other.
            subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env=server_env, cwd=self.workdir, capture_output=True, check=True, timeout=300,
            )
        server = spawn(
            "prefect-server",
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
            + (["--workers", str(self.server_workers)] if self.server_workers > 1 else []),
            server_env,
            self.workdir,
            self.workdir,
        )
        self.processes.append(server)
        if self.server_workers > 1 and not any(p.name == "prefect-services" for p in self.processes):
            # With several API workers Prefect runs no background services in them (events, triggers,
            # task-run recorder, late runs...): they run once, in a process of their own.
            self.processes.append(
                spawn("prefect-services", [sys.executable, "-m", "prefect", "server", "services", "start"], server_env, self.workdir, self.workdir)
            )
        self.env["PREFECT_API_URL"] = self.api_url
        wait_http(f"{self.api_url}/health", 120, server.proc, server.log)
        server.check_listens_on(port)

    def restart_prefect(self) -> None:
        """Stop the Prefect server and start it again on the same port and database."""
        server = next(p for p in self.processes if p.name == "prefect-server")
        server.stop()
        self.processes.remove(server)
        self._start_prefect(int(self.api_url.rsplit(":", 1)[1].split("/")[0]))

    def start_workers(self, count: int | None = None, pool: str = "aios", limit: int = 4) -> None:
        """Process workers; `limit` caps concurrent runs per worker (each run is a Python process)."""
        worker_env = {**self.env, "PREFECT_WORKER_QUERY_SECONDS": str(self.worker_query_seconds)}
        for i in range(count if count is not None else self.workers):
            self.processes.append(
                spawn(
                    f"worker-{len(self.processes)}-{i}",
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process", "--limit", str(limit)],
                    worker_env,
                    self.project,
                    self.workdir,
                )
            )

    def stop_workers(self) -> None:
        for p in [p for p in self.processes if p.name.startswith("worker")]:
            p.stop()
            self.processes.remove(p)

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run the `aios` CLI in a fresh process against this stack."""
        proc = subprocess.run(
            [sys.executable, "-m", "aios.cli", *args],
            env=self.env,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"aios {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Point this process at the stack (for in-process clients in tests)."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def cleanup(self) -> None:
        if self.workdir and self.workdir.name.startswith("aios-stack-"):
            shutil.rmtree(self.workdir, ignore_errors=True)
