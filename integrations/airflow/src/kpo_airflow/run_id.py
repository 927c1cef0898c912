"""A kpo run id that every try of one task instance shares, and no other task instance has.

kpo finds a run's pods by this id (a label value), so a try that follows a worker's death finds
the pod the dead try started and follows it (by UID) instead of starting a second one. The id is
a readable stem of the DAG and task ids and a hash of everything that makes the task instance
one: DAG, task, DAG run and map index (not the try number).
"""

from __future__ import annotations

import hashlib
import re

# A label value is at most 63 characters; kpo names the run's Lease `kpo-run-<id>`, a DNS
# subdomain: lowercase letters, digits and '-'.
MAX_LENGTH = 63
HASH_LENGTH = 12


def stable_run_id(dag_id: str, task_id: str, dag_run_id: str, map_index: int) -> str:
    """The kpo run id of one task instance: the same for each of its tries."""
    identity = "\x1f".join([dag_id, task_id, dag_run_id, str(map_index)])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    stem = re.sub(r"[^a-z0-9]+", "-", f"{dag_id}-{task_id}".lower()).strip("-")
    stem = stem[: MAX_LENGTH - HASH_LENGTH - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest
