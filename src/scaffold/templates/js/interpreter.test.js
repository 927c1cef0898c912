import { test } from "node:test";
import assert from "node:assert/strict";
import { interpreter, judge, marker } from "./plugin.js";

test("the marker skips the run", () => {
  assert.deepEqual(judge(true, 0, ["looking", "NOTHING TO DO"], "NOTHING TO DO").verdict, {
    tag: "skip",
    val: 'the task said "NOTHING TO DO"',
  });
});

test("a run without it succeeds with its line count", () => {
  const outcome = { status: "succeeded", exitCode: 0, logTail: ["processed 3 rows"] };
  const judged = interpreter.interpret(outcome, { config: "{}" });
  assert.deepEqual(judged.verdict, { tag: "success" });
  assert.deepEqual(JSON.parse(judged.outputs), { log_lines: 1 });
});

test("a failed run fails", () => {
  assert.deepEqual(judge(false, 3, [], "x").verdict, { tag: "failure", val: "the task failed (exit code 3)" });
});

test("a misspelt config is refused", () => {
  assert.throws(() => marker({ mark: "x" }), (e) => e === "unknown key `mark` (known: marker)");
});
