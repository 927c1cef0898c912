import { test } from "node:test";
import assert from "node:assert/strict";
import { configProblems, judge, validator } from "./require.js";

const pod = (labels) => ({ metadata: { name: "p", labels }, spec: { containers: [] } });

test("refuses a pod without a required label, naming it", () => {
  assert.deepEqual(judge(pod({ team: "a" }), { required: ["cost-center", "team"] }), {
    refuse: "the pod lacks the required label(s) cost-center",
  });
});

test("warns of recommended labels, accepts a complete pod", () => {
  const config = { required: ["team"], recommended: ["owner"] };
  assert.deepEqual(judge(pod({ team: "a" }), config).warnings, ["the pod has no owner label (recommended)"]);
  assert.deepEqual(judge(pod({ team: "a", owner: "b" }), config).warnings, []);
});

test("the WIT entry point answers with the admission variant", () => {
  const ctx = { config: '{"required": ["team"]}' };
  assert.deepEqual(validator.validate(JSON.stringify(pod({})), ctx), {
    tag: "refuse",
    val: "the pod lacks the required label(s) team",
  });
  assert.deepEqual(validator.validate(JSON.stringify(pod({ team: "x" })), ctx), { tag: "accept" });
});

test("a bad config is named key by key", () => {
  assert.deepEqual(configProblems({ requird: ["x"], recommended: "owner" }), [
    "unknown key `requird` (known: required, recommended)",
    "`recommended` must be a list of label names",
  ]);
  assert.deepEqual(configProblems({ required: ["team"] }), []);
});
