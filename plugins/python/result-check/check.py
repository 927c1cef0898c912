"""The logic of the result-check interpreter, plain Python so it can be unit-tested anywhere."""

import json


def find_result(result, log_tail):
    """The task's result: the result document if kpo has one, else the last log line that is a
    JSON object (a common way for scripts to report what they did)."""
    if result is not None:
        return json.loads(result)
    for line in reversed(log_tail):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def check(result, config):
    """Problems of `result` against `config["checks"]`: {field: {min, max, equals}}."""
    problems = []
    for field, rule in config.get("checks", {}).items():
        if field not in result:
            problems.append(f"{field} is missing")
            continue
        value = result[field]
        if "equals" in rule and value != rule["equals"]:
            problems.append(f"{field} is {value!r}, expected {rule['equals']!r}")
        if "min" in rule and value < rule["min"]:
            problems.append(f"{field} is {value}, below the minimum {rule['min']}")
        if "max" in rule and value > rule["max"]:
            problems.append(f"{field} is {value}, above the maximum {rule['max']}")
    return problems
