"""The KpoOperator's tests' DAG: a succeeding, a failing, a skipped, a mapped, a templated, a
retried and a timed-out task, each a kpo task file on the cluster of the `kpo_test` connection."""

from datetime import datetime, timedelta

from airflow.sdk import DAG

from kpo_airflow import KpoOperator

with DAG("kpo_demo", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    KpoOperator(task_id="greets", task_file="tasks/greet.toml", kubernetes_conn_id="kpo_test")
    KpoOperator(
        task_id="fails",
        task_file="tasks/exit.toml",
        parameters={"code": 3},
        kubernetes_conn_id="kpo_test",
    )
    KpoOperator(
        task_id="skips",
        task_file="tasks/exit.toml",
        parameters={"code": 99},
        kubernetes_conn_id="kpo_test",
    )
    KpoOperator.partial(
        task_id="mapped", task_file="tasks/greet.toml", kubernetes_conn_id="kpo_test"
    ).expand(parameters=[{"who": "ada"}, {"who": "grace"}])
    KpoOperator(
        task_id="templated",
        task_file="tasks/greet.toml",
        parameters={"who": "day-{{ ds_nodash }}"},
        kubernetes_conn_id="kpo_test",
    )
    # Its first try fails (exit 3), its second succeeds: kpo runs it anew as attempt 2.
    KpoOperator(
        task_id="retried",
        task_file="tasks/exit.toml",
        parameters={"code": "{{ 3 if ti.try_number == 1 else 0 }}"},
        retries=1,
        retry_delay=timedelta(seconds=1),
        kubernetes_conn_id="kpo_test",
    )
    # Airflow's execution_timeout interrupts execute(): kpo is stopped and deletes its pod first.
    KpoOperator(
        task_id="timed_out",
        task_file="tasks/slow.toml",
        execution_timeout=timedelta(seconds=3),
        kubernetes_conn_id="kpo_test",
    )
