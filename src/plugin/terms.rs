//! kpo's words for a run and the contract's, one for one: each table is the only place a
//! status or a role is translated, in either direction, and to the names 0.1.0 and the run
//! report use (`never_started`, `native_sidecar`).

use super::wit;
use crate::vocabulary::{Outcome, Role};

const STATUSES: [(Outcome, wit::Status); 7] = [
    (Outcome::Succeeded, wit::Status::Succeeded),
    (Outcome::Failed, wit::Status::Failed),
    (Outcome::NeverStarted, wit::Status::NeverStarted),
    (Outcome::TimedOut, wit::Status::TimedOut),
    (Outcome::Rejected, wit::Status::Rejected),
    (Outcome::Refused, wit::Status::Refused),
    (Outcome::Interrupted, wit::Status::Interrupted),
];

const ROLES: [(Role, wit::Role); 4] = [
    (Role::Main, wit::Role::Main),
    (Role::Sidecar, wit::Role::Sidecar),
    (Role::Init, wit::Role::Init),
    (Role::NativeSidecar, wit::Role::NativeSidecar),
];

pub fn status(outcome: Outcome) -> wit::Status {
    STATUSES
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or(wit::Status::Failed, |(_, s)| *s)
}

/// The report's name of a status (`never_started`).
pub fn status_name(status: wit::Status) -> &'static str {
    STATUSES
        .iter()
        .find(|(_, s)| *s == status)
        .map_or("failed", |(o, _)| o.name())
}

/// The status the report calls `name`.
pub fn status_named(name: &str) -> Option<wit::Status> {
    STATUSES.iter().find(|(o, _)| o.name() == name).map(|(_, s)| *s)
}

pub fn role(role: Role) -> wit::Role {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map_or(wit::Role::Sidecar, |(_, w)| *w)
}

/// The report's name of a role (`native_sidecar`).
pub fn role_name(role: wit::Role) -> &'static str {
    ROLES
        .iter()
        .find(|(_, w)| *w == role)
        .map_or("sidecar", |(r, _)| r.name())
}

/// The role the report calls `name`.
pub fn role_named(name: &str) -> Option<wit::Role> {
    ROLES.iter().find(|(r, _)| r.name() == name).map(|(_, w)| *w)
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
