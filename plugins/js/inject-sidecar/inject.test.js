import { test } from "node:test";
import assert from "node:assert/strict";
import { inject, mutator } from "./inject.js";

const pod = () => ({ metadata: { name: "p" }, spec: { containers: [{ name: "base", image: "busybox" }] } });

test("adds the sidecar after the main container", () => {
  const out = inject(pod(), { name: "shipper", image: "fluent-bit:3", args: ["-q"] });
  assert.deepEqual(out.spec.containers[1], { name: "shipper", image: "fluent-bit:3", args: ["-q"] });
});

test("refuses without an image or with a name clash", () => {
  assert.throws(() => inject(pod(), {}), /config.image is required/);
  assert.throws(() => inject(pod(), { name: "base", image: "x" }), /already has a container named base/);
});

test("the WIT entry point works on JSON text", () => {
  const out = JSON.parse(mutator.mutate(JSON.stringify(pod()), { config: '{"image": "envoy:1"}' }));
  assert.equal(out.spec.containers[1].name, "sidecar");
});
