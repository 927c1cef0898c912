//! Speaking `kpo:plugin@0.1.0` to the components built against it: kpo thinks in 0.2.0 and
//! translates at the boundary — enums become the strings 0.1.0 used, what 0.1.0 had no field
//! for is left out, and a 0.1.0 answer becomes the 0.2.0 one that means the same.

use super::bindings::{v1, v2};
use super::terms::{role_name, status_name};
use v1::kpo::plugin::types as old;
use v2::kpo::plugin::types as new;

/// 0.1.0 had no earlier attempts: the context without them.
pub fn context(ctx: &new::Context) -> old::Context {
    old::Context {
        task: ctx.task.clone(),
        namespace: ctx.namespace.clone(),
        run_id: ctx.run_id.clone(),
        attempt: ctx.attempt,
        config: ctx.config.clone(),
    }
}

/// 0.1.0 named the status and the roles with strings (`never_started`, `native_sidecar`).
pub fn outcome(o: &new::Outcome) -> old::Outcome {
    old::Outcome {
        status: status_name(o.status).into(),
        exit_code: o.exit_code,
        phase: o.phase.clone(),
        containers: o
            .containers
            .iter()
            .map(|c| old::ContainerOutcome {
                name: c.name.clone(),
                role: role_name(c.role).into(),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        log_tail: o.log_tail.clone(),
        result: o.result.clone(),
        pod: o.pod.clone(),
    }
}

/// A 0.1.0 mutator's pod is a 0.2.0 answer without warnings.
pub fn mutated(pod: String) -> new::Mutated {
    new::Mutated {
        pod,
        warnings: Vec::new(),
    }
}

pub fn judgement(j: old::Judgement) -> new::Judgement {
    let verdict = match j.verdict {
        old::Verdict::Success => new::Verdict::Success,
        old::Verdict::Failure(r) => new::Verdict::Failure(r),
        old::Verdict::Skip(r) => new::Verdict::Skip(r),
        old::Verdict::Retry(r) => new::Verdict::Retry(r),
    };
    new::Judgement {
        verdict,
        outputs: j.outputs,
    }
}
