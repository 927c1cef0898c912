// The tests of kpo's helpers (`kpo.js`), copied with them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ImageRef, Kind, Pod, describe, interpreter, kpoWord, parseConfig } from "./kpo.js";

const parts = (image) => {
  const r = ImageRef.parse(image);
  return [r.registry, r.repository, r.tag, r.digest];
};

test("images read as a runtime reads them", () => {
  assert.deepEqual(parts("busybox"), ["docker.io", "library/busybox", null, null]);
  assert.deepEqual(parts("bitnami/redis:7"), ["docker.io", "bitnami/redis", "7", null]);
  assert.deepEqual(parts("localhost:5000/team/app:1.0@sha256:ab"), ["localhost:5000", "team/app", "1.0", "sha256:ab"]);
  assert.deepEqual(parts("index.docker.io/busybox:1.36"), ["docker.io", "library/busybox", "1.36", null]);
  assert.equal(ImageRef.parse("busybox:1.36").toString(), "docker.io/library/busybox:1.36");
  assert.ok(ImageRef.parse("busybox@sha256:ab").isPinned() && !ImageRef.parse("busybox:latest").isPinned());
  for (const image of ["", "busybox:", "busybox@", "registry.example.com/", "a//b"]) {
    assert.throws(() => ImageRef.parse(image), undefined, image);
  }
});

test("every container and its image, init containers first", () => {
  const pod = Pod.parse(JSON.stringify({ spec: {
    initContainers: [{ name: "fetch", image: "alpine" }],
    containers: [{ name: "base", image: "registry.example.com/app:2" }, { name: "bad", image: "" }],
  } }));
  const seen = pod.images().map(({ kind, container, image, error }) => [kind, container.name, image?.registry ?? error]);
  assert.deepEqual(seen, [
    [Kind.INIT, "fetch", "docker.io"],
    [Kind.APP, "base", "registry.example.com"],
    [Kind.APP, "bad", 'image "" names no repository'],
  ]);
  assert.throws(() => Pod.parse("["), (e) => e.startsWith("the pod is not JSON"));
});

test("a config is read against its defaults, a misspelt key refused by name", () => {
  const defaults = { limits: { memory: "1Gi", cpu: null }, names: [] };
  assert.deepEqual(parseConfig('{"limits": {"cpu": "1"}}', defaults), { limits: { memory: "1Gi", cpu: "1" }, names: [] });
  assert.throws(() => parseConfig('{"limits": {"memroy": "2Gi"}}', defaults), (e) => e === "unknown config key `limits.memroy`");
  assert.throws(() => parseConfig('{"names": "a"}', defaults), (e) => e === "config key `names`: expected a list, found a string");
  assert.throws(() => parseConfig("[]", defaults), (e) => e === "the config: expected a table, found a list");
});

test("the contract's enums and verdicts print in kpo's words", () => {
  assert.equal(kpoWord("never-started"), "never_started");
  assert.equal(describe({ tag: "retry", val: "flaky" }), "retry: flaky");
  const { interpreter: exported } = interpreter({
    interpret: (outcome) => ({ tag: "skip", val: `${outcome.status} ${outcome.containers[0].role}` }),
  });
  const outcome = { status: "never-started", containers: [{ name: "m", role: "native-sidecar" }], pod: "" };
  assert.deepEqual(exported.interpret(outcome, { config: "{}" }).verdict, { tag: "skip", val: "never_started native_sidecar" });
});
