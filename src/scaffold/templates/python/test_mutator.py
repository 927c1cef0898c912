import unittest

from logic import add_labels, wanted_labels


class LabelsTest(unittest.TestCase):
    def test_adds_what_is_missing_and_keeps_what_is_set(self):
        pod = {"metadata": {"labels": {"team": "ml"}}}
        pod, warnings = add_labels(pod, wanted_labels({"labels": {"team": "data", "tier": "batch"}}))
        self.assertEqual(pod["metadata"]["labels"], {"team": "ml", "tier": "batch"})
        self.assertEqual(warnings, ['label team stays "ml" (the config asks for "data")'])

    def test_a_pod_without_labels_gets_them(self):
        pod, _ = add_labels({}, {"tier": "batch"})
        self.assertEqual(pod["metadata"]["labels"], {"tier": "batch"})

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "unknown key `lables`"):
            wanted_labels({"lables": {}})
        with self.assertRaisesRegex(ValueError, "label `n` must be a string"):
            wanted_labels({"labels": {"n": 1}})


if __name__ == "__main__":
    unittest.main()
