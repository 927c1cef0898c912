// kpo mutator in JavaScript: adds a sidecar container to the pod, e.g. a log shipper or a proxy.
//
//   [[mutate]]
//   path = "plugins/target/js/inject_sidecar.wasm"
//   config = { name = "log-shipper", image = "fluent-bit:3", args = ["-c", "/etc/fb.conf"] }
//
// Built into a WebAssembly component with QuickJS (componentize-qjs): `npm run build`.
// A thrown string is the plugin's refusal (the WIT `err` of `result<string, string>`).

/** Returns the pod (a parsed Kubernetes Pod) with the sidecar described by `config` added. */
export function inject(pod, config) {
  if (typeof config.image !== "string" || config.image === "") {
    throw "config.image is required";
  }
  const name = config.name ?? "sidecar";
  const containers = pod.spec.containers;
  if (containers.some((c) => c.name === name)) {
    throw `the pod already has a container named ${name}`;
  }
  const sidecar = { name, image: config.image };
  if (Array.isArray(config.command)) sidecar.command = config.command;
  if (Array.isArray(config.args)) sidecar.args = config.args;
  containers.push(sidecar);
  return pod;
}

export const mutator = {
  mutate(pod, context) {
    const config = JSON.parse(context.config);
    return JSON.stringify(inject(JSON.parse(pod), config));
  },
};
