import { test } from "node:test";
import assert from "node:assert/strict";
import { allowedPrefixes, check, pinned, validator } from "./plugin.js";

const pod = (image) => ({ spec: { containers: [{ name: "main", image }] } });

test("an unpinned image is refused", () => {
  for (const image of ["busybox", "busybox:latest", "localhost:5000/busybox"]) {
    assert.deepEqual(check(pod(image), []), {
      refuse: `container main: image ${image} has no pinned tag (latest or none)`,
    });
  }
  assert.ok(pinned("localhost:5000/busybox:1.36") && pinned("busybox@sha256:abc"));
});

test("only the allowed prefixes pass", () => {
  const allowed = allowedPrefixes({ allowed: ["registry.example.com/"] });
  assert.deepEqual(check(pod("registry.example.com/app:1.0"), allowed), {
    warnings: ["container main has no memory limit"],
  });
  assert.match(check(pod("busybox:1.36"), allowed).refuse, /none of the allowed prefixes \(registry.example.com\/\)/);
});

test("the WIT entry point answers with the admission variant", () => {
  const limited = { spec: { containers: [{ name: "main", image: "busybox:1.36", resources: { limits: { memory: "1Gi" } } }] } };
  assert.deepEqual(validator.validate(JSON.stringify(limited), { config: "{}" }), { tag: "accept" });
});

test("a misspelt config is refused", () => {
  assert.throws(() => allowedPrefixes({ allow: [] }), (e) => e === "unknown key `allow` (known: allowed)");
});
