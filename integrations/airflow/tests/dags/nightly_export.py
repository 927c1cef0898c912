from datetime import datetime

from airflow.sdk import DAG

from kpo_airflow import KpoOperator

with DAG("nightly_export", schedule="@daily", start_date=datetime(2026, 12, 1), catchup=False):
    greet = KpoOperator(
        task_id="greet",
        task_file="tasks/greet.toml",  # beside this file
        parameters={"who": "{{ ds_nodash }}"},  # templated; kpo run --set who=20261203
        kubernetes_conn_id="kubernetes_default",  # kubeconfig, context, namespace or in-cluster
        retries=2,  # each retry of a finished run is a new attempt (a new pod)
    )
    exit_with = KpoOperator.partial(
        task_id="exit_with",
        task_file="tasks/exit.toml",
        kubernetes_conn_id="kubernetes_default",
    ).expand(parameters=[{"code": 0}, {"code": 99}])  # kpo's 99 is Airflow's skip
    greet >> exit_with
