// kpo's helpers for plugins in JavaScript, written into this project by `kpo plugin new`: the
// same shape as kpo's Rust SDK (crate kpo-plugin). The pod as an object with what policies
// check (every container, init containers first; images read as a runtime reads them; labels
// and annotations), a config read against its defaults with a misspelt key refused by name, the
// WIT's variants built by name, enums in kpo's words, and one function per role that makes the
// objects a component exports. Plain JavaScript: `node --test` runs it natively.

/** The registry an image without one is pulled from. */
export const DEFAULT_REGISTRY = "docker.io";

/** Where a container runs in the pod: `spec.initContainers` or `spec.containers`. */
export const Kind = Object.freeze({ INIT: "init", APP: "app" });

/**
 * A container image reference, normalised: `busybox:1.36` reads as registry `docker.io`,
 * repository `library/busybox`, tag `1.36`.
 */
export class ImageRef {
  constructor(registry, repository, tag = null, digest = null) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    /** `sha256:…`, when the reference names a digest. */
    this.digest = digest;
  }

  /** Reads an image reference; throws for one no runtime would pull. */
  static parse(image) {
    const bad = (why) => {
      throw `image ${JSON.stringify(image)} ${why}`;
    };
    let name = image;
    let digest = null;
    const at = image.indexOf("@");
    if (at >= 0) {
      [name, digest] = [image.slice(0, at), image.slice(at + 1)];
      if (digest === "") bad("has an empty digest");
    }
    let path = name;
    let tag = null;
    const colon = name.lastIndexOf(":");
    if (colon >= 0 && !name.slice(colon + 1).includes("/")) {
      [path, tag] = [name.slice(0, colon), name.slice(colon + 1)];
      if (tag === "") bad("has an empty tag");
    }
    let registry = DEFAULT_REGISTRY;
    let repository = path;
    const slash = path.indexOf("/");
    if (slash >= 0) {
      const first = path.slice(0, slash);
      if (first.includes(".") || first.includes(":") || first === "localhost") {
        [registry, repository] = [first, path.slice(slash + 1)];
      }
    }
    // Docker Hub's other names, and its official images' implicit `library/`.
    if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DEFAULT_REGISTRY;
    if (registry === DEFAULT_REGISTRY && !repository.includes("/")) repository = `library/${repository}`;
    if (path === "" || repository.split("/").some((part) => part === "")) bad("names no repository");
    return new ImageRef(registry, repository, tag, digest);
  }

  /** Whether the reference names one fixed image: a digest, or a tag other than `latest`. */
  isPinned() {
    return this.digest !== null || (this.tag !== null && this.tag !== "latest");
  }

  /** The full reference: `docker.io/library/busybox:1.36`. */
  toString() {
    return `${this.registry}/${this.repository}${this.tag === null ? "" : `:${this.tag}`}${this.digest === null ? "" : `@${this.digest}`}`;
  }
}

/** A pod as kpo passes it: the Kubernetes object, and what policies ask of it. */
export class Pod {
  constructor(object) {
    /** The pod as Kubernetes JSON: read it, change it. */
    this.object = object;
  }

  /** Reads a pod as kpo passes it (JSON). */
  static parse(json) {
    let object;
    try {
      object = JSON.parse(json);
    } catch (e) {
      throw `the pod is not JSON: ${e.message}`;
    }
    if (typeof object !== "object" || object === null || Array.isArray(object)) throw "the JSON is not a Pod";
    return new Pod(object);
  }

  /** Every container, init containers first, in the pod's order: `{ kind, container }`. */
  containers() {
    const spec = this.object.spec ?? {};
    return [
      ...(spec.initContainers ?? []).map((container) => ({ kind: Kind.INIT, container })),
      ...(spec.containers ?? []).map((container) => ({ kind: Kind.APP, container })),
    ];
  }

  /**
   * Every container with its image read as a runtime reads it: `{ kind, container, image }`,
   * `image` an `ImageRef`, or `{ kind, container, error }` for one no runtime would pull.
   */
  images() {
    return this.containers().map(({ kind, container }) => {
      try {
        return { kind, container, image: ImageRef.parse(container.image ?? "") };
      } catch (error) {
        return { kind, container, error: String(error) };
      }
    });
  }

  get labels() {
    return this.object.metadata?.labels ?? {};
  }

  get annotations() {
    return this.object.metadata?.annotations ?? {};
  }

  setLabel(key, value) {
    this.#metadata().labels = { ...this.labels, [key]: value };
  }

  setAnnotation(key, value) {
    this.#metadata().annotations = { ...this.annotations, [key]: value };
  }

  #metadata() {
    this.object.metadata ??= {};
    return this.object.metadata;
  }

  toJSON() {
    return this.object;
  }
}

/** What a value is, in the config's words. */
function kindOf(value) {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "a table";
  return `a ${typeof value}`;
}

/**
 * The plugin's config (JSON text) read against `defaults`: every key it may have, with the value
 * it takes when missing. A key `defaults` lacks is refused by name (`unknown config key
 * \`lables\``), as is a value of another kind than its default (a string for a list); a table
 * default holding keys is read the same way, an empty one takes any keys.
 */
export function parseConfig(text, defaults) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw `the config is not JSON: ${e.message}`;
  }
  return readTable(config, defaults, "");
}

