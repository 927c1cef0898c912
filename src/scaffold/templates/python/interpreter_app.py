"""The component: binds logic.py to kpo's contract (world @WORLD@) through kpo.py. Built by
componentize-py."""

from wit_world import exports

import kpo
from logic import Config, check, interpret


class Interpreter(exports.Interpreter):
    def interpret(self, outcome, context):
        return kpo.interpret(outcome, context, Config, check, interpret)


class Settings(exports.Settings):
    def validate_config(self, config):
        kpo.validate_config(config, Config, check)
