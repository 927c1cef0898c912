#!/usr/bin/env bash
# A virtualenv with the pinned Airflow (constraints.txt), pytest and wheel, for the KpoOperator's tests;
# prints its path. Installed once: skipped while one made from the same constraints is there.
# The operator itself is not installed into it (the tests import it from src/), so one venv
# serves every clone of the repository.
#   KPO_AIRFLOW_VENV  where (default ~/.cache/kpo/airflow-venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${KPO_AIRFLOW_VENV:-$HOME/.cache/kpo/airflow-venv}
airflow=$(sed -n 's/^apache-airflow==//p' "$here/constraints.txt")
stamp=$(sha256sum < "$here/constraints.txt" | cut -c1-16)
if [ "$(cat "$venv/.kpo-constraints" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -c "$here/constraints.txt" "apache-airflow==$airflow" pytest wheel >&2
  echo "$stamp" > "$venv/.kpo-constraints"
fi
echo "$venv"
