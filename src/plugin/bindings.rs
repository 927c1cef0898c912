//! The host side of `wit/` (0.2.0) and `wit/0.1.0/`: one `bindgen!` per contract version kpo
//! speaks. 0.2.0 is kpo's own
//! vocabulary; 0.1.0 components are translated to it at the boundary.

/// `kpo:plugin@0.2.0`, the current contract.
pub mod v2 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "wit",
        // Exports are called as futures, so that a deadline and a signal can drop a call
        // wherever the guest is: in its own code or blocked in a WASI host call.
        exports: { default: async },
    });
}

/// `kpo:plugin@0.1.0`, as released: mutators and interpreters.
pub mod v1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "wit/0.1.0",
        exports: { default: async },
    });
}
