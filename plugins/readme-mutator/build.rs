//! Takes the README's minimal Rust plugin out of the README, so the snippet users copy is the
//! code that is built and run (by the real-cluster suite): the two cannot drift apart.

use std::path::Path;

fn main() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    println!("cargo::rerun-if-changed={}", readme.display());
    let text = std::fs::read_to_string(&readme).expect("README.md is readable");
    let after = &text[text.find("**Rust**").expect("the README has its Rust plugin")..];
    let start = after.find("```rust\n").expect("a rust code block") + "```rust\n".len();
    let end = after[start..].find("```").expect("the block's end");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("readme.rs");
    std::fs::write(out, &after[start..start + end]).expect("OUT_DIR is writable");
}
