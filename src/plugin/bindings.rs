//! The host side of `wit/plugin.wit`: the one `bindgen!` in kpo.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "wit",
});
