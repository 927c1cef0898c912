//! A hostile test guest: spin. See ../../README.md.
#![cfg(target_arch = "wasm32")]
#![allow(unconditional_recursion, clippy::all)]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    #[allow(unused_variables, unreachable_code)]
    fn mutate(pod: String, context: Context) -> Result<String, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Plugin);
