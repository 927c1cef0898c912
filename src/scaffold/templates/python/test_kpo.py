"""The tests of kpo's helpers (`kpo.py`), copied with them."""

import dataclasses
import typing
import unittest

from kpo import ImageRef, Kind, Pod, Status, Verdict, parse_config


def parts(image):
    r = ImageRef.parse(image)
    return (r.registry, r.repository, r.tag, r.digest)


@dataclasses.dataclass
class Limits:
    memory: str = "1Gi"
    cpu: typing.Optional[str] = None


@dataclasses.dataclass
class Config:
    limits: Limits = dataclasses.field(default_factory=Limits)
    names: typing.List[str] = dataclasses.field(default_factory=list)
    allow_root: bool = False


class HelpersTest(unittest.TestCase):
    def test_images_read_as_a_runtime_reads_them(self):
        self.assertEqual(parts("busybox"), ("docker.io", "library/busybox", None, None))
        self.assertEqual(parts("bitnami/redis:7"), ("docker.io", "bitnami/redis", "7", None))
        self.assertEqual(parts("localhost:5000/team/app:1.0@sha256:ab"), ("localhost:5000", "team/app", "1.0", "sha256:ab"))
        self.assertEqual(parts("index.docker.io/busybox:1.36"), ("docker.io", "library/busybox", "1.36", None))
        self.assertEqual(str(ImageRef.parse("busybox:1.36")), "docker.io/library/busybox:1.36")
        self.assertTrue(ImageRef.parse("busybox@sha256:ab").is_pinned())
        self.assertFalse(ImageRef.parse("busybox:latest").is_pinned())
        for image in ["", "busybox:", "busybox@", "registry.example.com/", "a//b"]:
            with self.assertRaises(ValueError, msg=image):
                ImageRef.parse(image)

    def test_every_container_and_its_image_init_containers_first(self):
        pod = Pod.parse('{"spec": {"initContainers": [{"name": "fetch", "image": "alpine"}],'
                        ' "containers": [{"name": "base", "image": "registry.example.com/app:2"}, {"name": "bad"}]}}')
        seen = [(i.kind, i.container["name"], i.image.registry if i.image else i.error) for i in pod.images()]
        self.assertEqual(seen, [(Kind.INIT, "fetch", "docker.io"), (Kind.APP, "base", "registry.example.com"),
                                (Kind.APP, "bad", 'image "" names no repository')])
        with self.assertRaisesRegex(ValueError, "^the pod is not JSON"):
            Pod.parse("[")

    def test_a_config_reads_into_its_dataclass_a_misspelt_key_refused_by_name(self):
        self.assertEqual(parse_config('{"limits": {"cpu": "1"}}', Config), Config(Limits("1Gi", "1")))
        with self.assertRaisesRegex(ValueError, "^unknown config key `limits.memroy`$"):
            parse_config('{"limits": {"memroy": "2Gi"}}', Config)
        with self.assertRaisesRegex(ValueError, "^config key `names`: expected a list, found a string$"):
            parse_config('{"names": "a"}', Config)
        with self.assertRaisesRegex(ValueError, "^config key `allow_root`: expected a boolean, found a string$"):
            parse_config('{"allow_root": "yes"}', Config)
        with self.assertRaisesRegex(ValueError, "^the config: expected a table, found a list$"):
            parse_config("[]", Config)

    def test_enums_and_verdicts_print_in_kpos_words(self):
        self.assertEqual(str(Status.NEVER_STARTED), "never_started")
        self.assertEqual(str(Verdict.retry("flaky")), "retry: flaky")
        self.assertEqual(str(Verdict.success()), "success")


if __name__ == "__main__":
    unittest.main()
