"""kpo's helpers for plugins in Python, written into this project by `kpo plugin new`: the same
shape as kpo's Rust SDK (crate kpo-plugin).

The pod with what policies check (every container, init containers first; images read as a
runtime reads them; labels and annotations), a config read into a dataclass with a misspelt key
or a value of the wrong type refused by name, answers and enums that print in kpo's words, and
one function per role that turns them into what kpo's contract takes (`app.py` calls it). Plain
Python: `python3 -m unittest` tests it natively; only the role functions need the component.
"""

import dataclasses
import enum
import json
import typing

DEFAULT_REGISTRY = "docker.io"
"""The registry an image without one is pulled from."""


class Kind(enum.Enum):
    """Where a container runs in the pod: `spec.initContainers` or `spec.containers`."""

    INIT = "init"
    APP = "app"

    def __str__(self):
        return self.value


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """A container image reference, normalised: `busybox:1.36` reads as registry `docker.io`,
    repository `library/busybox`, tag `1.36`."""

    registry: str
    repository: str
    tag: typing.Optional[str] = None
    digest: typing.Optional[str] = None
    """`sha256:…`, when the reference names a digest."""

    @staticmethod
    def parse(image):
        """Reads an image reference; ValueError for one no runtime would pull."""

        def bad(why):
            raise ValueError(f"image {json.dumps(image)} {why}")

        name, digest = image, None
        if "@" in image:
            name, digest = image.split("@", 1)
            if not digest:
                bad("has an empty digest")
        path, tag = name, None
        head, colon, last = name.rpartition(":")
        if colon and "/" not in last:
            path, tag = head, last
            if not tag:
                bad("has an empty tag")
        registry, repository = DEFAULT_REGISTRY, path
        first, slash, rest = path.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        # Docker Hub's other names, and its official images' implicit `library/`.
        if registry in ("index.docker.io", "registry-1.docker.io"):
            registry = DEFAULT_REGISTRY
        if registry == DEFAULT_REGISTRY and "/" not in repository:
            repository = f"library/{repository}"
        if not path or "" in repository.split("/"):
            bad("names no repository")
        return ImageRef(registry, repository, tag, digest)

    def is_pinned(self):
        """Whether the reference names one fixed image: a digest, or a tag other than `latest`."""
        return self.digest is not None or (self.tag is not None and self.tag != "latest")

    def __str__(self):
        """The full reference: `docker.io/library/busybox:1.36`."""
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"


@dataclasses.dataclass
class Image:
    """A container and its image: `image` read as a runtime reads it, or `error` for one no
    runtime would pull."""

    kind: Kind
    container: dict
    image: typing.Optional[ImageRef]
    error: typing.Optional[str] = None


class Pod:
    """A pod as kpo passes it: `pod.object` is the Kubernetes object, to read and to change."""

    def __init__(self, obj):
        self.object = obj

    @staticmethod
    def parse(text):
        """Reads a pod as kpo passes it (JSON); ValueError for what is not a pod."""
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise ValueError(f"the pod is not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise ValueError("the JSON is not a Pod")
        return Pod(obj)

    def containers(self):
        """Every container, init containers first, in the pod's order: (kind, container)."""
        spec = self.object.get("spec") or {}
        init = [(Kind.INIT, c) for c in spec.get("initContainers") or []]
        return init + [(Kind.APP, c) for c in spec.get("containers") or []]

    def images(self):
        """Every container with its image read as a runtime reads it (`Image`)."""
        found = []
        for kind, container in self.containers():
            try:
                found.append(Image(kind, container, ImageRef.parse(container.get("image") or "")))
            except ValueError as e:
                found.append(Image(kind, container, None, str(e)))
        return found

    @property
    def labels(self):
        return (self.object.get("metadata") or {}).get("labels") or {}

    @property
    def annotations(self):
        return (self.object.get("metadata") or {}).get("annotations") or {}

    def set_label(self, key, value):
        self._metadata().setdefault("labels", {})[key] = value

    def set_annotation(self, key, value):
        self._metadata().setdefault("annotations", {})[key] = value

    def _metadata(self):
        if not isinstance(self.object.get("metadata"), dict):
            self.object["metadata"] = {}
        return self.object["metadata"]

    def to_json(self):
        return json.dumps(self.object)


def _kind_of(value):
    """What a JSON value is, in the config's words."""
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a table", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "null"
    )


