"""The component: binds logic.py to kpo's contract (world @WORLD@) through kpo.py. Built by
componentize-py."""

from wit_world import exports

import kpo
from logic import Config, check, validate


class Validator(exports.Validator):
    def validate(self, pod, context):
        return kpo.validate(pod, context, Config, check, validate)


class Settings(exports.Settings):
    def validate_config(self, config):
        kpo.validate_config(config, Config, check)
