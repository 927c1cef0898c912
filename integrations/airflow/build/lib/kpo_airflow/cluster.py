"""Which cluster kpo talks to: an Airflow connection, the operator's own arguments, or the
environment.

An Airflow connection of type `kubernetes` (the cncf.kubernetes provider's, so connections made
for KubernetesPodOperator work as they are) gives its extras `kube_config_path`, `kube_config`
(the kubeconfig itself, JSON or YAML), `cluster_context`, `namespace` and `in_cluster`. The
operator's arguments win over the connection's. Without either, kpo finds the cluster itself:
KUBECONFIG, ~/.kube/config, then the service account of the pod the worker runs in.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

# The cncf.kubernetes provider wrote its extras with this prefix before Airflow 2.3.
OLD_PREFIX = "extra__kubernetes__"


@dataclass
class Cluster:
    """kpo's cluster arguments, and the file that holds an inline kubeconfig while kpo runs."""

    args: list[str] = field(default_factory=list)
    temporary: str | None = None

    def close(self) -> None:
        """Removes the inline kubeconfig's file, if one was written."""
        if self.temporary is not None:
            os.unlink(self.temporary)
            self.temporary = None


def extras(conn_extra: dict) -> dict:
    """The connection's extras by their plain names (`kube_config_path`), old prefix dropped."""
    plain = {}
    for key, value in conn_extra.items():
        name = key[len(OLD_PREFIX) :] if key.startswith(OLD_PREFIX) else key
        if value not in (None, ""):
            plain.setdefault(name, value)
    return plain


def truthy(value) -> bool:
    """A connection extra's boolean, as the UI stores it (`true`, `"true"`, `"True"`)."""
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def cluster_args(
    conn_extra: dict | None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    in_cluster: bool | None = None,
    sim: bool = False,
) -> Cluster:
    """kpo's cluster flags from a connection's extras (None: no connection) and the operator's
    own arguments, which win."""
    if sim:
        return Cluster(["--sim"] + (["--namespace", namespace] if namespace else []))
    conn = extras(conn_extra or {})
    cluster = Cluster()
    if in_cluster if in_cluster is not None else truthy(conn.get("in_cluster", False)):
        cluster.args.append("--in-cluster")
    elif kubeconfig or conn.get("kube_config_path"):
        cluster.args += ["--kubeconfig", kubeconfig or conn["kube_config_path"]]
    elif conn.get("kube_config"):
        cluster.temporary = write_private(conn["kube_config"])
        cluster.args += ["--kubeconfig", cluster.temporary]
    if context or conn.get("cluster_context"):
        cluster.args += ["--context", context or conn["cluster_context"]]
    if namespace or conn.get("namespace"):
        cluster.args += ["--namespace", namespace or conn["namespace"]]
    return cluster


def write_private(kube_config) -> str:
    """Writes an inline kubeconfig (a dict, or its JSON or YAML text) to a file only this user
    can read; YAML is a superset of JSON, so a dict is written as JSON."""
    text = kube_config if isinstance(kube_config, str) else json.dumps(kube_config)
    fd, path = tempfile.mkstemp(prefix="kpo-kubeconfig-", suffix=".yaml")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path
