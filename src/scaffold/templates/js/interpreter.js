// @SUMMARY@
//
// Written on kpo's helpers (`kpo.js`, copied into this project by `kpo plugin new`): the run's
// outcome arrives with its enums in kpo's words (`outcome.status` is `"succeeded"`,
// `"never_started"`…), the config is read against its defaults — a misspelt key refused when kpo
// loads the plugin, before any pod — and `kpo.interpreter` makes the objects the component
// exports. Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`.

import * as kpo from "./kpo.js";
import { Verdict } from "./kpo.js";

/** The config's keys, each with its value when missing: `{"marker": "NOTHING TO DO"}`. */
export const config = { marker: "NOTHING TO DO" };

/** What the config's types alone do not say; a throw refuses the config. */
export function check(config) {
  if (config.marker === "") throw "`marker` must be a non-empty string";
}

/**
 * A failed run fails; a run whose log has the marker is skipped; any other succeeds, with its
 * number of log lines as an output.
 */
export function interpret(outcome, { config }) {
  if (outcome.status !== "succeeded") return Verdict.failure(`the task failed (exit code ${outcome.exitCode})`);
  if (outcome.logTail.some((line) => line.includes(config.marker))) {
    return Verdict.skip(`the task said ${JSON.stringify(config.marker)}`);
  }
  return { verdict: Verdict.success(), outputs: { log_lines: outcome.logTail.length } };
}

export const { interpreter, settings } = kpo.interpreter({ config, check, interpret });
