import unittest

from kpo import Context, Pod, parse_config
from logic import Config, add_labels


def context(text):
    return Context(parse_config(text, Config))


class AddLabelsTest(unittest.TestCase):
    def test_adds_what_is_missing_and_keeps_what_is_set(self):
        pod = Pod({"metadata": {"labels": {"team": "ml"}}})
        warnings = add_labels(pod, context('{"labels": {"team": "data", "tier": "batch"}}'))
        self.assertEqual(pod.labels, {"team": "ml", "tier": "batch"})
        self.assertEqual(warnings, ['label team stays "ml" (the config asks for "data")'])

    def test_a_pod_without_labels_gets_them(self):
        pod = Pod({})
        add_labels(pod, context('{"labels": {"tier": "batch"}}'))
        self.assertEqual(pod.labels, {"tier": "batch"})

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "^unknown config key `lables`$"):
            parse_config('{"lables": {}}', Config)
        with self.assertRaisesRegex(ValueError, "^config key `labels.n`: expected a string, found a number$"):
            parse_config('{"labels": {"n": 1}}', Config)


if __name__ == "__main__":
    unittest.main()
