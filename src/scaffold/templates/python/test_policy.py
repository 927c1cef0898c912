import unittest

from kpo import Admission, Context, Pod, parse_config
from logic import Config, validate


def pod(image):
    return Pod({"spec": {"containers": [{"name": "main", "image": image}]}})


def context(text="{}"):
    return Context(parse_config(text, Config))


class ValidateTest(unittest.TestCase):
    def test_an_unpinned_image_is_refused(self):
        for image in ["busybox", "busybox:latest", "localhost:5000/busybox"]:
            reason = f"container main: image {image} has no pinned tag (latest or none)"
            self.assertEqual(validate(pod(image), context()), Admission.refuse(reason))
        self.assertEqual(validate(pod("busybox@sha256:abc"), context()).kind, "warn")

    def test_only_the_allowed_prefixes_pass(self):
        allowed = context('{"allowed": ["registry.example.com/"]}')
        self.assertEqual(validate(pod("registry.example.com/app:1.0"), allowed).kind, "warn")
        self.assertIn("none of the allowed prefixes (registry.example.com/)", validate(pod("busybox:1.36"), allowed).reason)

    def test_a_missing_memory_limit_is_a_warning(self):
        self.assertEqual(validate(pod("busybox:1.36"), context()), Admission.warn(["container main has no memory limit"]))

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "^unknown config key `allow`$"):
            parse_config('{"allow": []}', Config)


if __name__ == "__main__":
    unittest.main()
