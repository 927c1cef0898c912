// @SUMMARY@
//
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`. The WIT
// exports are the `validator` and `settings` objects at the end; a thrown string is the `err` of
// a `result<_, string>`; a variant is `{ tag, val }`.

/** The image prefixes the config allows (`{"allowed": ["registry.example.com/"]}`); none: any. */
export function allowedPrefixes(config) {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw "the config must be a table";
  }
  const unknown = Object.keys(config).find((key) => key !== "allowed");
  if (unknown !== undefined) throw `unknown key \`${unknown}\` (known: allowed)`;
  const allowed = config.allowed ?? [];
  if (!Array.isArray(allowed) || !allowed.every((p) => typeof p === "string")) {
    throw "`allowed` must be a list of strings";
  }
  return allowed;
}

/** Whether an image names a fixed version: a tag other than `latest`, or a digest. */
export function pinned(image) {
  if (image.includes("@")) return true;
  const last = image.split("/").pop();
  const colon = last.indexOf(":");
  return colon >= 0 && last.slice(colon + 1) !== "latest";
}

/** `{ refuse }` for the first unpinned or not allowed image, else `{ warnings }`. */
export function check(pod, allowed) {
  const warnings = [];
  for (const list of ["containers", "initContainers"]) {
    for (const container of pod.spec?.[list] ?? []) {
      const name = container.name ?? "?";
      const image = container.image ?? "";
      if (!pinned(image)) {
        return { refuse: `container ${name}: image ${image} has no pinned tag (latest or none)` };
      }
      if (allowed.length > 0 && !allowed.some((prefix) => image.startsWith(prefix))) {
        return {
          refuse: `container ${name}: image ${image} starts with none of the allowed prefixes (${allowed.join(", ")})`,
        };
      }
      if (container.resources?.limits?.memory === undefined) {
        warnings.push(`container ${name} has no memory limit`);
      }
    }
  }
  return { warnings };
}

export const validator = {
  validate(pod, context) {
    let answer;
    try {
      answer = check(JSON.parse(pod), allowedPrefixes(JSON.parse(context.config)));
    } catch (e) {
      return { tag: "refuse", val: String(e) };
    }
    if (answer.refuse !== undefined) return { tag: "refuse", val: answer.refuse };
    if (answer.warnings.length > 0) return { tag: "warn", val: answer.warnings };
    return { tag: "accept" };
  },
};

// Called when kpo loads the plugin: a throw stops `kpo validate` and `kpo run` before any pod.
export const settings = {
  validateConfig(config) {
    allowedPrefixes(JSON.parse(config));
  },
};
