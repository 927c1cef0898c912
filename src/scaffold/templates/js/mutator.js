// @SUMMARY@
//
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`. The WIT
// exports are the `mutator` and `settings` objects at the end; a thrown string is the `err` of a
// `result<_, string>`. Records have camelCase keys; an `option` is a value or null.

/** The labels the config asks for (`{"labels": {"team": "data"}}`); throws what is wrong. */
export function wantedLabels(config) {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw "the config must be a table";
  }
  const unknown = Object.keys(config).find((key) => key !== "labels");
  if (unknown !== undefined) throw `unknown key \`${unknown}\` (known: labels)`;
  const labels = config.labels ?? {};
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw "`labels` must be a table";
  }
  const notString = Object.keys(labels).find((key) => typeof labels[key] !== "string");
  if (notString !== undefined) throw `label \`${notString}\` must be a string`;
  return labels;
}

/** Adds each label the pod lacks; one it has with another value stays, with a warning. */
export function addLabels(pod, labels) {
  pod.metadata ??= {};
  pod.metadata.labels ??= {};
  const have = pod.metadata.labels;
  const warnings = [];
  for (const [key, value] of Object.entries(labels)) {
    if (!(key in have)) {
      have[key] = value;
    } else if (have[key] !== value) {
      warnings.push(`label ${key} stays ${JSON.stringify(have[key])} (the config asks for ${JSON.stringify(value)})`);
    }
  }
  return { pod, warnings };
}

export const mutator = {
  mutate(pod, context) {
    const { pod: mutated, warnings } = addLabels(JSON.parse(pod), wantedLabels(JSON.parse(context.config)));
    return { pod: JSON.stringify(mutated), warnings };
  },
};

// Called when kpo loads the plugin: a throw stops `kpo validate` and `kpo run` before any pod.
export const settings = {
  validateConfig(config) {
    wantedLabels(JSON.parse(config));
  },
};
