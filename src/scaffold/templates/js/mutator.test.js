import { test } from "node:test";
import assert from "node:assert/strict";
import { Pod, parseConfig } from "./kpo.js";
import { addLabels, check, config, mutator } from "./plugin.js";

const context = (text) => ({ config: parseConfig(text, config) });

test("adds what is missing and keeps what is set", () => {
  const pod = new Pod({ metadata: { labels: { team: "ml" } } });
  const warnings = addLabels(pod, context('{"labels": {"team": "data", "tier": "batch"}}'));
  assert.deepEqual(pod.labels, { team: "ml", tier: "batch" });
  assert.deepEqual(warnings, ['label team stays "ml" (the config asks for "data")']);
});

test("the WIT entry point takes and gives JSON text", () => {
  const out = mutator.mutate("{}", { config: '{"labels": {"tier": "batch"}}' });
  assert.deepEqual(JSON.parse(out.pod).metadata.labels, { tier: "batch" });
});

test("a misspelt config is refused", () => {
  assert.throws(() => parseConfig('{"lables": {}}', config), (e) => e === "unknown config key `lables`");
  assert.throws(() => check(parseConfig('{"labels": {"n": 1}}', config)), (e) => e === "label `n` must be a string");
});
