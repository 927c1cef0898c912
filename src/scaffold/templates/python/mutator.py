"""@SUMMARY@

Written on kpo's helpers (`kpo.py`, copied into this project by `kpo plugin new`): the pod arrives
as a `Pod`, the config is read into `Config` — a misspelt key or a value of the wrong type refused
when kpo loads the plugin, before any pod. Plain Python: `test_logic.py` tests it natively;
`app.py` binds it to kpo's contract.
"""

import dataclasses
import typing


@dataclasses.dataclass
class Config:
    """`{"labels": {"team": "data"}}`: the labels every pod should have."""

    labels: typing.Dict[str, str] = dataclasses.field(default_factory=dict)


def check(config):
    """What the config's types alone do not say: a ValueError refuses it."""


def add_labels(pod, context):
    """Adds each label the pod lacks; one it has with another value stays, with a warning."""
    warnings = []
    for key, value in context.config.labels.items():
        old = pod.labels.get(key)
        if old is None:
            pod.set_label(key, value)
        elif old != value:
            warnings.append(f'label {key} stays "{old}" (the config asks for "{value}")')
    return warnings
