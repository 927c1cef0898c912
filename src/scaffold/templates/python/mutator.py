"""@SUMMARY@

The logic, in plain Python on parsed JSON: `test_logic.py` tests it natively. `app.py` binds it to
kpo's contract (it imports the bindings componentize-py generates, so it runs only as a component).
"""

import json


def wanted_labels(config):
    """The labels the config asks for (`{"labels": {"team": "data"}}`); ValueError says what is wrong."""
    if not isinstance(config, dict):
        raise ValueError("the config must be a table")
    for key in config:
        if key != "labels":
            raise ValueError(f"unknown key `{key}` (known: labels)")
    labels = config.get("labels", {})
    if not isinstance(labels, dict):
        raise ValueError("`labels` must be a table")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ValueError(f"label `{key}` must be a string")
    return labels


def add_labels(pod, labels):
    """Adds each label the pod lacks; one it has with another value stays, with a warning."""
    have = pod.setdefault("metadata", {}).setdefault("labels", {})
    warnings = []
    for key, value in labels.items():
        if key not in have:
            have[key] = value
        elif have[key] != value:
            warnings.append(f"label {key} stays {json.dumps(have[key])} (the config asks for {json.dumps(value)})")
    return pod, warnings

