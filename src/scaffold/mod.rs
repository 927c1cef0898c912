//! `kpo plugin new`: a plugin project for one role in one of four languages, written from
//! templates embedded in kpo, that builds outside kpo's repository with only the tools its
//! README names. Everything of kpo's it needs — the WIT contract, a sample input and its golden
//! answer, a task that uses it — is written into it.
//!
//! The three roles do the same in every language (the same `testdata/expected.json` holds for
//! all four), so a project in one language reads like one in another.

use std::path::{Path, PathBuf};

use crate::plugin::PluginRole;

/// The languages `kpo plugin new` writes a project in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    Python,
    Js,
    C,
}

impl Language {
    /// The language's name, as its README says it.
    pub fn name(self) -> &'static str {
        toolkit(self).label
    }
}

fn toolkit(language: Language) -> &'static Toolkit {
    match language {
        Language::Rust => &RUST,
        Language::Python => &PYTHON,
        Language::Js => &JS,
        Language::C => &C,
    }
}

/// What went wrong writing a project.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` cannot name a plugin: use lowercase letters, digits and dashes, starting with a letter (at most 40)"
    )]
    Name(String),
    #[error("{0} is not empty: kpo plugin new writes a project into a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// One file of a project: where it goes, and its template.
type Template = (&'static str, &'static str);

