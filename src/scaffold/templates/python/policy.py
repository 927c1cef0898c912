"""@SUMMARY@

The logic, in plain Python on parsed JSON: `test_logic.py` tests it natively. `app.py` binds it to
kpo's contract (it imports the bindings componentize-py generates, so it runs only as a component).
"""


def allowed_prefixes(config):
    """The image prefixes the config allows (`{"allowed": ["registry.example.com/"]}`); none: any."""
    if not isinstance(config, dict):
        raise ValueError("the config must be a table")
    for key in config:
        if key != "allowed":
            raise ValueError(f"unknown key `{key}` (known: allowed)")
    allowed = config.get("allowed", [])
    if not isinstance(allowed, list) or not all(isinstance(p, str) for p in allowed):
        raise ValueError("`allowed` must be a list of strings")
    return allowed


def pinned(image):
    """Whether an image names a fixed version: a tag other than `latest`, or a digest."""
    if "@" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.split(":", 1)[1] != "latest"


def check(pod, allowed):
    """(refusal, warnings): the reason to refuse the first unpinned or not allowed image, or None
    and a warning for each container without a memory limit."""
    warnings = []
    for field in ("containers", "initContainers"):
        for container in pod.get("spec", {}).get(field) or []:
            name = container.get("name", "?")
            image = container.get("image", "")
            if not pinned(image):
                return f"container {name}: image {image} has no pinned tag (latest or none)", []
            if allowed and not any(image.startswith(prefix) for prefix in allowed):
                listed = ", ".join(allowed)
                return f"container {name}: image {image} starts with none of the allowed prefixes ({listed})", []
            if "memory" not in (container.get("resources") or {}).get("limits", {}):
                warnings.append(f"container {name} has no memory limit")
    return None, warnings
