"""The component: binds logic.py to kpo's contract (world @WORLD@). Built by componentize-py."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from logic import judge, marker


class Interpreter(exports.Interpreter):
    def interpret(self, outcome: types.Outcome, context: types.Context) -> types.Judgement:
        try:
            mark = marker(json.loads(context.config))
        except ValueError as e:
            return types.Judgement(types.Verdict_Failure(str(e)), None)
        # An enum is compared, not printed: f"{outcome.status}" is "Status.SUCCEEDED".
        succeeded = outcome.status == types.Status.SUCCEEDED
        verdict, detail = judge(succeeded, outcome.exit_code, outcome.log_tail, mark)
        if verdict == "failure":
            return types.Judgement(types.Verdict_Failure(detail), None)
        if verdict == "skip":
            return types.Judgement(types.Verdict_Skip(detail), None)
        return types.Judgement(types.Verdict_Success(), json.dumps(detail))


class Settings(exports.Settings):
    # Called when kpo loads the plugin: Err stops `kpo validate` and `kpo run` before any pod.
    def validate_config(self, config: str) -> None:
        try:
            marker(json.loads(config))
        except ValueError as e:
            raise Err(str(e))