/// What a language brings: its files, and what its README says to install and run.
struct Toolkit {
    label: &'static str,
    /// Written for every role.
    common: &'static [Template],
    /// Written for one role (mutator, policy, interpreter).
    by_role: [&'static [Template]; 3],
    /// kpo's SDK for the language, copied into the project as it is (no placeholder filled), so
    /// that the project builds on its own; and the README's line about it.
    sdk: &'static [Template],
    sdk_line: &'static str,
    tools: &'static str,
    build: &'static str,
    unit: &'static str,
    /// Where the build writes the component.
    wasm: &'static str,
}

macro_rules! template {
    ($dest:literal, $file:literal) => {
        ($dest, include_str!(concat!("templates/", $file)))
    };
}

/// A file of kpo's Rust SDK (`plugins/kpo-plugin/`), at the same path under `kpo-plugin/`.
macro_rules! rust_sdk {
    ($file:literal) => {
        (
            concat!("kpo-plugin/", $file),
            include_str!(concat!("../../plugins/kpo-plugin/", $file)),
        )
    };
}

const RUST: Toolkit = Toolkit {
    label: "Rust",
    common: &[
        template!("Cargo.toml", "rust/Cargo.toml"),
        template!(".gitignore", "rust/gitignore"),
    ],
    by_role: [
        &[template!("src/lib.rs", "rust/mutator.rs")],
        &[template!("src/lib.rs", "rust/policy.rs")],
        &[template!("src/lib.rs", "rust/interpreter.rs")],
    ],
    sdk: &[
        rust_sdk!("Cargo.toml"),
        rust_sdk!("README.md"),
        rust_sdk!("src/lib.rs"),
        rust_sdk!("src/bindings.rs"),
        rust_sdk!("src/config.rs"),
        rust_sdk!("src/image.rs"),
        rust_sdk!("src/pod.rs"),
        rust_sdk!("src/roles.rs"),
        rust_sdk!("wit/sdk.wit"),
        // kpo's contract, where the SDK's own WIT finds it.
        (
            "kpo-plugin/wit/deps/kpo-plugin/plugin.wit",
            include_str!("../../wit/plugin.wit"),
        ),
    ],
    sdk_line: "- `kpo-plugin/`: kpo's Rust SDK, copied in by `kpo plugin new` so that the project \
               builds on its own (its README says what it gives you).\n",
    tools: "- Rust 1.85 or later (rustup) with the WebAssembly target: `rustup target add wasm32-wasip2`.",
    build: "cargo build --release --target wasm32-wasip2",
    unit: "cargo test",
    wasm: "target/wasm32-wasip2/release/@SNAKE@.wasm",
};

const PYTHON: Toolkit = Toolkit {
    label: "Python",
    common: &[
        template!("requirements.txt", "python/requirements.txt"),
        template!(".gitignore", "python/gitignore"),
    ],
    by_role: [
        &[
            template!("app.py", "python/mutator_app.py"),
            template!("logic.py", "python/mutator.py"),
            template!("test_logic.py", "python/test_mutator.py"),
        ],
        &[
            template!("app.py", "python/policy_app.py"),
            template!("logic.py", "python/policy.py"),
            template!("test_logic.py", "python/test_policy.py"),
        ],
        &[
            template!("app.py", "python/interpreter_app.py"),
            template!("logic.py", "python/interpreter.py"),
            template!("test_logic.py", "python/test_interpreter.py"),
        ],
    ],
    sdk: &[
        template!("kpo.py", "python/kpo.py"),
        template!("test_kpo.py", "python/test_kpo.py"),
    ],
    sdk_line: "- `kpo.py`: kpo's helpers for plugins (a `Pod` with its images read as a runtime \
               reads them, the config read into a dataclass, answers in kpo's words, a function \
               per role for `app.py`), copied in by `kpo plugin new`; `test_kpo.py` tests them.\n",
    tools: "- Python 3.10 or later with pip; the build installs componentize-py (pinned in \
            `requirements.txt`).",
    build: "python3 -m pip install -r requirements.txt\n\
            componentize-py -d wit -w @WORLD@ componentize app -o @SNAKE@.wasm",
    unit: "python3 -m unittest -v",
    wasm: "@SNAKE@.wasm",
};

const JS: Toolkit = Toolkit {
    label: "JavaScript",
    common: &[
        template!("package.json", "js/package.json"),
        template!(".gitignore", "js/gitignore"),
    ],
    by_role: [
        &[
            template!("plugin.js", "js/mutator.js"),
            template!("plugin.test.js", "js/mutator.test.js"),
        ],
        &[
            template!("plugin.js", "js/policy.js"),
            template!("plugin.test.js", "js/policy.test.js"),
        ],
        &[
            template!("plugin.js", "js/interpreter.js"),
            template!("plugin.test.js", "js/interpreter.test.js"),
        ],
    ],
    sdk: &[
        template!("kpo.js", "js/kpo.js"),
        template!("kpo.test.js", "js/kpo.test.js"),
    ],
    sdk_line: "- `kpo.js`: kpo's helpers for plugins (a `Pod` with its images read as a runtime \
               reads them, the config read against its defaults, a function per role), copied in \
               by `kpo plugin new`; `kpo.test.js` tests them.\n",
    tools: "- Node.js 20 or later with npm; the build installs componentize-qjs (pinned in \
            `package.json`) into `node_modules`.",
    build: "npm install\nnpm run build",
    unit: "npm test",
    wasm: "@SNAKE@.wasm",
};

const C: Toolkit = Toolkit {
    label: "C",
    common: &[
        template!("Makefile", "c/Makefile"),
        template!(".gitignore", "c/gitignore"),
        template!("json.h", "c/json.h"),
        template!("json.c", "c/json.c"),
        template!("expect.h", "c/expect.h"),
    ],
    by_role: [
        &[
            template!("logic.h", "c/mutator.h"),
            template!("logic.c", "c/mutator.c"),
            template!("component.c", "c/mutator_component.c"),
            template!("test_logic.c", "c/test_mutator.c"),
        ],
        &[
            template!("logic.h", "c/policy.h"),
            template!("logic.c", "c/policy.c"),
            template!("component.c", "c/policy_component.c"),
            template!("test_logic.c", "c/test_policy.c"),
        ],
        &[
            template!("logic.h", "c/interpreter.h"),
            template!("logic.c", "c/interpreter.c"),
            template!("component.c", "c/interpreter_component.c"),
            template!("test_logic.c", "c/test_interpreter.c"),
        ],
    ],
    sdk: &[],
    sdk_line: "",
    tools: "- Debian 12's (or Ubuntu's) C toolchain for WebAssembly and the jsmn JSON parser: \
            `apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 libjsmn-dev make`.\n\
            - wit-bindgen's C generator, from crates.io: `cargo install wit-bindgen-cli --version 0.63.0 --locked`.\n\
            - `wasm-component-ld`, which turns the module into a component: it comes with Rust's \
            wasm32-wasip2 target (`rustup target add wasm32-wasip2`); the Makefile finds it there.",
    build: "make",
    unit: "make test",
    wasm: "@SNAKE@.wasm",
};

/// Per role: its word in the README, its summary, the sample input flag, its task-file table,
/// and its sample input, config and golden answer.
struct RoleKit {
    /// One plain line, for the build file's description.
    about: &'static str,
    summary: &'static str,
    input: &'static str,
    table: &'static str,
    testdata: &'static [Template],
}

const ROLES: [RoleKit; 3] = [
    RoleKit {
        about: "kpo mutator: adds the labels of its config to the pod",
        summary: "Adds the labels its config names to the pod (`config = { labels = { team = \"data\" } }`); \
                  a label the pod already has keeps its value, with a warning.",
        input: "--pod testdata/pod.yaml",
        table: "[[mutate]]\npath = \"@WASM@\"\nwritable = [\"/metadata/labels\"]\n\
                config = { labels = { team = \"data\", tier = \"batch\" } }",
        testdata: &[
            template!("testdata/pod.yaml", "testdata/mutator/pod.yaml"),
            template!("testdata/expected.json", "testdata/mutator/expected.json"),
        ],
    },
    RoleKit {
        about: "kpo policy: refuses unpinned or not allowed images, warns of missing memory limits",
        summary: "Refuses a pod whose images are not pinned (no tag, or `latest`) or start with none of \
                  the prefixes its config allows (`config = { allowed = [\"registry.example.com/\"] }`); \
                  warns of containers without a memory limit.",
        input: "--pod testdata/pod.yaml",
        table: "[[policy]]\npath = \"@WASM@\"\nconfig = { allowed = [\"busybox:\", \"registry.example.com/\"] }",
        testdata: &[
            template!("testdata/pod.yaml", "testdata/policy/pod.yaml"),
            template!("testdata/expected.json", "testdata/policy/expected.json"),
        ],
    },
    RoleKit {
        about: "kpo interpreter: skips a run whose log says it had nothing to do",
        summary: "Skips a run whose log says `NOTHING TO DO` (or its config's `marker`), fails a failed run, \
                  and publishes how many log lines it saw.",
        input: "--outcome testdata/outcome.json",
        table: "[[interpret]]\npath = \"@WASM@\"\nconfig = { marker = \"NOTHING TO DO\" }",
        testdata: &[
            template!("testdata/outcome.json", "testdata/interpreter/outcome.json"),
            template!("testdata/expected.json", "testdata/interpreter/expected.json"),
        ],
    },
];

const README: &str = include_str!("templates/README.md");
const TASK: &str = include_str!("templates/task.toml");

/// A project, ready to write: each file's path in it and its text.
#[derive(Debug)]
pub struct Project {
    pub files: Vec<(PathBuf, String)>,
    /// Where its build writes the component, in the project.
    pub wasm: String,
}

/// The project for a plugin `name` in `language` for `role`, with kpo's `contract` (the WIT
/// files, by path in the `wit/` folder) written into it.
pub fn project(
    name: &str,
    language: Language,
    role: PluginRole,
    contract: &[(&str, &str)],
) -> Result<Project, ScaffoldError> {
    check_name(name)?;
    let kit = toolkit(language);
    let (index, world) = match role {
        PluginRole::Mutator => (0, "configured-mutator-plugin"),
        PluginRole::Policy => (1, "configured-validator-plugin"),
        PluginRole::Interpreter => (2, "configured-interpreter-plugin"),
    };
    let role_kit = &ROLES[index];
    let own = kit.by_role[index];
    let snake = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("@WASM@", kit.wasm)
            .replace("@BUILD@", kit.build)
            .replace("@WORLD_C@", &world.replace('-', "_"))
            .replace("@WORLD@", world)
            .replace("@NAME@", name)
            .replace("@SNAKE@", &snake)
            .replace("@SUMMARY@", role_kit.summary)
            .replace("@ABOUT@", role_kit.about)
            .replace("@KPO_VERSION@", env!("CARGO_PKG_VERSION"))
    };
    // The role's own code: what an author edits first (not its tests, nor the helpers).
    let sources: Vec<String> = own
        .iter()
        .filter(|(dest, _)| !dest.starts_with("test"))
        .map(|(dest, _)| format!("`{dest}`"))
        .collect();
    let readme = README
        .replace("@TOOLS@", kit.tools)
        .replace("@UNIT@", kit.unit)
        .replace("@INPUT@", role_kit.input)
        .replace("@TABLE@", role_kit.table)
        .replace("@SOURCES@", &sources.join(", "))
        .replace("@SDK@\n", kit.sdk_line)
        .replace("@ROLE@", role.name())
        .replace("@LANGUAGE@", kit.label);
    let task = TASK.replace("@TABLE@", role_kit.table);
    let mut files: Vec<(PathBuf, String)> = kit
        .common
        .iter()
        .chain(own)
        .chain(role_kit.testdata)
        .map(|(dest, text)| (PathBuf::from(dest), fill(text)))
        .collect();
    files.extend(
        kit.sdk
            .iter()
            .map(|(dest, text)| (PathBuf::from(dest), (*text).to_owned())),
    );
    files.push(("README.md".into(), fill(&readme)));
    files.push(("task.toml".into(), fill(&task)));
    files.extend(
        contract
            .iter()
            .map(|(path, text)| (Path::new("wit").join(path), (*text).to_owned())),
    );
    Ok(Project {
        files,
        wasm: fill(kit.wasm),
    })
}

