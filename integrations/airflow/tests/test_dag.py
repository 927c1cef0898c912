"""The DAG of tests/dags/kpo_demo.py run by a real Airflow (`airflow dags test`): each task's
state, its log lines and its XCom values."""

from __future__ import annotations

import re

import pytest
from conftest import airflow, recorded, tries

LOGICAL_DATE = "2026-12-03"


@pytest.fixture(scope="module")
def demo(airflow_env):
    """One run of the demo DAG: Airflow's output split into tries, and what it recorded."""
    done = airflow(airflow_env, "dags", "test", "kpo_demo", LOGICAL_DATE, timeout=600)
    print(done.stdout + done.stderr)  # shown by pytest -rP, and for a failing test
    states, xcoms = recorded("kpo_demo")
    return done, tries(done.stdout + done.stderr), states, xcoms


def logs_of(demo, task_id: str, map_index: int = -1) -> list[str]:
    return [t.text for t in demo[1] if t.task_id == task_id and t.map_index == map_index]


def test_a_succeeding_task_streams_its_log_and_pushes_result_and_outputs(demo):
    done, _, states, xcoms = demo
    assert states[("greets", -1)] == ("success", 1), done.stdout[-3000:]
    (log,) = logs_of(demo, "greets")
    assert "hello, world" in log
    assert xcoms[("greets", -1, "return_value")] == {"who": "world"}
    assert xcoms[("greets", -1, "outputs")] == {"greeting": "hello-world"}
    kpo = xcoms[("greets", -1, "kpo")]
    assert kpo["outcome"] == "succeeded" and kpo["exit_code"] == 0 and kpo["attempt"] == 1
    assert kpo["run_id"].startswith("kpo-demo-greets-"), kpo


def test_a_failing_task_fails_with_kpos_message_and_exit_code(demo):
    _, _, states, xcoms = demo
    assert states[("fails", -1)] == ("failed", 1)
    (log,) = logs_of(demo, "fails")
    assert "exiting with 3" in log, log
    assert "kpo exited 3: base exited 3" in log, log
    assert ("fails", -1, "return_value") not in xcoms


def test_kpos_skip_is_airflows_skip(demo):
    _, _, states, _ = demo
    assert states[("skips", -1)] == ("skipped", 1)
    (log,) = logs_of(demo, "skips")
    assert "exiting with 99" in log and "kpo: skipped" in log, log


def test_mapped_tasks_are_runs_of_their_own(demo):
    _, _, states, xcoms = demo
    run_ids = set()
    for index, who in enumerate(["ada", "grace"]):
        assert states[("mapped", index)] == ("success", 1)
        assert xcoms[("mapped", index, "return_value")] == {"who": who}
        (log,) = logs_of(demo, "mapped", index)
        assert f"hello, {who}" in log
        run_ids.add(xcoms[("mapped", index, "kpo")]["run_id"])
    assert len(run_ids) == 2, run_ids


def test_templated_parameters_are_rendered_before_kpo_sees_them(demo):
    _, _, states, xcoms = demo
    assert states[("templated", -1)] == ("success", 1)
    assert xcoms[("templated", -1, "return_value")] == {"who": "day-20261203"}
    (log,) = logs_of(demo, "templated")
    assert "hello, day-20261203" in log, log
    # The command line is logged without the values: a parameter may be a secret.
    assert "--set=who=…" in log and "--set=who=day" not in log, log


def test_a_retry_after_a_finished_failure_is_a_new_attempt(demo):
    _, _, states, xcoms = demo
    assert states[("retried", -1)] == ("success", 2)
    first, second = logs_of(demo, "retried")
    assert "exiting with 3" in first and "kpo exited 3" in first, first
    assert "already finished" not in second, second
    assert "attempt 2: pod" in second and "exiting with 0" in second, second
    kpo = xcoms[("retried", -1, "kpo")]
    assert kpo["attempt"] == 2 and kpo["exit_code"] == 0, kpo


def test_an_execution_timeout_stops_kpo_which_deletes_its_pod(demo):
    _, _, states, _ = demo
    assert states[("timed_out", -1)] == ("failed", 1)
    (log,) = logs_of(demo, "timed_out")
    assert "step 1" in log and "step 20" not in log, log
    assert "kpo was stopped (SIGTERM)" in log and "Timeout" in log, log
    assert re.search(r"kpo: .*deleted pod|pod \S+ (is )?deleted", log), log
