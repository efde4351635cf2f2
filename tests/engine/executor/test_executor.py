"""The executor: same results whichever kind runs them, failures isolated, resume works."""

from __future__ import annotations

import json
import time

import pytest

from engine.errors import ConfigError, RunError
from engine.executor import (
    ExecutorSpec,
    Journal,
    Task,
    TaskResult,
    make_executor,
    parse_executor_spec,
)
from tests.engine.executor import _executor_tasks as jobs


def _square_tasks(n: int = 6) -> list[Task]:
    return [Task(key=f"t{i}", fn=jobs.square, args=(i,), config={"x": i}) for i in range(n)]


def test_inline_results_in_task_order_with_failure_isolated():
    with make_executor("inline") as ex:
        results = ex.run(_square_tasks())
    assert [r.key for r in results] == [f"t{i}" for i in range(6)]
    assert [r.value for r in results if r.ok] == [0, 1, 4, 16, 25]
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and failed[0].key == "t3"
    assert failed[0].error_type == "ValueError"
    assert "three is not allowed" in failed[0].error
    assert failed[0].config == {"x": 3}
    assert "t3" in failed[0].describe_failure() and "{'x': 3}" in failed[0].describe_failure()


def test_failure_line_is_the_exception_not_a_trailing_note():
    # SQLAlchemy appends "(Background on this error at: ...)" after the exception line.
    error = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
             "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n"
             "[SQL: INSERT INTO trials]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)")
    result = TaskResult(key="k", ok=False, error=error, error_type="OperationalError")
    assert result.error_line().endswith("database is locked")
    assert "database is locked" in result.describe_failure()
    plain = TaskResult(key="k", ok=False, error="Traceback\nValueError: bad", error_type="KeyError")
    assert plain.error_line() == "ValueError: bad"


def test_local_pool_matches_inline_on_real_backtests():
    tasks = [Task(key=f"seed{s}", fn=jobs.backtest_total_return, args=(s,)) for s in range(4)]
    with make_executor("inline") as ex:
        inline = ex.run(tasks)
    with make_executor("local", workers=2) as ex:
        local = ex.run(tasks)
        again = ex.run(tasks)  # the pool is reused between calls
    assert all(r.ok for r in local), [r.error for r in local if not r.ok]
    assert [r.value["final_equity"] for r in local] == [r.value["final_equity"] for r in inline]
    assert [r.value["final_equity"] for r in again] == [r.value["final_equity"] for r in inline]
    # really other processes, at most two of them
    pids = {r.value["pid"] for r in local + again}
    assert inline[0].value["pid"] not in pids and 1 <= len(pids) <= 2


def test_local_workers_cap_their_threads():
    with make_executor("local", workers=2, threads_per_worker=1) as ex:
        (result,) = ex.run([Task(key="env", fn=jobs.thread_setting)])
    assert result.ok and result.value == "1"


def test_dead_worker_fails_its_task_and_the_rest_still_run():
    tasks = [Task(key="crash", fn=jobs.crash_worker), *_square_tasks(3)]
    with make_executor("local", workers=1) as ex:
        results = {r.key: r for r in ex.run(tasks)}
    assert results["crash"].ok is False and results["crash"].error_type == "WorkerDied"
    assert [results[f"t{i}"].value for i in range(3)] == [0, 1, 4]


def test_journal_resume_skips_finished_tasks(tmp_path):
    journal = tmp_path / "tasks.jsonl"
    markers = tmp_path / "markers"
    markers.mkdir()
    tasks = [Task(key=f"k{i}", fn=jobs.sleep_then, args=(i, 0.0, str(markers)))
             for i in range(5)]
    with make_executor("inline") as ex:
        seen = []
        for result in ex.imap(tasks, journal=journal):
            seen.append(result.key)
            if len(seen) == 2:
                break  # the user interrupted after two tasks
    assert sorted(p.name for p in markers.iterdir()) == ["0.done", "1.done"]
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["k0", "k1"]

    for marker in markers.iterdir():
        marker.unlink()
    with make_executor("inline") as ex:
        results = ex.run(tasks, journal=journal)
    assert [r.value for r in results] == [0, 1, 2, 3, 4]
    assert [r.resumed for r in results] == [True, True, False, False, False]
    # only the unfinished tasks ran the second time
    assert sorted(p.name for p in markers.iterdir()) == ["2.done", "3.done", "4.done"]


