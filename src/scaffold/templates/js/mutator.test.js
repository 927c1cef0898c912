import { test } from "node:test";
import assert from "node:assert/strict";
import { addLabels, mutator, wantedLabels } from "./plugin.js";

test("adds what is missing and keeps what is set", () => {
  const pod = { metadata: { labels: { team: "ml" } } };
  const { pod: out, warnings } = addLabels(pod, wantedLabels({ labels: { team: "data", tier: "batch" } }));
  assert.deepEqual(out.metadata.labels, { team: "ml", tier: "batch" });
  assert.deepEqual(warnings, ['label team stays "ml" (the config asks for "data")']);
});

test("the WIT entry point takes and gives JSON text", () => {
  const out = mutator.mutate("{}", { config: '{"labels": {"tier": "batch"}}' });
  assert.deepEqual(JSON.parse(out.pod).metadata.labels, { tier: "batch" });
});

test("a misspelt config is refused", () => {
  assert.throws(() => wantedLabels({ lables: {} }), (e) => e === "unknown key `lables` (known: labels)");
  assert.throws(() => wantedLabels({ labels: { n: 1 } }), (e) => e === "label `n` must be a string");
});
