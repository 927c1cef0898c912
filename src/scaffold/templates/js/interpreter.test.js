import { test } from "node:test";
import assert from "node:assert/strict";
import { Verdict, parseConfig } from "./kpo.js";
import { check, config, interpret, interpreter } from "./plugin.js";

const context = { config: parseConfig("{}", config) };
const outcome = (status, exitCode, logTail) => ({ status, exitCode, logTail });

test("the marker skips the run", () => {
  const verdict = interpret(outcome("succeeded", 0, ["looking", "NOTHING TO DO"]), context);
  assert.deepEqual(verdict, Verdict.skip('the task said "NOTHING TO DO"'));
});

test("a run without it succeeds with its line count", () => {
  const judged = interpreter.interpret(outcome("succeeded", 0, ["processed 3 rows"]), { config: "{}" });
  assert.deepEqual(judged.verdict, { tag: "success" });
  assert.deepEqual(JSON.parse(judged.outputs), { log_lines: 1 });
});

test("a failed run fails", () => {
  assert.deepEqual(interpret(outcome("failed", 3, []), context), Verdict.failure("the task failed (exit code 3)"));
});

test("a misspelt config is refused", () => {
  assert.throws(() => parseConfig('{"mark": "x"}', config), (e) => e === "unknown config key `mark`");
  assert.throws(() => check(parseConfig('{"marker": ""}', config)), (e) => e === "`marker` must be a non-empty string");
});
