//! The machine as this kpo process finds it, resolved once: the only place kpo reads its
//! environment variables (`KPO_STATE_DIR`, `KPO_CACHE_DIR`, `KPO_CONFIG_DIR`, `HOSTNAME`) and
//! knows the machine's fixed paths (`/etc/kpo`).

use std::path::PathBuf;
use std::sync::LazyLock;

use crate::machine::Machine;

/// The machine's policy folder. Fixed, not configurable by environment: only who may write
/// there can change it.
pub const MACHINE_POLICIES: &str = "/etc/kpo/policies.d";
/// The machine's settings file (its `[grants]`). Fixed, like the policy folder.
pub const MACHINE_SETTINGS: &str = "/etc/kpo/settings.toml";

static THIS: LazyLock<Machine> = LazyLock::new(resolve);

/// This machine, as it was when kpo first asked.
pub fn this() -> &'static Machine {
    &THIS
}

fn resolve() -> Machine {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let state_dir = var("KPO_STATE_DIR")
        .or_else(|| dirs::state_dir().map(|d| d.join("kpo")))
        .or_else(|| dirs::data_local_dir().map(|d| d.join("kpo")))
        .unwrap_or_else(|| std::env::temp_dir().join("kpo"));
    let cache_dir =
        var("KPO_CACHE_DIR").or_else(|| dirs::cache_dir().map(|d| d.join("kpo").join("components")));
    let user_policies = var("KPO_CONFIG_DIR")
        .or_else(|| dirs::config_dir().map(|d| d.join("kpo")))
        .map(|d| d.join("policies.d"));
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    Machine {
        state_dir,
        cache_dir,
        machine_policies: Some(PathBuf::from(MACHINE_POLICIES)),
        user_policies,
        settings: Some(PathBuf::from(MACHINE_SETTINGS)),
        hostname,
        // A variable that is not Unicode cannot be passed to a guest (`std::env::vars` would
        // panic on it): it is left out.
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    }
}
