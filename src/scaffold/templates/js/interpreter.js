// @SUMMARY@
//
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`. The WIT
// exports are the `interpreter` and `settings` objects at the end; records have camelCase keys
// (`outcome.logTail`), an enum is its case's name (`"succeeded"`), a variant is `{ tag, val }`
// and an `option` is a value or null.

/** The line that means "nothing to do" (`{"marker": "..."}`), `NOTHING TO DO` by default. */
export function marker(config) {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw "the config must be a table";
  }
  const unknown = Object.keys(config).find((key) => key !== "marker");
  if (unknown !== undefined) throw `unknown key \`${unknown}\` (known: marker)`;
  const value = config.marker ?? "NOTHING TO DO";
  if (typeof value !== "string" || value === "") throw "`marker` must be a non-empty string";
  return value;
}

/** A failed run fails; a run whose log has the marker is skipped; any other succeeds. */
export function judge(succeeded, exitCode, logTail, mark) {
  if (!succeeded) return { verdict: { tag: "failure", val: `the task failed (exit code ${exitCode})` }, outputs: null };
  if (logTail.some((line) => line.includes(mark))) {
    return { verdict: { tag: "skip", val: `the task said ${JSON.stringify(mark)}` }, outputs: null };
  }
  return { verdict: { tag: "success" }, outputs: JSON.stringify({ log_lines: logTail.length }) };
}

export const interpreter = {
  interpret(outcome, context) {
    let mark;
    try {
      mark = marker(JSON.parse(context.config));
    } catch (e) {
      return { verdict: { tag: "failure", val: String(e) }, outputs: null };
    }
    return judge(outcome.status === "succeeded", outcome.exitCode, outcome.logTail, mark);
  },
};

// Called when kpo loads the plugin: a throw stops `kpo validate` and `kpo run` before any pod.
export const settings = {
  validateConfig(config) {
    marker(JSON.parse(config));
  },
};
