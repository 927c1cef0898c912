//! `[[volumes]]`: each volume's one source, and where it is mounted — the main container by
//! `mount_path`, any container of the task, any number of times, by `mounts`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::locate::KeyPath;
use super::raw::{RawMount, RawVolume};
use crate::names;
use crate::vocabulary::MAIN_CONTAINER;

/// The sources a volume may have, by their task-file names.
const SOURCES: &str = "`config_map`, `secret`, `empty_dir`, `persistent_volume_claim`, `host_path`, `nfs`, `csi`, `projected`, `downward_api`, `ephemeral`";

/// Checks the volumes and places their mounts: the main container's are returned, the others
/// added to the task's sidecars and init containers by name. One source per volume, unique
/// names, absolute paths, no path mounted twice in one container.
pub fn volumes(
    raw: Vec<RawVolume>,
    others: &mut [&mut Vec<Container>],
    bad: &mut impl FnMut(KeyPath, String),
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut main_mounts = Vec::new();
    let mut names_seen = BTreeSet::new();
    let mut paths_seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, mut v) in raw.into_iter().enumerate() {
        let key = KeyPath::default().key("volumes").index(i);
        if let Err(m) = names::check_dns_label(&v.name) {
            bad(key.clone().key("name"), m);
        }
        if !names_seen.insert(v.name.clone()) {
            bad(
                key.clone().key("name"),
                format!("volume `{}` is defined twice", v.name),
            );
        }
        let main = v.mount_path.clone().map(|path| RawMount {
            path,
            container: None,
            sub_path: v.sub_path.clone(),
            read_only: v.read_only,
        });
        let mounts: Vec<(KeyPath, RawMount)> = main
            .map(|m| (key.clone().key("mount_path"), m))
            .into_iter()
            .chain(
                std::mem::take(&mut v.mounts)
                    .into_iter()
                    .enumerate()
                    .map(|(j, m)| (key.clone().key("mounts").index(j), m)),
            )
            .collect();
        let name = v.name.clone();
        volumes.push(source(v, &key, bad));
        for (at, m) in mounts {
            if !m.path.starts_with('/') {
                bad(at, format!("`{}` must be an absolute path", m.path));
                continue;
            }
            let container = m.container.unwrap_or_else(|| MAIN_CONTAINER.to_owned());
            if !paths_seen.insert((container.clone(), m.path.clone())) {
                bad(
                    at,
                    format!("`{}` is mounted twice in container `{container}`", m.path),
                );
                continue;
            }
            let mount = VolumeMount {
                name: name.clone(),
                mount_path: m.path,
                sub_path: m.sub_path,
                read_only: m.read_only,
                ..Default::default()
            };
            if container == MAIN_CONTAINER {
                main_mounts.push(mount);
                continue;
            }
            let target = others
                .iter_mut()
                .flat_map(|list| list.iter_mut())
                .find(|c| c.name == container);
            match target {
                Some(c) => c.volume_mounts.get_or_insert_with(Vec::new).push(mount),
                None => bad(
                    at.key("container"),
                    format!(
                        "no container named `{container}` in this task's sidecars or init_containers (nor `{MAIN_CONTAINER}`, the main one)"
                    ),
                ),
            }
        }
    }
    (volumes, main_mounts)
}

/// The volume with its one source.
fn source(v: RawVolume, key: &KeyPath, bad: &mut impl FnMut(KeyPath, String)) -> Volume {
    let sources = [
        v.config_map.is_some(),
        v.secret.is_some(),
        v.empty_dir.is_some(),
        v.persistent_volume_claim.is_some(),
        v.host_path.is_some(),
        v.nfs.is_some(),
        v.csi.is_some(),
        v.projected.is_some(),
        v.downward_api.is_some(),
        v.ephemeral.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        bad(key.clone(), format!("needs exactly one of {SOURCES}"));
    }
    if let Some(h) = &v.host_path
        && !h.path.starts_with('/')
    {
        bad(
            key.clone().key("host_path").key("path"),
            format!("`{}` must be an absolute path", h.path),
        );
    }
    let empty_dir = v.empty_dir.map(|e| {
        if let Some(q) = &e.size_limit
            && let Err(m) = names::check_quantity(q)
        {
            bad(key.clone().key("empty_dir").key("size_limit"), m);
        }
        EmptyDirVolumeSource {
            medium: e.medium,
            size_limit: e.size_limit.map(Quantity),
        }
    });
    Volume {
        name: v.name,
        config_map: v.config_map.map(|name| ConfigMapVolumeSource {
            name,
            ..Default::default()
        }),
        secret: v.secret.map(|name| SecretVolumeSource {
            secret_name: Some(name),
            ..Default::default()
        }),
        persistent_volume_claim: v.persistent_volume_claim.map(|claim_name| {
            PersistentVolumeClaimVolumeSource {
                claim_name,
                read_only: v.read_only,
            }
        }),
        empty_dir,
        host_path: v.host_path,
        nfs: v.nfs,
        csi: v.csi,
        projected: v.projected,
        downward_api: v.downward_api,
        ephemeral: v.ephemeral,
        ..Default::default()
    }
}