def _read(value, hint, path):
    """`value` read as type `hint`, or ValueError naming `path`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def wrong(expected):
        raise ValueError(f"config key `{path}`: expected {expected}, found {_kind_of(value)}")

    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _read(value, next(a for a in args if a is not type(None)), path)
    if dataclasses.is_dataclass(hint):
        return _dataclass(value, hint, path)
    if origin is list:
        if not isinstance(value, list):
            wrong("a list")
        return [_read(item, args[0] if args else typing.Any, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            wrong("a table")
        item = args[1] if args else typing.Any
        return {k: _read(v, item, f"{path}.{k}") for k, v in value.items()}
    if hint is bool and not isinstance(value, bool):
        wrong("a boolean")
    if hint is str and not isinstance(value, str):
        wrong("a string")
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        wrong("a number")
    if hint is int and isinstance(value, float):
        wrong("a whole number")
    return value


def _dataclass(value, cls, path):
    if not isinstance(value, dict):
        raise ValueError(f"{f'config key `{path}`' if path else 'the config'}: expected a table, found {_kind_of(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    read = {}
    for key, given in value.items():
        at = f"{path}.{key}" if path else key
        if key not in fields:
            raise ValueError(f"unknown config key `{at}`")
        read[key] = _read(given, hints[key], at)
    try:
        return cls(**read)
    except TypeError as e:  # a field without a default, missing
        raise ValueError(f"{f'config key `{path}`' if path else 'the config'}: {e}") from None


def parse_config(text, cls):
    """The plugin's config (JSON text) read into dataclass `cls`: a key it lacks is refused by
    name (`unknown config key `lables``), as is a value of another type than its field's
    (`config key `labels.n`: expected a string, found a number`); a missing key takes its
    field's default."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"the config is not JSON: {e}") from None
    return _dataclass(value, cls, "")


class Status(enum.Enum):
    """How a run ended, in kpo's words (`str(Status.NEVER_STARTED)` is `never_started`)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEVER_STARTED = "never_started"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"

    def __str__(self):
        return self.value


class Role(enum.Enum):
    """What a container is to the run, in kpo's words."""

    MAIN = "main"
    SIDECAR = "sidecar"
    INIT = "init"
    NATIVE_SIDECAR = "native_sidecar"

    def __str__(self):
        return self.value


@dataclasses.dataclass
class ContainerOutcome:
    name: str
    role: Role
    exit_code: typing.Optional[int] = None
    reason: typing.Optional[str] = None
    message: typing.Optional[str] = None


@dataclasses.dataclass
class Outcome:
    """How an attempt went, as an interpreter (or a mutator, of earlier attempts) sees it."""

    attempt: int = 1
    status: Status = Status.SUCCEEDED
    exit_code: int = 0
    phase: str = ""
    containers: typing.List[ContainerOutcome] = dataclasses.field(default_factory=list)
    log_tail: typing.List[str] = dataclasses.field(default_factory=list)
    result: typing.Any = None
    """The task's result, read."""
    pod: typing.Optional[Pod] = None

    def main(self):
        """The main container's outcome, if it has one."""
        return next((c for c in self.containers if c.role is Role.MAIN), None)

    @staticmethod
    def from_wit(outcome):
        """The contract's outcome, its enums in kpo's words, its result and pod read."""
        try:
            pod = Pod.parse(outcome.pod) if outcome.pod else None
        except ValueError:
            pod = None
        return Outcome(
            attempt=outcome.attempt,
            status=Status[outcome.status.name],
            exit_code=outcome.exit_code,
            phase=outcome.phase,
            containers=[
                ContainerOutcome(c.name, Role[c.role.name], c.exit_code, c.reason, c.message)
                for c in outcome.containers
            ],
            log_tail=list(outcome.log_tail),
            result=json.loads(outcome.result) if outcome.result is not None else None,
            pod=pod,
        )


