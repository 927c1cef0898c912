//! The pod as a plugin sees it: typed through k8s-openapi, with the JSON kpo sent kept beside
//! it, so that a field k8s-openapi does not know (a newer cluster's) survives a mutation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod as KubePod};
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::image::ImageRef;

/// Where a container runs in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `spec.initContainers`: runs to completion before the others (or beside them, with
    /// `restartPolicy: Always`).
    Init,
    /// `spec.containers`: the task's own and its sidecars.
    App,
}

/// A pod, typed, and the JSON it was read from.
#[derive(Debug, Clone)]
pub struct Pod {
    typed: KubePod,
    json: String,
}

impl Pod {
    /// Reads a pod as kpo passes it (Kubernetes JSON), once, into the typed pod.
    pub fn parse(json: &str) -> Result<Self, String> {
        let typed = read(json).map_err(|e| match serde_json::from_str::<IgnoredAny>(json) {
            Err(e) => format!("the pod is not JSON: {e}"),
            Ok(_) => format!("the JSON is not a Pod: {e}"),
        })?;
        Ok(Self {
            typed,
            json: json.to_owned(),
        })
    }

    pub fn typed(&self) -> &KubePod {
        &self.typed
    }

    /// The typed pod to change; [`Pod::to_json`] gives back the changes, and every field of the
    /// JSON it was read from that k8s-openapi does not know.
    pub fn typed_mut(&mut self) -> &mut KubePod {
        &mut self.typed
    }

    /// The JSON the pod was read from, unchanged.
    pub fn raw(&self) -> &str {
        &self.json
    }

    /// The pod as JSON: the typed pod, with the fields k8s-openapi does not know put back from
    /// the JSON it was read from, where their object still exists.
    pub fn to_value(&self) -> Value {
        match self.understood() {
            Some(understood) => self.restored(&understood),
            None => as_value(&self.typed),
        }
    }

    /// [`Pod::to_value`] as text: written straight from the typed pod where nothing is to be
    /// restored.
    pub fn to_json(&self) -> String {
        match self.understood() {
            Some(understood) => self.restored(&understood).to_string(),
            None => written(&self.typed),
        }
    }

    /// The typed pod with what k8s-openapi did not keep of the JSON (`understood` is that JSON
    /// as k8s-openapi read it) put back.
    fn restored(&self, understood: &KubePod) -> Value {
        let mut out = as_value(&self.typed);
        let raw: Value = serde_json::from_str(&self.json).unwrap_or(Value::Null);
        restore_unknown(&mut out, &raw, &as_value(understood));
        out
    }

    /// The JSON as k8s-openapi read it, where that lost something: `None` when k8s-openapi writes
    /// what it read byte for byte. kpo writes its pods with k8s-openapi, so a plugin built on the
    /// same version of it gets `None` at the cost of one more read; any other JSON is compared
    /// field by field (see [`restore_unknown`]).
    fn understood(&self) -> Option<KubePod> {
        let understood = read(&self.json).ok()?;
        (written(&understood) != self.json).then_some(understood)
    }

    /// Every container, init containers first, in the pod's order.
    pub fn containers(&self) -> impl Iterator<Item = (Kind, &Container)> {
        let spec = self.typed.spec.as_ref();
        let init = spec.and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
        let app = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        init.iter()
            .map(|c| (Kind::Init, c))
            .chain(app.iter().map(|c| (Kind::App, c)))
    }

    /// Every container, to change, init containers first.
    pub fn containers_mut(&mut self) -> impl Iterator<Item = (Kind, &mut Container)> {
        let spec = self.typed.spec.get_or_insert_with(Default::default);
        let init = spec.init_containers.as_deref_mut().unwrap_or_default();
        init.iter_mut()
            .map(|c| (Kind::Init, c))
            .chain(spec.containers.iter_mut().map(|c| (Kind::App, c)))
    }

    /// Every container with its image read as a runtime reads it (`Err` for one no runtime
    /// would pull).
    pub fn images(&self) -> impl Iterator<Item = (Kind, &Container, Result<ImageRef, String>)> {
        self.containers().map(|(kind, c)| {
            let image = ImageRef::parse(c.image.as_deref().unwrap_or_default());
            (kind, c, image)
        })
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.typed.metadata.labels.as_ref().unwrap_or(empty())
    }

    pub fn annotations(&self) -> &BTreeMap<String, String> {
        self.typed.metadata.annotations.as_ref().unwrap_or(empty())
    }

    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let labels = self.typed.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(key.into(), value.into());
    }

    pub fn set_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let annotations = self.typed.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(key.into(), value.into());
    }
}

// The pod's types are most of a plugin's code: each is read through one deserializer and written
// through one serializer only (each other one would compile all of k8s-openapi's code for a pod
// again into the component).

