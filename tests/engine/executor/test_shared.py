"""Shared task arguments and results landed by the caller before the journal records them."""

from __future__ import annotations

import json

import pytest

from engine.executor import Shared, Task, TaskResult, make_executor


def _tasks(shared: Shared) -> list[Task]:
    # len() of the wrapper itself would raise TypeError: the task must get the value
    return [Task(key=f"t{i}", fn=len, args=(shared,)) for i in range(3)] + [
        Task(key="kw", fn=sorted, args=([3, 1],), kwargs={"reverse": Shared(True)})]


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_shared_arguments_reach_the_task_unwrapped(kind):
    with make_executor(kind, workers=2) as ex:
        results = ex.run(_tasks(Shared(list(range(5)))))
    assert [r.value for r in results] == [5, 5, 5, [3, 1]], [r.error for r in results]


def test_receive_runs_before_the_journal_and_replaces_the_value(tmp_path):
    landed = []

    def receive(result: TaskResult) -> TaskResult:
        landed.append(result.key)
        assert not (tmp_path / "j.jsonl").exists() or result.key not in (
            tmp_path / "j.jsonl").read_text()
        return TaskResult(key=result.key, ok=True, value={"n": result.value},
                          config=result.config)

    tasks = [Task(key="a", fn=len, args=("xy",)), Task(key="b", fn=int, args=("nope",))]
    with make_executor("inline") as ex:
        results = ex.run(tasks, journal=tmp_path / "j.jsonl", receive=receive)
    assert landed == ["a"]  # failures are not received
    assert results[0].value == {"n": 2} and not results[1].ok
    lines = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert lines[0]["value"] == {"n": 2}


@pytest.mark.slow
def test_ray_puts_a_shared_value_once_per_fanout(monkeypatch):
    ray = pytest.importorskip("ray")
    puts = []
    real_put = ray.put

    def counting_put(value, **kwargs):
        puts.append(type(value).__name__)
        return real_put(value, **kwargs)

    monkeypatch.setattr(ray, "put", counting_put)
    with make_executor({"kind": "ray", "address": "local", "workers": 2}) as ex:
        results = ex.run(_tasks(Shared(list(range(5)))))
    assert [r.value for r in results] == [5, 5, 5, [3, 1]], [r.error for r in results]
    assert puts == ["list", "bool"]  # one put per Shared object, not one per task
