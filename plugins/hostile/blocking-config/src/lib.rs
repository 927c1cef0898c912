//! A hostile test guest: blocking-config, a mutator (contract 0.2.0) whose `validate-config`,
//! called when kpo loads it, sleeps for an hour. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "configured-mutator-plugin", path: "../../../wit" });

use exports::kpo::plugin::mutator::Guest as Mutator;
use exports::kpo::plugin::settings::Guest as Settings;
use kpo::plugin::types::{Context, Mutated};

struct Plugin;

impl Mutator for Plugin {
    fn mutate(pod: String, _context: Context) -> Result<Mutated, String> {
        Ok(Mutated { pod, warnings: Vec::new() })
    }
}

impl Settings for Plugin {
    fn validate_config(_config: String) -> Result<(), String> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Ok(())
    }
}

export!(Plugin);
