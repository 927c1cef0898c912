"""What a `kpo run --output json` said, in Airflow's terms: XCom values, a skip, or an error
that carries kpo's message and exit code."""

from __future__ import annotations

import json
from dataclasses import dataclass

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

SKIPPED = 99
# kpo's codes that no retry can mend: a usage error, a pod the API server rejects, a pod a
# policy refuses, an invalid task file. The task fails without using its retries.
FINAL = {2: "usage error", 65: "rejected by the API server", 77: "refused by a plugin", 78: "invalid task file"}


class KpoRunFailed(AirflowException):
    """A kpo run that did not succeed; retried under the task's `retries`."""

    def __init__(self, message: str, exit_code: int, report: dict | None):
        super().__init__(message)
        self.exit_code = exit_code
        self.report = report


class KpoRunRefused(AirflowFailException):
    """A kpo run that no retry can mend (see `FINAL`): the task fails at once."""

    def __init__(self, message: str, exit_code: int, report: dict | None):
        super().__init__(message)
        self.exit_code = exit_code
        self.report = report


@dataclass
class Outcome:
    """kpo's exit code and its report: one run's, or a batch's (each member's by task name)."""

    exit_code: int
    report: dict | None
    members: dict[str, dict]

    @classmethod
    def read(cls, exit_code: int, stdout: bytes) -> Outcome:
        """Reads kpo's stdout: one JSON document for a run, JSON Lines for a batch (its members'
        reports, then the batch's summary)."""
        text = stdout.decode("utf-8", errors="replace").strip()
        if not text:
            return cls(exit_code, None, {})
        try:
            return cls(exit_code, json.loads(text), {})
        except json.JSONDecodeError:
            pass
        members, summary = {}, None
        for line in text.splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                return cls(exit_code, None, {})
            if doc.get("kind") == "batch":
                summary = doc
            else:
                members[doc.get("task", "")] = doc
        return cls(exit_code, summary, members)

    @property
    def message(self) -> str:
        """kpo's own words on how the run ended."""
        if self.report is None:
            return "kpo printed no report (see the task log)"
        if self.members:
            counts = self.report.get("counts", {})
            return ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "an empty batch"
        return self.report.get("message") or self.report.get("outcome", "")

    def xcom(self) -> dict:
        """The values pushed to XCom: `result` (also the return value), `outputs` and `kpo` (the
        run's id, pod, UID, attempt, outcome and exit code) — for a batch, each by task name."""
        if self.members:
            return {
                "result": {name: r.get("result") for name, r in self.members.items()},
                "outputs": {name: r.get("outputs") or {} for name, r in self.members.items()},
                "kpo": {name: summary(r) for name, r in self.members.items()},
            }
        report = self.report or {}
        return {"result": report.get("result"), "outputs": report.get("outputs") or {}, "kpo": summary(report)}

    def raise_unless_succeeded(self) -> None:
        """Raises what Airflow should see of a run that did not succeed: a skip, a failure no
        retry can mend, or a failure to retry."""
        if self.exit_code == 0:
            return
        if self.exit_code == SKIPPED:
            raise AirflowSkipException(f"kpo: skipped: {self.message}")
        said = f"kpo exited {self.exit_code}: {self.message}"
        if self.exit_code in FINAL:
            raise KpoRunRefused(f"{said} ({FINAL[self.exit_code]}: not retried)", self.exit_code, self.report)
        raise KpoRunFailed(said, self.exit_code, self.report)


def summary(report: dict) -> dict:
    """What identifies a run's end: enough to find its pod and tell one attempt from another."""
    keys = ("run_id", "namespace", "pod", "uid", "attempt", "outcome", "exit_code", "message")
    return {k: report.get(k) for k in keys}
