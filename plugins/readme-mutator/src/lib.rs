//! The README's minimal Rust plugin, word for word: `build.rs` copies it out of the README.
//! It finds its WIT at `wit` as the README says, through the `wit` link beside this crate.

#[cfg(target_arch = "wasm32")]
mod plugin {
    include!(concat!(env!("OUT_DIR"), "/readme.rs"));
}
