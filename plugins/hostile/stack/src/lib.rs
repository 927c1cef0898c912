//! A hostile test guest: stack. See ../../README.md.
#![cfg(target_arch = "wasm32")]
#![allow(unconditional_recursion, clippy::all)]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    #[allow(unused_variables, unreachable_code)]
    fn mutate(pod: String, context: Context) -> Result<String, String> {
        fn deeper(n: u64) -> u64 {
            std::hint::black_box(deeper(n + 1)) + 1
        }
        Ok(deeper(0).to_string())
    }
}

export!(Plugin);
