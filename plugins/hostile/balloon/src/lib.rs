//! A hostile test guest: balloon. See ../../README.md.
#![cfg(target_arch = "wasm32")]
#![allow(unconditional_recursion, clippy::all)]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    #[allow(unused_variables, unreachable_code)]
    fn mutate(pod: String, context: Context) -> Result<String, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export!(Plugin);
