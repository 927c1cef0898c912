// @SUMMARY@
//
// Written on kpo's helpers (`kpo.js`, copied into this project by `kpo plugin new`): the pod
// arrives as a `Pod`, the config is read against its defaults — a misspelt key refused when kpo
// loads the plugin, before any pod — and `kpo.mutator` makes the objects the component exports.
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`.

import * as kpo from "./kpo.js";

/** The config's keys, each with its value when missing: `{"labels": {"team": "data"}}`. */
export const config = { labels: {} };

/** What the config's types alone do not say; a throw refuses the config. */
export function check(config) {
  const notString = Object.keys(config.labels).find((key) => typeof config.labels[key] !== "string");
  if (notString !== undefined) throw `label \`${notString}\` must be a string`;
}

/** Adds each label the pod lacks; one it has with another value stays, with a warning. */
export function addLabels(pod, { config }) {
  const warnings = [];
  for (const [key, value] of Object.entries(config.labels)) {
    const old = pod.labels[key];
    if (old === undefined) {
      pod.setLabel(key, value);
    } else if (old !== value) {
      warnings.push(`label ${key} stays ${JSON.stringify(old)} (the config asks for ${JSON.stringify(value)})`);
    }
  }
  return warnings;
}

export const { mutator, settings } = kpo.mutator({ config, check, mutate: addLabels });
