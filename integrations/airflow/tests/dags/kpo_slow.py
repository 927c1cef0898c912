"""One slow task, for the tests that kill its worker or stop it from Airflow."""

from datetime import datetime

from airflow.sdk import DAG

from kpo_airflow import KpoOperator

with DAG("kpo_slow", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    KpoOperator(task_id="slow", task_file="tasks/slow.toml", kubernetes_conn_id="kpo_test")