/// A name that works as a crate, an npm package, a file and a label value alike.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::Name(name.to_owned()))
    }
}

impl Project {
    /// Writes the project into `dir` (created if missing, refused if not empty).
    pub fn write(&self, dir: &Path) -> Result<(), ScaffoldError> {
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(ScaffoldError::NotEmpty(dir.to_owned()));
        }
        for (path, text) in &self.files {
            let path = dir.join(path);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, text));
            written.map_err(|source| ScaffoldError::Write { path, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_must_suit_a_crate_a_package_and_a_file() {
        for good in ["labels", "team-labels2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Labels",
            "2labels",
            "team_labels",
            "labels-",
            "a/b",
            &"x".repeat(41),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    /// The first `@WORD@` in `text`.
    fn placeholder(text: &str) -> Option<&str> {
        text.match_indices('@').find_map(|(at, _)| {
            let rest = &text[at + 1..];
            let word = &rest[..rest.find('@')?];
            let upper = !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            upper.then_some(word)
        })
    }

    #[test]
    fn no_placeholder_is_left_unfilled() {
        for language in [Language::Rust, Language::Python, Language::Js, Language::C] {
            for role in [PluginRole::Mutator, PluginRole::Policy, PluginRole::Interpreter] {
                let project = project("demo", language, role, &[]).unwrap();
                for (path, text) in &project.files {
                    assert_eq!(
                        placeholder(text),
                        None,
                        "{language:?} {role:?} {}",
                        path.display()
                    );
                }
            }
        }
    }
}
