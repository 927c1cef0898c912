import unittest

from logic import allowed_prefixes, check, pinned


def pod(image):
    return {"spec": {"containers": [{"name": "main", "image": image}]}}


class ImagesTest(unittest.TestCase):
    def test_an_unpinned_image_is_refused(self):
        for image in ["busybox", "busybox:latest", "localhost:5000/busybox"]:
            refusal, _ = check(pod(image), [])
            self.assertEqual(refusal, f"container main: image {image} has no pinned tag (latest or none)")
        self.assertTrue(pinned("localhost:5000/busybox:1.36") and pinned("busybox@sha256:abc"))

    def test_only_the_allowed_prefixes_pass(self):
        allowed = allowed_prefixes({"allowed": ["registry.example.com/"]})
        self.assertIsNone(check(pod("registry.example.com/app:1.0"), allowed)[0])
        refusal, _ = check(pod("busybox:1.36"), allowed)
        self.assertIn("none of the allowed prefixes (registry.example.com/)", refusal)

    def test_a_missing_memory_limit_is_a_warning(self):
        self.assertEqual(check(pod("busybox:1.36"), []), (None, ["container main has no memory limit"]))

    def test_a_misspelt_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "unknown key `allow` \\(known: allowed\\)"):
            allowed_prefixes({"allow": []})


if __name__ == "__main__":
    unittest.main()
