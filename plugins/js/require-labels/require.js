// kpo validating policy in JavaScript (contract kpo:plugin@0.2.0): refuses a pod that lacks
// the labels an organisation requires (a cost centre, an owner), and warns of those it merely
// recommends. It sees the final pod, after every mutator, and cannot change it.
//
//   [[policy]]
//   path = "plugins/target/js/require_labels.wasm"
//   config = { required = ["cost-center"], recommended = ["owner"] }
//
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build` in
// plugins/js. Its config is checked when kpo loads it (`settings.validateConfig`).

/** The problems with `config`, empty when it is usable. */
export function configProblems(config) {
  const problems = [];
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    return ["the config must be a table"];
  }
  for (const key of Object.keys(config)) {
    if (key !== "required" && key !== "recommended") {
      problems.push(`unknown key \`${key}\` (known: required, recommended)`);
    }
  }
  for (const key of ["required", "recommended"]) {
    const list = config[key] ?? [];
    if (!Array.isArray(list) || !list.every((l) => typeof l === "string" && l !== "")) {
      problems.push(`\`${key}\` must be a list of label names`);
    }
  }
  return problems;
}

/** The answer about `pod` (a parsed Kubernetes Pod): { refuse } or { warnings }. */
export function judge(pod, config) {
  const labels = pod.metadata?.labels ?? {};
  const missing = (config.required ?? []).filter((l) => !(l in labels));
  if (missing.length > 0) {
    return { refuse: `the pod lacks the required label(s) ${missing.join(", ")}` };
  }
  const warnings = (config.recommended ?? [])
    .filter((l) => !(l in labels))
    .map((l) => `the pod has no ${l} label (recommended)`);
  return { warnings };
}

export const validator = {
  validate(pod, context) {
    const answer = judge(JSON.parse(pod), JSON.parse(context.config));
    if (answer.refuse !== undefined) return { tag: "refuse", val: answer.refuse };
    if (answer.warnings.length > 0) return { tag: "warn", val: answer.warnings };
    return { tag: "accept" };
  },
};

export const settings = {
  validateConfig(config) {
    const problems = configProblems(JSON.parse(config));
    // A thrown string is the `err` of `result<_, string>`.
    if (problems.length > 0) throw problems.join("; ");
  },
};
