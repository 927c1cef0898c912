//! The fields of a pod that are kpo's own: what it relies on after the pod is submitted, so no
//! mutator may change them. Its labels and annotations (the `kpo.dev/` prefix and
//! `app.kubernetes.io/managed-by`: kpo finds, follows, sweeps and garbage-collects its pods by
//! them), the pod's name and namespace, `restartPolicy` (a restarted container would end the run
//! twice), finalizers and ownerReferences (either would let something else decide when the pod
//! goes), the result channel (the sidecar, its volume and mount, the main container's
//! termination message), and `activeDeadlineSeconds` — the dead-man switch, which a mutator may
//! lower but never raise or remove.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::names::reserved;
use crate::pod::LABEL_MANAGED_BY;
use crate::result::SIDECAR;
use crate::vocabulary::MAIN_CONTAINER;

/// A field of kpo's that a change touched: where, and why it is kpo's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// A JSON pointer, or where there is none (a container found by name) a description.
    pub field: String,
    pub why: &'static str,
}

/// The first field of kpo's that differs between `before` and `after` (pods as JSON).
pub fn touched(before: &Value, after: &Value) -> Option<Touched> {
    let (was, now) = (fields(before), fields(after));
    let differs = was
        .iter()
        .find(|(k, v)| now.get(*k) != Some(v))
        .or_else(|| now.iter().find(|(k, _)| !was.contains_key(*k)));
    if let Some((field, (_, why))) = differs {
        return Some(Touched {
            field: field.clone(),
            why,
        });
    }
    let deadline = |pod: &Value| pod.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_i64);
    match (deadline(before), deadline(after)) {
        (Some(was), now) if now.is_none_or(|now| now > was) => Some(Touched {
            field: "/spec/activeDeadlineSeconds".into(),
            why: "the pod's deadline stops it if kpo is gone: a mutator may lower it, never raise or remove it",
        }),
        _ => None,
    }
}

/// Every field of kpo's that `pod` has (or lacks: `null`), with why it is kpo's.
/// Borrowed from the pod, not copied: a mutator's output is checked on every call.
fn fields<'a>(pod: &'a Value) -> BTreeMap<String, (&'a Value, &'static str)> {
    static NULL: Value = Value::Null;
    let mut all = BTreeMap::new();
    let mut own = |field: String, value: Option<&'a Value>, why: &'static str| {
        all.insert(field, (value.unwrap_or(&NULL), why));
    };
    const IDENTITY: &str = "it identifies the run";
    for (pointer, why) in [
        ("/metadata/name", IDENTITY),
        ("/metadata/namespace", IDENTITY),
        ("/spec/restartPolicy", "kpo runs each attempt's containers once"),
        (
            "/metadata/finalizers",
            "a finalizer would keep the pod after kpo deletes it",
        ),
        (
            "/metadata/ownerReferences",
            "an owner would decide when the pod goes, not kpo",
        ),
    ] {
        own(pointer.into(), pod.pointer(pointer), why);
    }
    for (map, why) in [
        (
            "labels",
            "kpo finds and follows its pods by their kpo.dev/ labels",
        ),
        ("annotations", "kpo acts on its kpo.dev/ annotations"),
    ] {
        let keys = pod["metadata"][map].as_object().into_iter().flatten();
        for (key, value) in keys.filter(|(k, _)| reserved(k) || (map == "labels" && *k == LABEL_MANAGED_BY)) {
            let escaped = key.replace('~', "~0").replace('/', "~1");
            own(format!("/metadata/{map}/{escaped}"), Some(value), why);
        }
    }
    const RESULT: &str = "it carries the task's result back";
    let named = |list: &str, name: &str| {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
    };
    own(
        format!("the result sidecar (container {SIDECAR})"),
        named("containers", SIDECAR),
        RESULT,
    );
    own(
        format!("the result volume (volume {SIDECAR})"),
        named("volumes", SIDECAR),
        RESULT,
    );
    let main = named("containers", MAIN_CONTAINER).unwrap_or(&NULL);
    for key in ["terminationMessagePath", "terminationMessagePolicy"] {
        own(
            format!("{key} of container {MAIN_CONTAINER}"),
            main.get(key),
            RESULT,
        );
    }
    let mount = main["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == SIDECAR);
    own(
        format!("the result mount of container {MAIN_CONTAINER}"),
        mount,
        RESULT,
    );
    all
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::touched;

    fn pod() -> serde_json::Value {
        json!({
            "metadata": {"name": "p", "namespace": "ns",
                "labels": {"kpo.dev/run-id": "r", "team": "a"},
                "annotations": {"kpo.dev/on-finish": "delete"}},
            "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 60,
                "containers": [{"name": "base", "terminationMessagePath": "/out/result.json"}]}
        })
    }

    fn field_after(change: impl FnOnce(&mut serde_json::Value)) -> Option<String> {
        let before = pod();
        let mut after = before.clone();
        change(&mut after);
        touched(&before, &after).map(|t| t.field)
    }

    #[test]
    fn owned_fields_are_named() {
        fn remove(p: &mut serde_json::Value, key: &str) {
            p.as_object_mut().unwrap().remove(key);
        }
        type Change = fn(&mut serde_json::Value);
        let cases: [(&str, Change); 8] = [
            ("/metadata/labels/kpo.dev~1attempt", |p| {
                p["metadata"]["labels"]["kpo.dev/attempt"] = json!("9")
            }),
            ("/metadata/labels/kpo.dev~1run-id", |p| {
                remove(&mut p["metadata"]["labels"], "kpo.dev/run-id")
            }),
            ("/metadata/annotations/kpo.dev~1on-finish", |p| {
                p["metadata"]["annotations"]["kpo.dev/on-finish"] = json!("keep")
            }),
            ("/spec/restartPolicy", |p| {
                p["spec"]["restartPolicy"] = json!("Always")
            }),
            ("/metadata/finalizers", |p| {
                p["metadata"]["finalizers"] = json!(["x/y"])
            }),
            ("/spec/activeDeadlineSeconds", |p| {
                p["spec"]["activeDeadlineSeconds"] = json!(61)
            }),
            ("/spec/activeDeadlineSeconds", |p| {
                remove(&mut p["spec"], "activeDeadlineSeconds")
            }),
            ("terminationMessagePath of container base", |p| {
                p["spec"]["containers"][0]["terminationMessagePath"] = json!("/x")
            }),
        ];
        for (field, change) in cases {
            assert_eq!(field_after(change).as_deref(), Some(field));
        }
    }

    #[test]
    fn everything_else_is_the_mutators() {
        assert_eq!(
            field_after(|p| p["metadata"]["labels"]["team"] = json!("b")),
            None
        );
        assert_eq!(
            field_after(|p| p["spec"]["activeDeadlineSeconds"] = json!(30)),
            None
        );
        assert_eq!(
            field_after(|p| p["spec"]["containers"][0]["image"] = json!("busybox")),
            None
        );
    }
}
