//! kpo's contract, bound (built for wasm32 only): the generated bindings of each role's world
//! and of the config check, and the glue from them to the typed traits. The role macros
//! ([`crate::mutator!`], [`crate::policy!`], [`crate::interpreter!`]) export these.

use crate::roles::{ContainerOutcome, Outcome, Plugin, Role, Status};

/// The conversions from one world's generated types; each world has its own copy of them.
macro_rules! typed {
    () => {
        use kpo::plugin::types as wit;

        fn status(s: wit::Status) -> crate::roles::Status {
            use crate::roles::Status;
            match s {
                wit::Status::Succeeded => Status::Succeeded,
                wit::Status::Failed => Status::Failed,
                wit::Status::NeverStarted => Status::NeverStarted,
                wit::Status::TimedOut => Status::TimedOut,
                wit::Status::Rejected => Status::Rejected,
                wit::Status::Refused => Status::Refused,
                wit::Status::Interrupted => Status::Interrupted,
            }
        }

        fn role(r: wit::Role) -> crate::roles::Role {
            use crate::roles::Role;
            match r {
                wit::Role::Main => Role::Main,
                wit::Role::Sidecar => Role::Sidecar,
                wit::Role::Init => Role::Init,
                wit::Role::NativeSidecar => Role::NativeSidecar,
            }
        }

        fn outcome(o: wit::Outcome) -> crate::roles::Outcome {
            super::outcome(
                (o.attempt, status(o.status), o.exit_code, o.phase),
                o.containers
                    .into_iter()
                    .map(|c| (c.name, role(c.role), c.exit_code, c.reason, c.message))
                    .collect(),
                o.log_tail,
                o.result,
                o.pod,
            )
        }

        /// The context, its config read and checked as at load (a call may come without).
        fn context<P: crate::Plugin>(
            c: wit::Context,
        ) -> Result<crate::roles::Context<P::Config>, String> {
            let config = crate::config::parse(&c.config)?;
            P::check_config(&config)?;
            Ok(crate::roles::Context {
                task: c.task,
                namespace: c.namespace,
                run_id: c.run_id,
                attempt: c.attempt,
                config,
                earlier: c.earlier.into_iter().map(outcome).collect(),
            })
        }
    };
}

type ContainerParts = (String, Role, Option<i32>, Option<String>, Option<String>);

fn outcome(
    (attempt, status, exit_code, phase): (u32, Status, i32, String),
    containers: Vec<ContainerParts>,
    log_tail: Vec<String>,
    result: Option<String>,
    pod_json: String,
) -> Outcome {
    Outcome {
        attempt,
        status,
        exit_code,
        phase,
        containers: containers
            .into_iter()
            .map(|(name, role, exit_code, reason, message)| ContainerOutcome {
                name,
                role,
                exit_code,
                reason,
                message,
            })
            .collect(),
        log_tail,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        pod_json,
    }
}

pub mod mutator {
    wit_bindgen::generate!({
        world: "kpo:plugin/mutator-plugin@0.2.0",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "kpo_plugin::__bindings::mutator",
    });
    typed!();

    pub fn call<M: crate::Mutator>(pod: String, c: wit::Context) -> Result<wit::Mutated, String> {
        let context = context::<M>(c)?;
        let mut pod = crate::Pod::parse(&pod)?;
        let warnings = M::mutate(&mut pod, &context)?;
        Ok(wit::Mutated {
            pod: pod.to_json(),
            warnings,
        })
    }
}

pub mod policy {
    wit_bindgen::generate!({
        world: "kpo:plugin/validator-plugin@0.2.0",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "kpo_plugin::__bindings::policy",
    });
    typed!();

    pub fn call<P: crate::Policy>(pod: String, c: wit::Context) -> wit::Admission {
        let answer = context::<P>(c)
            .and_then(|context| Ok(P::validate(&crate::Pod::parse(&pod)?, &context)));
        match answer {
            Ok(crate::Admission::Accept) => wit::Admission::Accept,
            Ok(crate::Admission::Warn(w)) => wit::Admission::Warn(w),
            Ok(crate::Admission::Refuse(r)) | Err(r) => wit::Admission::Refuse(r),
        }
    }
}

pub mod interpreter {
    wit_bindgen::generate!({
        world: "kpo:plugin/interpreter-plugin@0.2.0",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "kpo_plugin::__bindings::interpreter",
    });
    typed!();

    pub fn call<I: crate::Interpreter>(o: wit::Outcome, c: wit::Context) -> wit::Judgement {
        let judgement = match context::<I>(c) {
            Ok(context) => I::interpret(&outcome(o), &context),
            Err(e) => crate::Verdict::Failure(e).into(),
        };
        wit::Judgement {
            verdict: match judgement.verdict {
                crate::Verdict::Success => wit::Verdict::Success,
                crate::Verdict::Failure(r) => wit::Verdict::Failure(r),
                crate::Verdict::Skip(r) => wit::Verdict::Skip(r),
                crate::Verdict::Retry(r) => wit::Verdict::Retry(r),
            },
            outputs: judgement.outputs.map(|o| o.to_string()),
        }
    }
}

pub mod settings {
    wit_bindgen::generate!({
        world: "kpo:plugin-sdk/settings",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "kpo_plugin::__bindings::settings",
    });

    /// The config read into the plugin's type, then checked by the plugin.
    pub fn check<P: super::Plugin>(config: String) -> Result<(), String> {
        P::check_config(&crate::config::parse::<P::Config>(&config)?)
    }
}
