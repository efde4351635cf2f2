"""Faults: a journal cut by a kill is repaired, workers never outlive their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engine.executor import Journal, Task, TaskResult, make_executor
from tests.engine.executor import _fault_tasks as jobs

_ROOT = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for a reaper that may be slow)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dev dependency
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        return state != "Z"
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_cut_last_line_is_repaired_before_anything_is_appended(tmp_path):
    path = tmp_path / "tasks.jsonl"
    book = Journal(path)
    book.record(TaskResult(key="a", ok=True, value={"v": 1}))
    with path.open("a") as handle:
        handle.write('{"key": "b", "ok": tr')  # the kill came mid-write
    again = Journal(path)
    assert path.read_text().endswith("}\n")  # the cut line is gone before any append
    again.record(TaskResult(key="c", ok=True, value={"v": 3}))
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # every line parses
    assert [line["key"] for line in lines] == ["a", "c"]
    assert set(Journal(path).finished()) == {"a", "c"}


def test_a_whole_last_record_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"key": "a", "ok": true, "value": 1}')
    book = Journal(path)
    assert set(book.finished()) == {"a"}
    book.record(TaskResult(key="b", ok=True, value=2))
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["a", "b"]


_PARENT = textwrap.dedent("""
    import sys
    from engine.executor import Task, make_executor
    from tests.engine.executor import _fault_tasks as jobs

    tasks = [Task(key=f"k{i}", fn=jobs.announce_then_sleep, args=(sys.argv[1], 60.0))
             for i in range(2)]
    with make_executor("local", workers=2) as ex:
        list(ex.imap(tasks))
""")


def test_workers_are_gone_within_two_seconds_of_a_sigkill_of_their_parent(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path)], cwd=_ROOT,
                              env=env)
    try:
        assert wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 120)
        workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert all(alive(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)  # no clean-up code of the parent runs
        parent.wait()
        killed = time.monotonic()
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 5)
        assert time.monotonic() - killed < 2.5
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in [int(p.stem) for p in tmp_path.glob("*.pid")]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_stopped_pool_lets_the_interrupted_task_clean_up(tmp_path):
    tasks = [Task(key="quick", fn=jobs.announce_then_sleep, args=(str(tmp_path), 0.0)),
             Task(key="slow", fn=jobs.announce_then_sleep, args=(str(tmp_path), 60.0))]
    ex = make_executor("local", workers=2)
    iterator = ex.imap(tasks)
    first = next(iterator)
    assert first.key == "quick" and first.ok
    assert wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 60)
    slow = next(int(p.stem) for p in tmp_path.glob("*.pid") if p.stem != str(first.value))
    started = time.monotonic()
    iterator.close()  # Ctrl-C or SIGTERM in the consumer: the pool is stopped
    ex.close()
    assert time.monotonic() - started < 5
    assert not alive(slow)
    assert (tmp_path / f"{slow}.cleaned").is_file()  # SIGTERM first: its finally ran


def test_an_error_in_the_consumer_stops_running_tasks_instead_of_waiting(tmp_path):
    tasks = [Task(key="quick", fn=jobs.announce_then_sleep, args=(str(tmp_path), 0.0)),
             Task(key="slow", fn=jobs.announce_then_sleep, args=(str(tmp_path), 60.0))]
    stopped = None
    try:
        with make_executor("local", workers=2) as ex:
            for _ in ex.imap(tasks):
                assert wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 60)
                stopped = time.monotonic()
                raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) while handling a result
    except KeyboardInterrupt:
        pass
    assert stopped is not None and time.monotonic() - stopped < 5  # not the 60 s task
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert not any(alive(pid) for pid in pids)
    assert all((tmp_path / f"{pid}.cleaned").is_file() for pid in pids)
