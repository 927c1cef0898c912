"""@SUMMARY@

The logic, in plain Python: `test_logic.py` tests it natively. `app.py` binds it to kpo's contract
(it imports the bindings componentize-py generates, so it runs only as a component).
"""

import json


def marker(config):
    """The line that means "nothing to do" (`{"marker": "..."}`), `NOTHING TO DO` by default."""
    if not isinstance(config, dict):
        raise ValueError("the config must be a table")
    for key in config:
        if key != "marker":
            raise ValueError(f"unknown key `{key}` (known: marker)")
    value = config.get("marker", "NOTHING TO DO")
    if not isinstance(value, str) or not value:
        raise ValueError("`marker` must be a non-empty string")
    return value


def judge(succeeded, exit_code, log_tail, mark):
    """("failure" | "skip" | "success", reason or outputs): a failed run fails, a run whose log
    has the marker is skipped, any other succeeds with how many log lines it saw."""
    if not succeeded:
        return "failure", f"the task failed (exit code {exit_code})"
    if any(mark in line for line in log_tail):
        return "skip", f"the task said {json.dumps(mark)}"
    return "success", {"log_lines": len(log_tail)}
