"""A worker that dies mid-run, and a task Airflow stops: the next try follows the same pod; a
stopped task's kpo deletes its pod before it exits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from conftest import airflow, recorded

LOGICAL_DATE = "2026-12-02"


def start_slow_dag(env: dict) -> subprocess.Popen:
    """`airflow dags test kpo_slow` in a process group of its own (the worker, kpo within it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "kpo_slow", LOGICAL_DATE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """The worker's output up to the first line that contains `marker`."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"the worker ended before {marker!r}:\n{''.join(seen)[-4000:]}")


def test_the_try_after_a_dead_worker_follows_the_same_pod(airflow_env, tmp_path):
    worker = start_slow_dag(airflow_env)
    first = read_until(worker, "step 3")
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its kpo, at once
    worker.wait()
    pod = re.search(r"Submitted \(pod (\S+)\)", first).group(1)

    states, _ = recorded("kpo_slow")
    assert states[("slow", -1)][0] == "running", states
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run_id = session.query(DagRun).filter(DagRun.dag_id == "kpo_slow").order_by(DagRun.id.desc()).first().run_id
    # The next try, on another worker: a kpo without the first one's journal.
    other = dict(airflow_env, KPO_STATE_DIR=str(tmp_path / "another-worker"))
    done = airflow(other, "tasks", "test", "kpo_slow", "slow", run_id, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-4000:]
    assert "reattaching to run" in said, said[-4000:]
    assert pod in said, f"{pod} not followed:\n{said[-4000:]}"
    assert "Submitted (pod" not in said, "a second pod was started"
    assert "step 20" in said, said[-4000:]


def test_a_task_airflow_stops_stops_kpo_and_deletes_its_pod(airflow_env):
    worker = start_slow_dag(airflow_env)
    read_until(worker, "step 2")
    worker.send_signal(signal.SIGTERM)  # the task runner only: on_kill signals kpo
    rest, _ = worker.communicate(timeout=300)
    assert "kpo was stopped (SIGTERM)" in rest, rest[-4000:]
    assert "kpo exited 130" in rest, rest[-4000:]
    assert "step 20" not in rest, "the task ran to its end"
    assert re.search(r"pod \S+ (is )?deleted", rest), rest[-4000:]