def test_journal_retries_failures_and_ignores_a_cut_line(tmp_path):
    journal = tmp_path / "tasks.jsonl"
    book = Journal(journal)
    book.record(TaskResult(key="a", ok=True, value={"v": 1.5}))
    book.record(TaskResult(key="b", ok=False, error="boom", error_type="ValueError"))
    with journal.open("a") as handle:
        handle.write('{"key": "c", "ok": tr')  # killed mid-write
    finished = Journal(journal).finished()
    assert set(finished) == {"a"} and finished["a"].value == {"v": 1.5}


def test_journal_refuses_values_it_cannot_write(tmp_path):
    book = Journal(tmp_path / "j.jsonl")
    with pytest.raises(ConfigError, match="cannot be journaled"):
        book.record(TaskResult(key="x", ok=True, value=object()))


def test_interrupting_a_local_pool_stops_quickly(tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    tasks = [Task(key=f"k{i}", fn=jobs.sleep_then, args=(i, 0.5, str(markers)))
             for i in range(20)]
    ex = make_executor("local", workers=2)
    started = time.perf_counter()
    iterator = ex.imap(tasks)
    next(iterator)
    iterator.close()  # what Ctrl-C in the consumer does: GeneratorExit inside imap
    ex.close()
    assert time.perf_counter() - started < 15
    time.sleep(1.0)
    assert len(list(markers.iterdir())) < 20  # the queue was cancelled, not drained


@pytest.mark.parametrize("bad, message", [
    ({"workers": 0}, "at least 1"),
    ({"workers": -2}, "at least 1"),
    ({"kind": "dask"}, "kind"),
    ({"wokers": 2}, "did you mean 'workers'"),
    ({"workers": "many"}, "whole number"),
])
def test_bad_specs_are_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        parse_executor_spec(bad)


def test_spec_defaults_and_overrides():
    spec = parse_executor_spec(None)
    assert spec == ExecutorSpec() and spec.kind == "local" and spec.n_workers() >= 1
    assert parse_executor_spec("ray", workers="2").n_workers() == 2
    assert parse_executor_spec({"kind": "local", "workers": 1}, workers=None).workers == 1


def test_duplicate_task_keys_are_refused():
    with make_executor("inline") as ex, pytest.raises(ConfigError, match="unique"):
        ex.run([Task(key="a", fn=jobs.square, args=(1,)), Task(key="a", fn=jobs.square,
                                                                args=(2,))])


def test_unreachable_ray_address_fails_fast_naming_it():
    # port 9 on localhost: nothing listens there, the connection is refused at once
    ex = make_executor({"kind": "ray", "address": "ray://127.0.0.1:9", "connect_timeout_s": 2})
    started = time.perf_counter()
    with pytest.raises(RunError, match=r"ray://127\.0\.0\.1:9"):
        ex.run(_square_tasks(1))
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_non_routable_ray_address_times_out():
    # 10.255.255.1 swallows packets: only the timeout can end the attempt
    ex = make_executor({"kind": "ray", "address": "10.255.255.1:6379", "connect_timeout_s": 2})
    started = time.perf_counter()
    with pytest.raises(RunError, match="10.255.255.1:6379"):
        ex.run(_square_tasks(1))
    assert time.perf_counter() - started < 20


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray")
    ex = make_executor({"kind": "ray", "address": "local", "workers": 2})
    yield ex
    ex.close()
    import ray

    assert not ray.is_initialized()


@pytest.mark.slow
def test_ray_matches_local_and_isolates_failures(ray_executor):
    tasks = [Task(key=f"seed{s}", fn=jobs.backtest_total_return, args=(s,)) for s in range(4)]
    with make_executor("local", workers=2) as ex:
        local = ex.run(tasks)
    remote = ray_executor.run(tasks)
    assert [r.value["final_equity"] for r in remote] == [r.value["final_equity"] for r in local]
    squares = ray_executor.run(_square_tasks())
    assert [r.ok for r in squares] == [True, True, True, False, True, True]
    assert squares[3].config == {"x": 3} and "three" in squares[3].error


def test_progress_counts_done_failed_and_left(capsys):
    from engine.executor import FanoutProgress

    bar = FanoutProgress("tasks", 3, force=True)
    bar.update(TaskResult(key="a", ok=True))
    bar.update(TaskResult(key="b", ok=False, error="x"))
    assert (bar.done, bar.failed, bar.remaining) == (2, 1, 1)
    assert bar.eta_s() is not None and bar.eta_s() >= 0
    bar.close()
    drawn = capsys.readouterr().err
    assert "2/3" in drawn and "1 failed, 1 left" in drawn
