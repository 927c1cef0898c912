"""The component: binds logic.py to kpo's contract (world @WORLD@) through kpo.py. Built by
componentize-py."""

from wit_world import exports

import kpo
from logic import Config, add_labels, check


class Mutator(exports.Mutator):
    def mutate(self, pod, context):
        return kpo.mutate(pod, context, Config, check, add_labels)


class Settings(exports.Settings):
    def validate_config(self, config):
        kpo.validate_config(config, Config, check)
