"""Breakers shared by every process: opened in one, skipped in another; a half-open trial taken by one of N."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from aios.core.breaker import BreakerBoard
from aios.core.policy import BreakerPolicy
from aios.outage.breaker_store import FileBreakerStore, RedisBreakerStore, Resilient

REDIS_URL = "redis://127.0.0.1:6379/0"
TARGET = "anthropic:claude-opus-5-5"

# One process's part: build a board on the named store, do one thing, print what it saw.
CHILD = """
import json, sys, time
from aios.core.breaker import BreakerBoard
from aios.core.policy import BreakerPolicy
from aios.outage.breaker_store import FileBreakerStore, RedisBreakerStore

kind, where, action, cooldown, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
store = FileBreakerStore(where) if kind == "file" else RedisBreakerStore("%s", prefix=where)
board = BreakerBoard(BreakerPolicy(failure_threshold=1, cooldown=cooldown), store=store)
breaker = board.get("%s")
while time.time() < start_at:  # every child acts at the same moment
    time.sleep(0.001)
if action == "fail":
    breaker.record_failure()
    print(json.dumps({"state": breaker.state.value}))
else:
    print(json.dumps({"allowed": breaker.allow(), "state": breaker.state.value}))
""" % (REDIS_URL, TARGET)


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["file", "redis"])
def shared(request, tmp_path):
    """(kind, where): a breaker file in a temp dir, or a Redis key prefix no one else uses."""
    if request.param == "file":
        yield "file", str(tmp_path / "breakers.json")
        return
    if not redis_reachable():
        pytest.fail("Redis is not running at 127.0.0.1:6379 (this project's test machine runs it)")
    prefix = f"aios-test:{uuid.uuid4().hex}:"
    yield "redis", prefix
    RedisBreakerStore(REDIS_URL, prefix=prefix).clear()


def children(kind: str, where: str, action: str, count: int = 1, cooldown: float = 300) -> list[dict]:
    start_at = time.time() + 1.5  # time for every interpreter to start and import
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, kind, where, action, str(cooldown), str(start_at)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    seen = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        seen.append(json.loads(out.splitlines()[-1]))
    return seen


def test_a_breaker_opened_in_one_process_skips_the_target_in_another(shared):
    kind, where = shared
    assert children(kind, where, "ask") == [{"allowed": True, "state": "closed"}]
    assert children(kind, where, "fail") == [{"state": "open"}]
    assert children(kind, where, "ask") == [{"allowed": False, "state": "open"}], "another process skips it"


def test_a_half_open_trial_is_claimed_by_exactly_one_of_several_processes(shared):
    kind, where = shared
    children(kind, where, "fail", cooldown=0)
    seen = children(kind, where, "ask", count=5, cooldown=0)
    assert sorted(s["allowed"] for s in seen) == [False, False, False, False, True]


def test_a_success_anywhere_closes_it_for_everyone(tmp_path):
    store = FileBreakerStore(tmp_path / "breakers.json")
    one = BreakerBoard(BreakerPolicy(failure_threshold=1, cooldown=0), store=store)
    other = BreakerBoard(BreakerPolicy(failure_threshold=1, cooldown=0), store=FileBreakerStore(tmp_path / "breakers.json"))
    one.get(TARGET).record_failure()
    assert one.get(TARGET).allow(), "the trial"
    assert not other.get(TARGET).allow(), "taken already"
    one.get(TARGET).record_success()
    assert other.get(TARGET).allow() and other.states() == {TARGET: "closed"}


def test_a_file_that_is_not_breaker_json_is_read_as_closed_and_replaced_whole(tmp_path):
    path = tmp_path / "breakers.json"
    path.write_text("{not json")
    board = BreakerBoard(BreakerPolicy(failure_threshold=1), store=FileBreakerStore(path))
    assert board.get(TARGET).allow()
    board.get(TARGET).record_failure()
    assert json.loads(path.read_text())[TARGET]["failures"] == 1


def test_an_unreachable_redis_keeps_breakers_in_the_process_instead_of_failing_the_run(caplog):
    store = Resilient(RedisBreakerStore("redis://127.0.0.1:1/0", timeout=0.1), "redis")
    board = BreakerBoard(BreakerPolicy(failure_threshold=1), store=store)
    assert board.get(TARGET).allow()
    board.get(TARGET).record_failure()
    assert not board.get(TARGET).allow(), "the breaker still works, in this process"
    assert [r.message for r in caplog.records if "unreachable" in r.message][:1], "one line says why"
