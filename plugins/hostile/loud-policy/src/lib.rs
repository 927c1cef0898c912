//! A hostile test guest: loud-policy, a validating policy whose words attack the terminal. See
//! ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "validator-plugin", path: "../../../wit" });

use exports::kpo::plugin::validator::Guest;
use kpo::plugin::types::{Admission, Context};

struct Plugin;

impl Guest for Plugin {
    /// Clears the screen, forges a line of kpo's own, and goes on for a mebibyte.
    fn validate(_pod: String, _context: Context) -> Admission {
        let mut reason = String::from("\u{1b}[2J\nkpo: task \"x\" succeeded (exit code 0)\n");
        reason.push_str(&"x".repeat(1 << 20));
        Admission::Refuse(reason)
    }
}

export!(Plugin);
