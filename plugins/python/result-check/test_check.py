import unittest

from check import check, find_result


class FindResult(unittest.TestCase):
    def test_document_wins(self):
        self.assertEqual(find_result('{"a": 1}', ['{"a": 2}']), {"a": 1})

    def test_last_json_line(self):
        self.assertEqual(find_result(None, ["start", '{"rows": 3}', "bye", "{broken"]), {"rows": 3})

    def test_none(self):
        self.assertIsNone(find_result(None, ["no json here"]))


class Check(unittest.TestCase):
    def test_rules(self):
        config = {"checks": {"rows": {"min": 1, "max": 10}, "status": {"equals": "ok"}, "gone": {}}}
        problems = check({"rows": 0, "status": "bad"}, config)
        self.assertEqual(
            problems,
            ["rows is 0, below the minimum 1", "status is 'bad', expected 'ok'", "gone is missing"],
        )
        self.assertEqual(check({"rows": 5, "status": "ok", "gone": 1}, config), [])


if __name__ == "__main__":
    unittest.main()
