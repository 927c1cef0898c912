"""Run kpo task files from Apache Airflow: `KpoOperator`."""

from kpo_airflow.operator import KpoOperator
from kpo_airflow.run_id import stable_run_id

__all__ = ["KpoOperator", "stable_run_id"]
