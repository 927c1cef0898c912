"""The component: binds logic.py to kpo's contract (world @WORLD@). Built by componentize-py."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from logic import add_labels, wanted_labels


class Mutator(exports.Mutator):
    def mutate(self, pod: str, context: types.Context) -> types.Mutated:
        # Raising Err(reason) is the `err` of `result<mutated, string>`: kpo refuses the pod.
        try:
            labels = wanted_labels(json.loads(context.config))
        except ValueError as e:
            raise Err(str(e))
        mutated, warnings = add_labels(json.loads(pod), labels)
        return types.Mutated(pod=json.dumps(mutated), warnings=warnings)


class Settings(exports.Settings):
    # Called when kpo loads the plugin: Err stops `kpo validate` and `kpo run` before any pod.
    def validate_config(self, config: str) -> None:
        try:
            wanted_labels(json.loads(config))
        except ValueError as e:
            raise Err(str(e))
