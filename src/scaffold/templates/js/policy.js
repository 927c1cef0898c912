// @SUMMARY@
//
// Written on kpo's helpers (`kpo.js`, copied into this project by `kpo plugin new`): the pod
// arrives as a `Pod` whose images are read as a runtime reads them, the config is read against
// its defaults — a misspelt key refused when kpo loads the plugin, before any pod — and
// `kpo.policy` makes the objects the component exports. Built into a WebAssembly component with
// QuickJS (componentize-qjs): `npm run build`.

import * as kpo from "./kpo.js";
import { Admission } from "./kpo.js";

/** The config's keys, each with its value when missing: `{"allowed": ["registry.example.com/"]}`. */
export const config = { allowed: [] };

/** What the config's types alone do not say; a throw refuses the config. */
export function check(config) {
  if (!config.allowed.every((prefix) => typeof prefix === "string")) throw "`allowed` must be a list of strings";
}

/**
 * Refuses the first container whose image is unpinned (no tag, or `latest`) or starts with none
 * of the allowed prefixes (none: any image); warns of each container without a memory limit.
 */
export function validate(pod, { config }) {
  const warnings = [];
  for (const { container, image } of pod.images()) {
    const [name, text] = [container.name, container.image ?? ""];
    if (!image?.isPinned()) {
      return Admission.refuse(`container ${name}: image ${text} has no pinned tag (latest or none)`);
    }
    if (config.allowed.length > 0 && !config.allowed.some((prefix) => text.startsWith(prefix))) {
      const allowed = config.allowed.join(", ");
      return Admission.refuse(`container ${name}: image ${text} starts with none of the allowed prefixes (${allowed})`);
    }
    if (container.resources?.limits?.memory === undefined) warnings.push(`container ${name} has no memory limit`);
  }
  return Admission.warnAny(warnings);
}

export const { validator, settings } = kpo.policy({ config, check, validate });