fn read(json: &str) -> Result<KubePod, serde_json::Error> {
    serde_json::from_str(json)
}

fn written(typed: &KubePod) -> String {
    serde_json::to_string(typed).unwrap_or_default()
}

fn as_value(typed: &KubePod) -> Value {
    serde_json::from_str(&written(typed)).unwrap_or(Value::Null)
}

fn empty() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

/// Puts into `out` what `raw` holds and `understood` (`raw` read and written by k8s-openapi)
/// lost. Lists are matched by their items' `name` (containers, volumes, env), else by position
/// while their length is unchanged.
fn restore_unknown(out: &mut Value, raw: &Value, understood: &Value) {
    match (out, raw) {
        (Value::Object(out), Value::Object(raw)) => {
            for (key, value) in raw {
                match understood.get(key) {
                    None => {
                        out.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                    Some(known) => {
                        if let Some(target) = out.get_mut(key) {
                            restore_unknown(target, value, known);
                        }
                    }
                }
            }
        }
        (Value::Array(out), Value::Array(raw)) => {
            let Some(understood) = understood.as_array().filter(|u| u.len() == raw.len()) else {
                return;
            };
            let by_position = out.len() == raw.len();
            for (i, (item, known)) in raw.iter().zip(understood).enumerate() {
                let target = match item.get("name") {
                    Some(name) => out.iter_mut().find(|o| o.get("name") == Some(name)),
                    None if by_position => out.get_mut(i),
                    None => None,
                };
                if let Some(target) = target {
                    restore_unknown(target, item, known);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: Value) -> Pod {
        Pod::parse(&value.to_string()).unwrap()
    }

    #[test]
    fn fields_k8s_openapi_does_not_know_survive_a_change() {
        let mut p = pod(json!({
            "metadata": {"name": "a", "futureMeta": 1},
            "spec": {
                "futureSpec": {"x": true},
                "containers": [
                    {"name": "base", "image": "busybox:1.36", "futureField": "kept"},
                    {"name": "side", "image": "busybox:1.36"}
                ]
            }
        }));
        assert!(p.understood().is_some(), "lossy");
        p.set_label("team", "data");
        // The first container goes to the end: its unknown field follows it by name.
        let spec = p.typed_mut().spec.as_mut().unwrap();
        spec.containers.rotate_left(1);
        let out = p.to_value();
        assert_eq!(out["metadata"]["labels"]["team"], "data");
        assert_eq!(out["metadata"]["futureMeta"], 1);
        assert_eq!(out["spec"]["futureSpec"], json!({"x": true}));
        assert_eq!(out["spec"]["containers"][1]["name"], "base");
        assert_eq!(out["spec"]["containers"][1]["futureField"], "kept");
        assert!(out["spec"]["containers"][0].get("futureField").is_none());
    }

    #[test]
    fn a_pod_k8s_openapi_knows_whole_is_written_as_changed() {
        // As kpo sends it: written by k8s-openapi.
        let value = json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "base"}]}});
        let mut p = Pod::parse(&written(&read(&value.to_string()).unwrap())).unwrap();
        assert!(p.understood().is_none(), "written as read");
        p.set_label("team", "data");
        let out: Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(out, p.to_value());
        assert_eq!(out["metadata"], json!({"name": "a", "labels": {"team": "data"}}));
        // The same pod in another order of fields is compared field by field, to the same end.
        let mut q = pod(value);
        assert!(q.understood().is_some());
        q.set_label("team", "data");
        assert_eq!(q.to_value(), out);
    }

    #[test]
    fn a_field_the_plugin_removed_stays_removed() {
        let mut p = pod(json!({"spec": {"hostNetwork": true, "containers": []}}));
        p.typed_mut().spec.as_mut().unwrap().host_network = None;
        assert!(p.to_value()["spec"].get("hostNetwork").is_none());
    }

    #[test]
    fn every_container_and_its_image_init_first() {
        let p = pod(json!({"spec": {
            "initContainers": [{"name": "fetch", "image": "alpine"}],
            "containers": [{"name": "base", "image": "registry.example.com/app:2"}]
        }}));
        let seen: Vec<_> = p
            .images()
            .map(|(kind, c, image)| (kind, c.name.clone(), image.unwrap().registry))
            .collect();
        assert_eq!(
            seen,
            [
                (Kind::Init, "fetch".into(), "docker.io".into()),
                (Kind::App, "base".into(), "registry.example.com".into())
            ]
        );
    }

    #[test]
    fn what_is_not_a_pod_is_an_error() {
        assert!(Pod::parse("[").unwrap_err().starts_with("the pod is not JSON"));
        assert!(Pod::parse(r#"{"spec": 3}"#).unwrap_err().starts_with("the JSON is not a Pod"));
        assert!(Pod::parse(r#"{"spec": {}} x"#).unwrap_err().starts_with("the pod is not JSON"));
    }
}
