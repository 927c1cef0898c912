//! A hostile test guest: forever, a mutator that subscribes to a timer of `u64::MAX`
//! nanoseconds and waits for it in `poll`: a host call that never returns. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    fn mutate(pod: String, _context: Context) -> Result<String, String> {
        let timer = wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX);
        wasip2::io::poll::poll(&[&timer]);
        Ok(pod)
    }
}

export!(Plugin);
