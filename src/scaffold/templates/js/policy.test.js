import { test } from "node:test";
import assert from "node:assert/strict";
import { Admission, Pod, parseConfig } from "./kpo.js";
import { config, validate, validator } from "./plugin.js";

const pod = (image) => new Pod({ spec: { containers: [{ name: "main", image }] } });
const context = (text) => ({ config: parseConfig(text, config) });

test("an unpinned image is refused", () => {
  for (const image of ["busybox", "busybox:latest", "localhost:5000/busybox"]) {
    const reason = `container main: image ${image} has no pinned tag (latest or none)`;
    assert.deepEqual(validate(pod(image), context("{}")), Admission.refuse(reason));
  }
  assert.equal(validate(pod("busybox@sha256:abc"), context("{}")).tag, "warn");
});

test("only the allowed prefixes pass", () => {
  const allowed = context('{"allowed": ["registry.example.com/"]}');
  assert.equal(validate(pod("registry.example.com/app:1.0"), allowed).tag, "warn");
  assert.match(validate(pod("busybox:1.36"), allowed).val, /none of the allowed prefixes \(registry.example.com\/\)/);
});

test("the WIT entry point answers with the admission variant", () => {
  const limited = { spec: { containers: [{ name: "main", image: "busybox:1.36", resources: { limits: { memory: "1Gi" } } }] } };
  assert.deepEqual(validator.validate(JSON.stringify(limited), { config: "{}" }), { tag: "accept" });
});

test("a misspelt config is refused", () => {
  assert.throws(() => parseConfig('{"allow": []}', config), (e) => e === "unknown config key `allow`");
});
