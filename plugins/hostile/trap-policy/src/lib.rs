//! A hostile test guest: trap-policy, a validating policy that panics. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "validator-plugin", path: "../../../wit" });

use exports::kpo::plugin::validator::Guest;
use kpo::plugin::types::{Admission, Context};

struct Plugin;

impl Guest for Plugin {
    fn validate(_pod: String, _context: Context) -> Admission {
        panic!("the policy fell over")
    }
}

export!(Plugin);
