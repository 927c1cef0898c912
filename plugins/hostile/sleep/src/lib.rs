//! A hostile test guest: sleep, a mutator that sleeps for an hour inside a WASI host call (a
//! timer and `poll`), where no epoch deadline reaches it. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    fn mutate(pod: String, _context: Context) -> Result<String, String> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Ok(pod)
    }
}

export!(Plugin);
