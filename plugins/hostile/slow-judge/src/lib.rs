//! A hostile test guest: slow-judge, an interpreter that sleeps for an hour inside a WASI host
//! call while it judges a run: kpo must still hear SIGTERM then. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "interpreter-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::interpreter::Guest;
use kpo::plugin::types::{Context, Judgement, Outcome, Verdict};

struct Plugin;

impl Guest for Plugin {
    fn interpret(_outcome: Outcome, _context: Context) -> Judgement {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Judgement {
            verdict: Verdict::Success,
            outputs: None,
        }
    }
}

export!(Plugin);
