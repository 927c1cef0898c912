"""A real Airflow for the tests: its home (SQLite) in a temporary folder, the DAGs of
tests/dags, and the `kpo_test` connection to the cluster of $KPO_TEST_KUBECONFIG — the simulated
cluster `cargo test` serves (tests/it/airflow.rs), or the real one in the real-cluster suite.

Airflow is driven through its own CLI (`airflow dags test`, `airflow tasks test`) in child
processes, as a worker runs tasks; what it recorded (task states, XCom) is read from its database.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run these tests through `cargo test --test it airflow`", returncode=2)
    return value


# Airflow reads its configuration when first imported: set it up before anything imports it.
HOME = Path(tempfile.mkdtemp(prefix="kpo-airflow-home-"))
atexit.register(shutil.rmtree, HOME, ignore_errors=True)
ENV = {
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "KPO_STATE_DIR": str(HOME / "kpo-state"),
    "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
}
os.environ.update(ENV)
sys.path.insert(0, str(SRC))


@pytest.fixture(scope="session")
def airflow_env():
    """The environment of every Airflow command: its home, the kpo binary, the connection."""
    kubeconfig = required("KPO_TEST_KUBECONFIG")
    required("KPO_BIN")
    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": kubeconfig}}
    env = dict(os.environ, AIRFLOW_CONN_KPO_TEST=json.dumps(connection))
    # The README's DAG names the provider's default connection.
    env["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = env["AIRFLOW_CONN_KPO_TEST"]
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def airflow(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Runs `airflow ARGS…`, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        **kwargs,
    )


@dataclass
class TaskTry:
    """One try of one task instance as `airflow dags test` ran it: its lines of the log."""

    task_id: str
    map_index: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def tries(output: str) -> list[TaskTry]:
    """Splits `airflow dags test`'s output into its tasks' tries (it runs one at a time)."""
    found, current = [], None
    for line in output.splitlines():
        start = re.search(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)", line)
        if start:
            current = TaskTry(start.group(1), int(start.group(2)), [])
            found.append(current)
        elif current is not None:
            current.lines.append(line)
            if "[DAG TEST] end task" in line:
                current = None
    return found


def recorded(dag_id: str) -> tuple[dict, dict]:
    """The newest run of `dag_id` as Airflow's database has it: each task instance's state and
    try number by (task_id, map_index), and each XCom value by (task_id, map_index, key)."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        states = {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in tis}
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id)
        xcoms = {(x.task_id, x.map_index, x.key): XComModel.deserialize_value(x) for x in rows}
        return states, xcoms