function readTable(value, defaults, path) {
  if (kindOf(value) !== "a table") throw `${path ? `config key \`${path}\`` : "the config"}: expected a table, found ${kindOf(value)}`;
  const open = Object.keys(defaults).length === 0;
  const out = JSON.parse(JSON.stringify(defaults)); // QuickJS has no structuredClone
  for (const [key, given] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (!open && !Object.hasOwn(defaults, key)) throw `unknown config key \`${at}\``;
    if (open) {
      out[key] = given;
      continue;
    }
    const fallback = defaults[key];
    if (kindOf(fallback) === "a table" && Object.keys(fallback).length > 0) {
      out[key] = readTable(given, fallback, at);
    } else if (fallback !== null && kindOf(given) !== kindOf(fallback)) {
      throw `config key \`${at}\`: expected ${kindOf(fallback)}, found ${kindOf(given)}`;
    } else {
      out[key] = given;
    }
  }
  return out;
}

/** A policy's answers: the WIT variant `admission`. */
export const Admission = Object.freeze({
  accept: () => ({ tag: "accept" }),
  warn: (warnings) => ({ tag: "warn", val: warnings }),
  refuse: (reason) => ({ tag: "refuse", val: reason }),
  /** Refuses with every reason given (joined by `; `), or accepts when there is none. */
  refuseAny: (reasons) => (reasons.length === 0 ? { tag: "accept" } : { tag: "refuse", val: reasons.join("; ") }),
  /** Warns of every warning given, or accepts when there is none. */
  warnAny: (warnings) => (warnings.length === 0 ? { tag: "accept" } : { tag: "warn", val: warnings }),
});

/** An interpreter's verdicts: the WIT variant `verdict`. */
export const Verdict = Object.freeze({
  success: () => ({ tag: "success" }),
  failure: (reason) => ({ tag: "failure", val: reason }),
  skip: (reason) => ({ tag: "skip", val: reason }),
  retry: (reason) => ({ tag: "retry", val: reason }),
});

/** An enum of the contract in kpo's words (`never-started` is `never_started`, as kpo prints it). */
export function kpoWord(value) {
  return String(value).replaceAll("-", "_");
}

/** A verdict as kpo prints it: `success`, `skip: <reason>`. */
export function describe(verdict) {
  return verdict.val === undefined ? verdict.tag : `${verdict.tag}: ${verdict.val}`;
}

/**
 * The context of a call, a role's second argument: its config read (`context.config`) and the
 * earlier attempts' outcomes as `interpret` sees its own (`context.earlier`).
 */
function withConfig(context, defaults, check) {
  const config = parseConfig(context.config, defaults);
  check(config);
  return { ...context, config, earlier: (context.earlier ?? []).map(readOutcome) };
}

/** The config check kpo calls when it loads the plugin (WIT `settings`). */
function settings(defaults, check) {
  return {
    validateConfig(text) {
      check(parseConfig(text, defaults));
    },
  };
}

/**
 * A mutator: `mutate(pod, context)` changes the `Pod` and returns its warnings (a list of
 * strings) or throws a refusal. Returns `{ mutator, settings }`, the objects to export.
 */
export function mutator({ config = {}, check = () => {}, mutate }) {
  return {
    mutator: {
      mutate(json, context) {
        const pod = Pod.parse(json);
        const warnings = mutate(pod, withConfig(context, config, check)) ?? [];
        return { pod: JSON.stringify(pod), warnings };
      },
    },
    settings: settings(config, check),
  };
}

/**
 * A policy: `validate(pod, context)` answers with an `Admission`; a throw refuses. Returns
 * `{ validator, settings }`, the objects to export.
 */
export function policy({ config = {}, check = () => {}, validate }) {
  return {
    validator: {
      validate(json, context) {
        try {
          return validate(Pod.parse(json), withConfig(context, config, check));
        } catch (e) {
          return Admission.refuse(String(e));
        }
      },
    },
    settings: settings(config, check),
  };
}

/**
 * An interpreter: `interpret(outcome, context)` answers with a `Verdict`, or `{ verdict,
 * outputs }` (outputs any JSON value); a throw is a failure. `outcome.status` and each
 * container's `role` are in kpo's words; `outcome.pod` is a `Pod` (or null). Returns
 * `{ interpreter, settings }`, the objects to export.
 */
export function interpreter({ config = {}, check = () => {}, interpret }) {
  return {
    interpreter: {
      interpret(outcome, context) {
        let judged;
        try {
          judged = interpret(readOutcome(outcome), withConfig(context, config, check));
        } catch (e) {
          return { verdict: Verdict.failure(String(e)), outputs: null };
        }
        const { verdict, outputs } = judged.tag === undefined ? judged : { verdict: judged };
        return { verdict, outputs: outputs === undefined || outputs === null ? null : JSON.stringify(outputs) };
      },
    },
    settings: settings(config, check),
  };
}

/** The outcome as the contract hands it, its enums in kpo's words and its pod read. */
function readOutcome(outcome) {
  return {
    ...outcome,
    status: kpoWord(outcome.status),
    containers: (outcome.containers ?? []).map((c) => ({ ...c, role: kpoWord(c.role) })),
    result: outcome.result === null || outcome.result === undefined ? null : JSON.parse(outcome.result),
    pod: podOrNull(outcome.pod),
  };
}

/** The run's pod, where there was one (a run refused before its pod has none). */
function podOrNull(json) {
  try {
    return json ? Pod.parse(json) : null;
  } catch {
    return null;
  }
}
