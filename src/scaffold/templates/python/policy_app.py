"""The component: binds logic.py to kpo's contract (world @WORLD@). Built by componentize-py."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from logic import allowed_prefixes, check


class Validator(exports.Validator):
    def validate(self, pod: str, context: types.Context) -> types.Admission:
        try:
            allowed = allowed_prefixes(json.loads(context.config))
        except ValueError as e:
            return types.Admission_Refuse(str(e))
        refusal, warnings = check(json.loads(pod), allowed)
        if refusal is not None:
            return types.Admission_Refuse(refusal)
        if warnings:
            return types.Admission_Warn(warnings)
        return types.Admission_Accept()


class Settings(exports.Settings):
    # Called when kpo loads the plugin: Err stops `kpo validate` and `kpo run` before any pod.
    def validate_config(self, config: str) -> None:
        try:
            allowed_prefixes(json.loads(config))
        except ValueError as e:
            raise Err(str(e))
