//! kpo's words for a run and the contract's, one for one: each table is the only place a
//! status or a role is translated, in either direction, and to the names 0.1.0 and the run
//! report use (`never_started`, `native_sidecar`).

use super::wit;
use crate::vocabulary::{ContainerRole, Outcome};

const STATUSES: [(Outcome, wit::Status); 7] = [
    (Outcome::Succeeded, wit::Status::Succeeded),
    (Outcome::Failed, wit::Status::Failed),
    (Outcome::NeverStarted, wit::Status::NeverStarted),
    (Outcome::TimedOut, wit::Status::TimedOut),
    (Outcome::Rejected, wit::Status::Rejected),
    (Outcome::Refused, wit::Status::Refused),
    (Outcome::Interrupted, wit::Status::Interrupted),
];

const ROLES: [(ContainerRole, wit::Role); 4] = [
    (ContainerRole::Main, wit::Role::Main),
    (ContainerRole::Sidecar, wit::Role::Sidecar),
    (ContainerRole::Init, wit::Role::Init),
    (ContainerRole::NativeSidecar, wit::Role::NativeSidecar),
];

pub fn status(outcome: Outcome) -> wit::Status {
    right(&STATUSES, outcome).unwrap_or(wit::Status::Failed)
}

/// The report's name of a status (`never_started`).
pub fn status_name(status: wit::Status) -> &'static str {
    left(&STATUSES, status).map_or("failed", Outcome::name)
}

/// The status the report calls `name`.
pub fn status_named(name: &str) -> Option<wit::Status> {
    STATUSES.iter().find(|(o, _)| o.name() == name).map(|(_, s)| *s)
}

/// Every status name the report uses, for a message about one it does not.
pub fn status_names() -> Vec<&'static str> {
    STATUSES.iter().map(|(o, _)| o.name()).collect()
}

pub fn role(role: ContainerRole) -> wit::Role {
    right(&ROLES, role).unwrap_or(wit::Role::Sidecar)
}

/// The report's name of a role (`native_sidecar`).
pub fn role_name(role: wit::Role) -> &'static str {
    left(&ROLES, role).map_or("sidecar", ContainerRole::name)
}

/// The role the report calls `name`.
pub fn role_named(name: &str) -> Option<wit::Role> {
    ROLES.iter().find(|(r, _)| r.name() == name).map(|(_, w)| *w)
}

/// Every role name the report uses.
pub fn role_names() -> Vec<&'static str> {
    ROLES.iter().map(|(r, _)| r.name()).collect()
}

fn right<A: PartialEq + Copy, B: Copy>(table: &[(A, B)], a: A) -> Option<B> {
    table.iter().find(|(x, _)| *x == a).map(|(_, b)| *b)
}

fn left<A: Copy, B: PartialEq + Copy>(table: &[(A, B)], b: B) -> Option<A> {
    table.iter().find(|(_, y)| *y == b).map(|(a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_translates_both_ways() {
        for (outcome, status) in STATUSES {
            assert_eq!(super::status(outcome), status);
            assert_eq!(status_named(status_name(status)), Some(status));
        }
        for (r, w) in ROLES {
            assert_eq!(role(r), w);
            assert_eq!(role_named(role_name(w)), Some(w));
        }
        assert_eq!(status_named("never_started"), Some(wit::Status::NeverStarted));
        assert_eq!(role_named("native_sidecar"), Some(wit::Role::NativeSidecar));
        assert_eq!(status_named("lost"), None);
    }
}
