"""kpo interpreter in Python: judges a run by its result document.

    [[interpret]]
    path = "plugins/target/python/result_check.wasm"
    memory = "128Mi"
    config = { checks = { rows = { min = 1 }, status = { equals = "ok" } } }

Built with componentize-py: see README.md.
"""

import json

from wit_world import exports
from wit_world.imports import log, types

from check import check, find_result


class Interpreter(exports.Interpreter):
    def interpret(self, outcome: types.Outcome, context: types.Context) -> types.Judgement:
        config = json.loads(context.config or "{}")
        result = find_result(outcome.result, outcome.log_tail)
        if result is None:
            if config.get("required", True):
                return types.Judgement(types.Verdict_Failure("the task produced no result"), None)
            return types.Judgement(types.Verdict_Success(), None)
        problems = check(result, config)
        log.log(log.Level.INFO, f"checked {len(config.get('checks', {}))} field(s): {len(problems)} problem(s)")
        verdict = types.Verdict_Failure("; ".join(problems)) if problems else types.Verdict_Success()
        return types.Judgement(verdict, json.dumps({"result": result}))
