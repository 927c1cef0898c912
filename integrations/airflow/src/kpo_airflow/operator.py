"""KpoOperator: an Airflow task that runs a kpo task file as its own pod.

The operator is a thin driver of the `kpo` CLI — `kpo run --output json --run-id ID
--rerun-finished --wait --set NAME=VALUE … TASK.toml` — so a task behaves in Airflow exactly as
it does on the command line: the same pod, the same plugins and policies, the same journal.
kpo's lines (its progress and the container's log) go to the task log as they come; its report
becomes XCom values; its exit code decides the task's state.
"""

from __future__ import annotations

import codecs
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from airflow.sdk import BaseHook, BaseOperator

from kpo_airflow.cluster import cluster_args
from kpo_airflow.outcome import Outcome
from kpo_airflow.run_id import stable_run_id

# The most of one line of kpo's held and logged at once: a pod's output without newlines is
# logged in pieces of this size, so the worker never holds more.
LOG_PIECE = 64 * 1024


def log_lines(raw: BinaryIO) -> Iterator[str]:
    """kpo's stderr as the task log's lines: each line, one longer than `LOG_PIECE` bytes in
    pieces, decoded as UTF-8 without splitting a character across two (bytes that are no UTF-8
    become U+FFFD: a task log is text)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for piece in iter(lambda: raw.readline(LOG_PIECE), b""):
        text = decoder.decode(piece)
        if text:  # empty only where a piece ends inside a character
            yield text.removesuffix("\n")
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


class KpoOperator(BaseOperator):
    """Runs `task_file` with kpo as its own pod and reports how it went.

    :param task_file: the kpo task file (or a folder of them: a batch), relative to the DAG's
        folder unless absolute. Templated.
    :param parameters: values for the task file's `[params]`, each passed as `--set NAME=VALUE`.
        Templated (`{"day": "{{ ds }}"}`). Named so because `params` are Airflow's own.
    :param kubernetes_conn_id: an Airflow connection of type `kubernetes` (kubeconfig path or
        content, context, namespace, in-cluster). Without it kpo finds the cluster itself.
    :param kubeconfig: a kubeconfig file; wins over the connection's.
    :param cluster_context: a kubeconfig context; wins over the connection's.
    :param namespace: the namespace to run in; wins over the connection and the task file.
        Templated.
    :param in_cluster: use the service account of the pod the worker runs in.
    :param sim: run on kpo's built-in simulated cluster (nothing real is created).
    :param kpo_run_id: the kpo run id; by default one derived from DAG, task, DAG run and map
        index, the same for every try. Templated.
    :param kpo_binary: the kpo executable (default: `$KPO_BIN`, else `kpo` on the PATH).
    :param extra_args: further `kpo run` flags (`["--policy", "/etc/kpo/strict.toml"]`).
    """

    template_fields: Sequence[str] = ("task_file", "parameters", "namespace", "kpo_run_id")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#d8e9f6"

    def __init__(
        self,
        *,
        task_file: str,
        parameters: Mapping[str, Any] | None = None,
        kubernetes_conn_id: str | None = None,
        kubeconfig: str | None = None,
        cluster_context: str | None = None,
        namespace: str | None = None,
        in_cluster: bool | None = None,
        sim: bool = False,
        kpo_run_id: str | None = None,
        kpo_binary: str | None = None,
        extra_args: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.task_file = task_file
        self.parameters = dict(parameters or {})
        self.kubernetes_conn_id = kubernetes_conn_id
        self.kubeconfig = kubeconfig
        self.cluster_context = cluster_context
        self.namespace = namespace
        self.in_cluster = in_cluster
        self.sim = sim
        self.kpo_run_id = kpo_run_id
        self.kpo_binary = kpo_binary
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen | None = None
        self._stopped = False

    def execute(self, context) -> Any:
        ti = context["ti"]
        run_id = self.kpo_run_id or stable_run_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        conn_extra = None
        if self.kubernetes_conn_id:
            conn_extra = BaseHook.get_connection(self.kubernetes_conn_id).extra_dejson
        cluster = cluster_args(
            conn_extra,
            kubeconfig=self.kubeconfig,
            context=self.cluster_context,
            namespace=self.namespace,
            in_cluster=self.in_cluster,
            sim=self.sim,
        )
        try:
            command = [
                self.binary(),
                "run",
                "--output",
                "json",
                "--run-id",
                run_id,
                "--rerun-finished",
                "--wait",
                *cluster.args,
                *(f"--set={name}={value}" for name, value in self.parameters.items()),
                *self.extra_args,
                str(self.resolved_task_file()),
            ]
            shown = [f"--set={a.split('=', 2)[1]}=…" if a.startswith("--set=") else a for a in command]
            self.log.info("kpo run %s (try %s): %s", run_id, ti.try_number, " ".join(shown))
            outcome = self.run_kpo(command)
        finally:
            cluster.close()
        values = outcome.xcom()
        if outcome.exit_code == 0:
            ti.xcom_push(key="outputs", value=values["outputs"])
            ti.xcom_push(key="kpo", value=values["kpo"])
        outcome.raise_unless_succeeded()
        return values["result"]

    def run_kpo(self, command: list[str]) -> Outcome:
        """Runs kpo: its stderr (progress and the container's log) line by line into the task
        log while it runs, from a thread of its own; its stdout (the report) into a file read at
        the end, so a large report never blocks kpo while the log is read."""
        with tempfile.TemporaryFile() as report:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=report, stderr=subprocess.PIPE)
            self._process, self._stopped = process, False
            reader = threading.Thread(target=self.stream, args=(process.stderr,), daemon=True)
            reader.start()
            try:
                code = process.wait()
            finally:
                # execute() interrupted (an execution_timeout): kpo stops its pod before this
                # returns, its lines still streamed.
                if process.poll() is None:
                    self._stopped = True
                    process.send_signal(signal.SIGTERM)
                    process.wait()
                reader.join()
                process.stderr.close()
                if self._stopped:
                    self.log.info("kpo was stopped (SIGTERM): its pod was deleted and waited for")
            report.seek(0)
            return Outcome.read(code, report.read())

    def stream(self, raw: BinaryIO) -> None:
        """Each line kpo writes to stderr, into the task log."""
        for line in log_lines(raw):
            self.log.info("%s", line)

    def on_kill(self) -> None:
        """Airflow stops the task: kpo is sent SIGTERM, deletes its pod and waits until it is gone,
        then exits 130 — which execute() is waiting for, and turns into the task's failure.

        Airflow calls this from its SIGTERM handler, on the thread it interrupted: so it only
        signals (logging or waiting here could deadlock against that thread)."""
        process = self._process
        if process is not None and process.poll() is None:
            self._stopped = True
            process.send_signal(signal.SIGTERM)

    def binary(self) -> str:
        """The kpo executable: the argument, `$KPO_BIN`, or `kpo` on the PATH."""
        named = self.kpo_binary or os.environ.get("KPO_BIN") or "kpo"
        found = shutil.which(named)
        if found is None:
            raise FileNotFoundError(f"kpo executable not found: {named!r} (set kpo_binary= or $KPO_BIN)")
        return found

    def resolved_task_file(self) -> Path:
        """The task file, a relative one found beside the DAG's file."""
        path = Path(self.task_file)
        if path.is_absolute() or self.dag is None or not getattr(self.dag, "fileloc", None):
            return path
        return Path(self.dag.fileloc).parent / path
