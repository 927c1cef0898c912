//! The pod's everyday fields given inline — networking, DNS, scheduling, the service account
//! token, the main container's ports and termination message policy — checked as the API server
//! would, so a mistake is located in the task file rather than answered with a 422.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};

use super::locate::KeyPath;
use super::raw::RawTask;
use crate::names;

/// What the task sets of the pod's own spec, for the builder to lay over the template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodFields {
    /// Only the fields given inline are set.
    pub spec: PodSpec,
    pub ports: Vec<ContainerPort>,
    pub termination_message_policy: Option<String>,
}

const DNS_POLICIES: [&str; 4] = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
const MESSAGE_POLICIES: [&str; 2] = ["File", "FallbackToLogsOnError"];

/// Takes the inline pod fields out of `raw`, checked.
pub fn pod_fields(raw: &mut RawTask, bad: &mut impl FnMut(KeyPath, String)) -> PodFields {
    let at = |k: &str| KeyPath::default().key(k);
    let one_of = |value: &str, allowed: &[&str]| -> Result<(), String> {
        match allowed.contains(&value) {
            true => Ok(()),
            false => Err(format!("`{value}` is not one of {}", allowed.join(", "))),
        }
    };
    if let Some(p) = &raw.dns_policy {
        if let Err(m) = one_of(p, &DNS_POLICIES) {
            bad(at("dns_policy"), m);
        } else if p == "None"
            && raw
                .dns_config
                .as_ref()
                .is_none_or(|c| c.nameservers.iter().flatten().next().is_none())
        {
            bad(
                at("dns_config"),
                "dns_policy = \"None\" needs dns_config with at least one of `nameservers`".into(),
            );
        }
    }
    for (field, value) in [("hostname", &raw.hostname), ("subdomain", &raw.subdomain)] {
        if let Some(v) = value
            && let Err(m) = names::check_dns_label(v)
        {
            bad(at(field), m);
        }
    }
    for (i, alias) in raw.host_aliases.iter().flatten().enumerate() {
        if alias.ip.parse::<std::net::IpAddr>().is_err() {
            bad(
                at("host_aliases").index(i).key("ip"),
                format!("`{}` is not an IP address", alias.ip),
            );
        }
    }
    for (field, value) in [
        ("priority_class_name", &raw.priority_class_name),
        ("runtime_class_name", &raw.runtime_class_name),
    ] {
        if let Some(v) = value
            && let Err(m) = names::check_dns_subdomain(v)
        {
            bad(at(field), m);
        }
    }
    if let Some(p) = &raw.termination_message_policy
        && let Err(m) = one_of(p, &MESSAGE_POLICIES)
    {
        bad(at("termination_message_policy"), m);
    }
    let ports = raw.ports.take().unwrap_or_default();
    let mut names_seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = at("ports").index(i);
        if !(1..=65535).contains(&port.container_port) {
            bad(
                key.clone().key("containerPort"),
                format!("{} is not a port number (1-65535)", port.container_port),
            );
        }
        if let Some(protocol) = &port.protocol
            && let Err(m) = one_of(protocol, &PROTOCOLS)
        {
            bad(key.clone().key("protocol"), m);
        }
        if let Some(name) = &port.name {
            if let Err(m) = names::check_port_name(name) {
                bad(key.clone().key("name"), m);
            } else if !names_seen.insert(name.clone()) {
                bad(key.key("name"), format!("port name `{name}` is used twice"));
            }
        }
    }
    PodFields {
        spec: PodSpec {
            host_network: raw.host_network,
            dns_policy: raw.dns_policy.take(),
            dns_config: raw.dns_config.take(),
            hostname: raw.hostname.take(),
            subdomain: raw.subdomain.take(),
            host_aliases: raw.host_aliases.take(),
            priority_class_name: raw.priority_class_name.take(),
            scheduler_name: raw.scheduler_name.take(),
            runtime_class_name: raw.runtime_class_name.take(),
            automount_service_account_token: raw.automount_service_account_token,
            ..Default::default()
        },
        ports,
        termination_message_policy: raw.termination_message_policy.take(),
    }
}
