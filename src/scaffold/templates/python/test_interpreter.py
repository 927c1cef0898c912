import unittest

from logic import judge, marker


class JudgeTest(unittest.TestCase):
    def test_the_marker_skips_the_run(self):
        verdict = judge(True, 0, ["looking", "NOTHING TO DO"], "NOTHING TO DO")
        self.assertEqual(verdict, ("skip", 'the task said "NOTHING TO DO"'))

    def test_a_run_without_it_succeeds_with_its_line_count(self):
        self.assertEqual(judge(True, 0, ["processed 3 rows"], "NOTHING TO DO"), ("success", {"log_lines": 1}))

    def test_a_failed_run_fails(self):
        self.assertEqual(judge(False, 3, [], "x"), ("failure", "the task failed (exit code 3)"))

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "unknown key `mark` \\(known: marker\\)"):
            marker({"mark": "x"})


if __name__ == "__main__":
    unittest.main()
