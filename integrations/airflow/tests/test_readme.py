"""The README's DAG, verbatim: the file the README shows is this DAG file, and it runs."""

from __future__ import annotations

from pathlib import Path

from conftest import HERE, airflow, recorded

README = HERE.parents[2] / "README.md"
DAG_FILE = HERE / "dags" / "nightly_export.py"


def test_the_readmes_dag_is_the_dag_file_and_runs(airflow_env):
    text = README.read_text()
    marker = f"`{DAG_FILE.relative_to(HERE.parents[2])}`"
    assert marker in text, f"the README names {marker}"
    block = text.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block == DAG_FILE.read_text(), "the README's DAG and the file differ"

    done = airflow(airflow_env, "dags", "test", "nightly_export", "2026-12-03", timeout=600)
    states, xcoms = recorded("nightly_export")
    assert states[("greet", -1)] == ("success", 1), (done.stdout + done.stderr)[-4000:]
    assert xcoms[("greet", -1, "return_value")] == {"who": "20261203"}
    assert states[("exit_with", 0)] == ("success", 1)
    assert states[("exit_with", 1)] == ("skipped", 1)
