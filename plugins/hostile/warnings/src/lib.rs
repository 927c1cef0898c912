//! A hostile test guest: warnings, a validating policy (contract 0.2.0) that warns a million
//! times with nothing to say. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "validator-plugin", path: "../../../wit" });

use exports::kpo::plugin::validator::Guest;
use kpo::plugin::types::{Admission, Context};

struct Plugin;

impl Guest for Plugin {
    fn validate(_pod: String, _context: Context) -> Admission {
        Admission::Warn(vec![String::new(); 1_000_000])
    }
}

export!(Plugin);
