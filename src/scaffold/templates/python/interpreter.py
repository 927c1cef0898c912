"""@SUMMARY@

Written on kpo's helpers (`kpo.py`, copied into this project by `kpo plugin new`): the run's outcome
arrives with its enums in kpo's words (`Status.NEVER_STARTED` prints `never_started`), the config
is read into `Config` — a misspelt key or a value of the wrong type refused when kpo loads the
plugin, before any pod. Plain Python: `test_logic.py` tests it natively; `app.py` binds it to
kpo's contract.
"""

import dataclasses

from kpo import Status, Verdict


@dataclasses.dataclass
class Config:
    """`{"marker": "NOTHING TO DO"}`: the line that means "nothing to do"."""

    marker: str = "NOTHING TO DO"


def check(config):
    """What the config's types alone do not say: a ValueError refuses it."""
    if not config.marker:
        raise ValueError("`marker` must be a non-empty string")


def interpret(outcome, context):
    """A failed run fails; a run whose log has the marker is skipped; any other succeeds, with its
    number of log lines as an output."""
    marker = context.config.marker
    if outcome.status is not Status.SUCCEEDED:
        return Verdict.failure(f"the task failed (exit code {outcome.exit_code})")
    if any(marker in line for line in outcome.log_tail):
        return Verdict.skip(f'the task said "{marker}"')
    return Verdict.success({"log_lines": len(outcome.log_tail)})
