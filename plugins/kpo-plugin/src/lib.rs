//! Write kpo plugins in Rust. A plugin is a type that implements one role — [`Mutator`],
//! [`Policy`] or [`Interpreter`] — and names its config's type; one macro exports it as a
//! WebAssembly component against kpo's contract (`wit/`, 0.2.0):
//!
//! ```
//! use kpo_plugin::{Admission, Context, Plugin, Policy, Pod};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     registries: Vec<String>,
//! }
//!
//! struct Registries;
//!
//! impl Plugin for Registries {
//!     type Config = Config;
//! }
//!
//! impl Policy for Registries {
//!     fn validate(pod: &Pod, context: &Context<Config>) -> Admission {
//!         let allowed = &context.config.registries;
//!         Admission::refuse_any(
//!             pod.images()
//!                 .filter_map(|(_, c, image)| match image {
//!                     Ok(i) if allowed.contains(&i.registry) => None,
//!                     Ok(i) => Some(format!("container {}: registry {} is not allowed", c.name, i.registry)),
//!                     Err(e) => Some(e),
//!                 })
//!                 .collect(),
//!         )
//!     }
//! }
//!
//! kpo_plugin::policy!(Registries);
//! ```
//!
//! What the SDK does for every plugin: the config is read into its type when kpo loads the
//! plugin (the `settings` export), a misspelt key or a value of the wrong type refused by name;
//! the pod is typed (k8s-openapi) with its JSON kept beside it, so a mutator's changes go back
//! with every field k8s-openapi does not know; the outcome's enums print in kpo's words. The
//! roles are plain Rust functions: a plugin's tests call them natively, with
//! [`Context::with_config`], no wasm needed.

mod config;
mod image;
mod pod;
mod roles;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "bindings.rs"]
pub mod __bindings;

pub use config::{NoConfig, parse as parse_config};
pub use image::{DEFAULT_REGISTRY, ImageRef};
pub use k8s_openapi;
pub use pod::{Kind, Pod};
pub use roles::{
    Admission, ContainerOutcome, Context, Interpreter, Judgement, Mutator, Outcome, Plugin, Policy,
    Role, Status, Verdict,
};
pub use serde_json;

/// Exports a [`Mutator`] (and its config check) as the component's mutator.
#[macro_export]
macro_rules! mutator {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__bindings::mutator as bound;
            struct Exported;
            impl bound::exports::kpo::plugin::mutator::Guest for Exported {
                fn mutate(
                    pod: ::std::string::String,
                    context: bound::kpo::plugin::types::Context,
                ) -> ::std::result::Result<bound::kpo::plugin::types::Mutated, ::std::string::String>
                {
                    bound::call::<$plugin>(pod, context)
                }
            }
            $crate::__settings!($plugin, Exported);
            $crate::__bindings::mutator::export!(Exported with_types_in $crate::__bindings::mutator);
        };
    };
}

/// Exports a [`Policy`] (and its config check) as the component's validator.
#[macro_export]
macro_rules! policy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__bindings::policy as bound;
            struct Exported;
            impl bound::exports::kpo::plugin::validator::Guest for Exported {
                fn validate(
                    pod: ::std::string::String,
                    context: bound::kpo::plugin::types::Context,
                ) -> bound::kpo::plugin::types::Admission {
                    bound::call::<$plugin>(pod, context)
                }
            }
            $crate::__settings!($plugin, Exported);
            $crate::__bindings::policy::export!(Exported with_types_in $crate::__bindings::policy);
        };
    };
}

/// Exports an [`Interpreter`] (and its config check) as the component's interpreter.
#[macro_export]
macro_rules! interpreter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__bindings::interpreter as bound;
            struct Exported;
            impl bound::exports::kpo::plugin::interpreter::Guest for Exported {
                fn interpret(
                    outcome: bound::kpo::plugin::types::Outcome,
                    context: bound::kpo::plugin::types::Context,
                ) -> bound::kpo::plugin::types::Judgement {
                    bound::call::<$plugin>(outcome, context)
                }
            }
            $crate::__settings!($plugin, Exported);
            $crate::__bindings::interpreter::export!(Exported with_types_in $crate::__bindings::interpreter);
        };
    };
}

/// The config check every role macro exports beside the role.
#[doc(hidden)]
#[macro_export]
macro_rules! __settings {
    ($plugin:ty, $exported:ident) => {
        impl $crate::__bindings::settings::exports::kpo::plugin::settings::Guest for $exported {
            fn validate_config(
                config: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__bindings::settings::check::<$plugin>(config)
            }
        }
        $crate::__bindings::settings::export!($exported with_types_in $crate::__bindings::settings);
    };
}
