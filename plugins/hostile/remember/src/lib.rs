//! A hostile test guest: remember. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use core::arch::wasm32::memory_grow;
use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

/// What it leaves behind: a call that finds it has seen an earlier call's memory.
const MARK: &[u8; 16] = b"kpo-call-was-her";

impl Guest for Plugin {
    fn mutate(pod: String, _context: Context) -> Result<String, String> {
        // A page past everything the instance starts with: an instance reused, or a memory slot
        // reused without its reset, would show the mark an earlier call wrote here.
        let page = memory_grow(0, 1);
        if page == usize::MAX {
            return Err("cannot grow the memory".into());
        }
        let at = (page * 65536) as *mut [u8; 16];
        // SAFETY: the page was just grown, so it is inside this instance's memory and unused.
        let seen = unsafe { at.read_volatile() };
        if &seen == MARK {
            return Err(format!("found what an earlier call left at {:#x}", page * 65536));
        }
        unsafe { at.write_volatile(*MARK) };
        Ok(pod)
    }
}

export!(Plugin);
