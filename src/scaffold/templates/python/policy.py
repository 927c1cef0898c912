"""@SUMMARY@

Written on kpo's helpers (`kpo.py`, copied into this project by `kpo plugin new`): the pod arrives
as a `Pod` whose images are read as a runtime reads them, the config is read into `Config` — a
misspelt key or a value of the wrong type refused when kpo loads the plugin, before any pod.
Plain Python: `test_logic.py` tests it natively; `app.py` binds it to kpo's contract.
"""

import dataclasses
import typing

from kpo import Admission


@dataclasses.dataclass
class Config:
    """`{"allowed": ["registry.example.com/"]}`: the image prefixes allowed; none: any image."""

    allowed: typing.List[str] = dataclasses.field(default_factory=list)


def check(config):
    """What the config's types alone do not say: a ValueError refuses it."""


def validate(pod, context):
    """Refuses the first container whose image is unpinned (no tag, or `latest`) or starts with
    none of the allowed prefixes; warns of each container without a memory limit."""
    allowed = context.config.allowed
    warnings = []
    for found in pod.images():
        name, text = found.container.get("name"), found.container.get("image") or ""
        if found.image is None or not found.image.is_pinned():
            return Admission.refuse(f"container {name}: image {text} has no pinned tag (latest or none)")
        if allowed and not any(text.startswith(prefix) for prefix in allowed):
            listed = ", ".join(allowed)
            return Admission.refuse(f"container {name}: image {text} starts with none of the allowed prefixes ({listed})")
        if "memory" not in ((found.container.get("resources") or {}).get("limits") or {}):
            warnings.append(f"container {name} has no memory limit")
    return Admission.warn_any(warnings)
