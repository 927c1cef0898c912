import unittest

from kpo import Context, Outcome, Status, Verdict, parse_config
from logic import Config, check, interpret


def outcome(status, exit_code, lines):
    return Outcome(status=status, exit_code=exit_code, log_tail=lines)


class InterpretTest(unittest.TestCase):
    def test_the_marker_skips_the_run(self):
        verdict = interpret(outcome(Status.SUCCEEDED, 0, ["looking", "NOTHING TO DO"]), Context(Config()))
        self.assertEqual(verdict, Verdict.skip('the task said "NOTHING TO DO"'))

    def test_a_run_without_it_succeeds_with_its_line_count(self):
        verdict = interpret(outcome(Status.SUCCEEDED, 0, ["processed 3 rows"]), Context(Config()))
        self.assertEqual(verdict, Verdict.success({"log_lines": 1}))

    def test_a_failed_run_fails(self):
        verdict = interpret(outcome(Status.FAILED, 3, []), Context(Config()))
        self.assertEqual(str(verdict), "failure: the task failed (exit code 3)")

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "^unknown config key `mark`$"):
            parse_config('{"mark": "x"}', Config)
        with self.assertRaisesRegex(ValueError, "^`marker` must be a non-empty string$"):
            check(parse_config('{"marker": ""}', Config))


if __name__ == "__main__":
    unittest.main()
