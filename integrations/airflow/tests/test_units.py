"""The operator's parts without Airflow running: run ids, cluster flags, kpo's report read."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from kpo_airflow.cluster import cluster_args
from kpo_airflow.operator import LOG_PIECE, log_lines
from kpo_airflow.outcome import KpoRunFailed, Outcome
from kpo_airflow.run_id import stable_run_id

LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_a_run_id_is_stable_distinct_and_label_safe():
    one = stable_run_id("etl", "export", "manual__2026-12-03T00:00:00+00:00", -1)
    assert one == stable_run_id("etl", "export", "manual__2026-12-03T00:00:00+00:00", -1)
    others = {
        stable_run_id("etl", "export", "manual__2026-12-03T00:00:00+00:00", 0),
        stable_run_id("etl", "export", "scheduled__2026-12-03T00:00:00+00:00", -1),
        stable_run_id("etl", "load", "manual__2026-12-03T00:00:00+00:00", -1),
        stable_run_id("etl2", "export", "manual__2026-12-03T00:00:00+00:00", -1),
    }
    assert one not in others and len(others) == 4
    long = stable_run_id("D" * 200, "Ünïcode task.with.dots", "r", 7)
    for run_id in [one, long, stable_run_id("--", "__", "r", 0), *others]:
        assert len(run_id) <= 63 and LABEL_VALUE.match(run_id), run_id


def test_cluster_flags_come_from_the_connection_and_the_arguments_win(tmp_path):
    conn = {"kube_config_path": "/etc/k.yaml", "cluster_context": "prod", "namespace": "jobs"}
    assert cluster_args(conn).args == ["--kubeconfig", "/etc/k.yaml", "--context", "prod", "--namespace", "jobs"]
    mine = cluster_args(conn, kubeconfig="/my.yaml", context="dev", namespace="me")
    assert mine.args == ["--kubeconfig", "/my.yaml", "--context", "dev", "--namespace", "me"]
    old = {"extra__kubernetes__in_cluster": "true", "extra__kubernetes__namespace": "jobs"}
    assert cluster_args(old).args == ["--in-cluster", "--namespace", "jobs"]
    assert cluster_args(None).args == [], "kpo finds the cluster itself"
    assert cluster_args(conn, sim=True).args == ["--sim"]
    inline = cluster_args({"kube_config": {"apiVersion": "v1", "kind": "Config"}})
    path = Path(inline.args[1])
    assert json.loads(path.read_text())["kind"] == "Config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    inline.close()
    assert not path.exists()


def report(**fields) -> bytes:
    base = {"task": "t", "run_id": "r", "pod": "t-abc", "outcome": "succeeded", "exit_code": 0,
            "message": "base exited 0 (Completed)", "result": {"rows": 1}, "outputs": {"rows": "1"}, "attempt": 1}
    return json.dumps({**base, **fields}, indent=2).encode()


def test_a_pods_endless_line_reaches_the_task_log_in_bounded_pieces():
    # A line longer than a piece, a two-byte character across the pieces' border, bytes that
    # are no UTF-8, an empty line, and a last line without its newline.
    long = "a" * (LOG_PIECE - 1) + "é" + "b" * 10
    raw = long.encode() + b"\n\xff\xfe\n\nlast \xc3"
    lines = list(log_lines(io.BytesIO(raw)))
    assert all(len(line.encode()) <= LOG_PIECE for line in lines)
    assert lines == ["a" * (LOG_PIECE - 1), "éb" + "b" * 9, "\ufffd\ufffd", "", "last ", "\ufffd"]


def test_kpos_exit_codes_become_airflows_states():
    ok = Outcome.read(0, report())
    ok.raise_unless_succeeded()
    assert ok.xcom()["result"] == {"rows": 1} and ok.xcom()["outputs"] == {"rows": "1"}
    with pytest.raises(AirflowSkipException):
        Outcome.read(99, report(outcome="succeeded", message="skipped: exit 99")).raise_unless_succeeded()
    with pytest.raises(KpoRunFailed, match=r"kpo exited 3: base exited 3") as failed:
        Outcome.read(3, report(outcome="failed", exit_code=3, message="base exited 3 (Error)")).raise_unless_succeeded()
    assert failed.value.exit_code == 3
    invalid = b'{"outcome": "error", "exit_code": 78, "message": "task.toml:3:1: image: missing"}'
    with pytest.raises(AirflowFailException, match=r"task.toml:3:1: image: missing .*not retried"):
        Outcome.read(78, invalid).raise_unless_succeeded()
    with pytest.raises(KpoRunFailed, match="printed no report"):
        Outcome.read(70, b"").raise_unless_succeeded()


def test_a_batchs_members_are_pushed_by_task_name():
    lines = [
        {"kind": "run", "task": "m-a", "run_id": "b-m-a", "outcome": "succeeded", "exit_code": 0, "result": 1, "outputs": {}},
        {"kind": "run", "task": "m-b", "run_id": "b-m-b", "outcome": "failed", "exit_code": 2, "result": None, "outputs": {"x": "y"}},
        {"kind": "batch", "batch_id": "b", "exit_code": 80, "counts": {"succeeded": 1, "failed": 1}},
    ]
    outcome = Outcome.read(80, "\n".join(json.dumps(l) for l in lines).encode())
    assert outcome.xcom()["result"] == {"m-a": 1, "m-b": None}
    assert outcome.xcom()["outputs"]["m-b"] == {"x": "y"}
    with pytest.raises(KpoRunFailed, match="kpo exited 80: 1 succeeded, 1 failed"):
        outcome.raise_unless_succeeded()


def test_the_package_installs_with_pip(tmp_path):
    """`pip install integrations/airflow` works and brings `kpo_airflow` along (built from a copy:
    setuptools builds inside the folder it is given)."""
    package = Path(__file__).resolve().parents[1]
    copy = tmp_path / "package"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(copy)],
        check=True,
        env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    assert (target / "kpo_airflow" / "operator.py").is_file()
    found = subprocess.run(
        [sys.executable, "-c", "import kpo_airflow, sys; print(kpo_airflow.__file__)"],
        env=dict(os.environ, PYTHONPATH=str(target)), capture_output=True, text=True, check=True,
    )
    assert found.stdout.startswith(str(target)), found.stdout