@dataclasses.dataclass
class Context:
    """A call's context: its config read into the plugin's type, the earlier attempts."""

    config: typing.Any
    task: str = "test"
    namespace: str = "default"
    run_id: str = "test"
    attempt: int = 1
    earlier: typing.List[Outcome] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Admission:
    """A policy's answer: `Admission.accept()`, `.warn([...])`, `.refuse(reason)`."""

    kind: str
    warnings: typing.Tuple[str, ...] = ()
    reason: typing.Optional[str] = None

    @staticmethod
    def accept():
        return Admission("accept")

    @staticmethod
    def warn(warnings):
        return Admission("warn", tuple(warnings))

    @staticmethod
    def refuse(reason):
        return Admission("refuse", reason=reason)

    @staticmethod
    def refuse_any(reasons):
        """Refuses with every reason given (joined by `; `), or accepts when there is none."""
        return Admission.refuse("; ".join(reasons)) if reasons else Admission.accept()

    @staticmethod
    def warn_any(warnings):
        """Warns of every warning given, or accepts when there is none."""
        return Admission.warn(warnings) if warnings else Admission.accept()


@dataclasses.dataclass(frozen=True)
class Verdict:
    """An interpreter's verdict: `Verdict.success()`, `.failure(r)`, `.skip(r)`, `.retry(r)`;
    `str()` prints it as kpo does (`skip: nothing to do`)."""

    kind: str
    reason: typing.Optional[str] = None
    outputs: typing.Any = None
    """Published in the run report (any JSON value), with a success."""

    @staticmethod
    def success(outputs=None):
        return Verdict("success", outputs=outputs)

    @staticmethod
    def failure(reason):
        return Verdict("failure", reason)

    @staticmethod
    def skip(reason):
        return Verdict("skip", reason)

    @staticmethod
    def retry(reason):
        return Verdict("retry", reason)

    def __str__(self):
        return self.kind if self.reason is None else f"{self.kind}: {self.reason}"


# The roles, bound to kpo's contract: what `app.py` calls. They import the bindings that
# componentize-py generates, so they run only inside the component.


def _context(context, cls, check):
    config = parse_config(context.config, cls)
    check(config)
    earlier = [Outcome.from_wit(o) for o in context.earlier]
    return Context(config, context.task, context.namespace, context.run_id, context.attempt, earlier)


def validate_config(text, cls, check):
    """The `settings` export: an `Err` stops `kpo validate` and `kpo run` before any pod."""
    from componentize_py_types import Err

    try:
        check(parse_config(text, cls))
    except ValueError as e:
        raise Err(str(e)) from None


def mutate(pod, context, cls, check, mutator):
    """The `mutator` export: `mutator(pod, context)` changes the `Pod` and returns its warnings;
    a ValueError refuses the pod."""
    from componentize_py_types import Err
    from wit_world.imports import types

    try:
        read = Pod.parse(pod)
        warnings = mutator(read, _context(context, cls, check)) or []
    except ValueError as e:
        raise Err(str(e)) from None
    return types.Mutated(pod=read.to_json(), warnings=list(warnings))


def validate(pod, context, cls, check, policy):
    """The `validator` export: `policy(pod, context)` answers with an `Admission`; a ValueError
    refuses."""
    from wit_world.imports import types

    try:
        answer = policy(Pod.parse(pod), _context(context, cls, check))
    except ValueError as e:
        return types.Admission_Refuse(str(e))
    if answer.kind == "refuse":
        return types.Admission_Refuse(answer.reason)
    if answer.kind == "warn":
        return types.Admission_Warn(list(answer.warnings))
    return types.Admission_Accept()


def interpret(outcome, context, cls, check, interpreter):
    """The `interpreter` export: `interpreter(outcome, context)` answers with a `Verdict`; a
    ValueError is a failure."""
    from wit_world.imports import types

    try:
        verdict = interpreter(Outcome.from_wit(outcome), _context(context, cls, check))
    except ValueError as e:
        verdict = Verdict.failure(str(e))
    wit = {
        "success": lambda: types.Verdict_Success(),
        "failure": lambda: types.Verdict_Failure(verdict.reason),
        "skip": lambda: types.Verdict_Skip(verdict.reason),
        "retry": lambda: types.Verdict_Retry(verdict.reason),
    }[verdict.kind]()
    outputs = json.dumps(verdict.outputs) if verdict.outputs is not None else None
    return types.Judgement(wit, outputs)
