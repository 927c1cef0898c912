//! Which pods are a run's: the ones its supervisor made, as it recorded them in the run's Lease.
//!
//! Labels say what a pod claims to be, and anyone who can create a pod can write them. So a pod
//! labelled with a run's id is that run's — followed, reported, deleted, garbage-collected or
//! swept as the run's — only when the run's record holds it: by UID once kpo created it, by name
//! while it is being created (the name is recorded before the create is sent, so that a kpo
//! stopped in between leaves a pod its successor can still recognise). The record lives in the
//! [`ANNOTATION`] of the run's Lease (a batch's for its members), which only a writer of Leases
//! can change; this machine's journal, which names the pod by UID, counts as a record too.
//!
//! The Lease outlives the claim while a recorded pod may still exist: released, it names those
//! pods as its owners, so the cluster's garbage collector removes it with the last of them.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

/// The Lease annotation holding the record: one `namespace/name/uid` per pod, space-separated,
/// the UID empty while the pod is being created.
pub const ANNOTATION: &str = "kpo.dev/pods";

/// One pod of the run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub namespace: String,
    pub name: String,
    /// `None` while the pod is being created.
    pub uid: Option<String>,
}

impl Entry {
    /// A pod about to be created.
    pub fn creating(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: None,
        }
    }

    /// A pod that exists.
    pub fn created(pod: &Pod) -> Self {
        Self {
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            uid: pod.uid(),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('/');
        let (namespace, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || namespace.is_empty() || name.is_empty() {
            return None;
        }
        Some(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: (!uid.is_empty()).then(|| uid.to_owned()),
        })
    }

    fn text(&self) -> String {
        format!(
            "{}/{}/{}",
            self.namespace,
            self.name,
            self.uid.as_deref().unwrap_or_default()
        )
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

/// The pods a run's supervisors made and may not have seen gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record(Vec<Entry>);

impl Record {
    /// The record `lease` holds (entries that do not parse are no one's).
    pub fn of(lease: &Lease) -> Self {
        let text = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .map_or("", String::as_str);
        Self(text.split_whitespace().filter_map(Entry::parse).collect())
    }

    /// Writes this record into `lease`.
    pub fn put(&self, lease: &mut Lease) {
        let annotations = lease.metadata.annotations.get_or_insert_with(Default::default);
        if self.0.is_empty() {
            annotations.remove(ANNOTATION);
        } else {
            let text: Vec<String> = self.0.iter().map(Entry::text).collect();
            annotations.insert(ANNOTATION.to_owned(), text.join(" "));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `entry` is recorded as it is (a pod being created stays so until its UID is).
    pub fn has(&self, entry: &Entry) -> bool {
        self.0.contains(entry)
    }

    /// Records `entry`, replacing what was recorded under its name.
    pub fn add(&mut self, entry: Entry) {
        match self.0.iter_mut().find(|e| e.is(&entry.namespace, &entry.name)) {
            Some(known) => *known = entry,
            None => self.0.push(entry),
        }
    }

    /// Records each of `entries`.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for entry in entries {
            self.add(entry);
        }
    }

    /// Forgets the pod `namespace/name`: it is gone, or was never created.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.0.retain(|e| !e.is(namespace, name));
    }

    /// Whether `pod` is one of the run's: its UID is recorded, or its name is recorded as being
    /// created.
    pub fn holds(&self, pod: &Pod) -> bool {
        let (namespace, name, uid) = (pod.namespace().unwrap_or_default(), pod.name_any(), pod.uid());
        self.0
            .iter()
            .any(|e| e.is(&namespace, &name) && (e.uid.is_none() || e.uid == uid) && uid.is_some())
    }

    /// The recorded pods, for those who act on each (a batch's sweep).
    pub fn entries(&self) -> &[Entry] {
        &self.0
    }

    /// The recorded pods of `namespace` as owners of the Lease there: once the last of them is
    /// gone, the garbage collector removes the Lease. Pods of other namespaces cannot own it.
    pub fn owners(&self, namespace: &str) -> Vec<OwnerReference> {
        self.0
            .iter()
            .filter(|e| e.namespace == namespace)
            .filter_map(|e| {
                Some(OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: e.name.clone(),
                    uid: e.uid.clone()?,
                    ..Default::default()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid}
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_is_held_by_its_uid_or_while_created_by_its_name() {
        let mut record = Record::default();
        record.add(Entry::creating("ns", "a"));
        assert!(record.holds(&pod("a", "u1")), "being created: any UID");
        record.add(Entry::created(&pod("a", "u1")));
        assert!(record.holds(&pod("a", "u1")));
        assert!(!record.holds(&pod("a", "u2")), "a later pod of that name");
        assert!(!record.holds(&pod("b", "u1")));
        record.forget("ns", "a");
        assert!(record.is_empty());
    }

    #[test]
    fn the_record_survives_the_lease_and_ignores_what_does_not_parse() {
        let mut record = Record::default();
        record.add(Entry::created(&pod("a", "u1")));
        record.add(Entry::creating("other", "b"));
        let mut lease = Lease::default();
        record.put(&mut lease);
        assert_eq!(lease.annotations()[ANNOTATION], "ns/a/u1 other/b/");
        assert_eq!(Record::of(&lease), record);
        lease
            .annotations_mut()
            .insert(ANNOTATION.into(), "ns/a/u1 junk /x/y a/b/c/d".into());
        assert_eq!(Record::of(&lease).entries().len(), 1);
        let owners = record.owners("ns");
        assert_eq!(
            owners
                .iter()
                .map(|o| (o.name.as_str(), o.uid.as_str()))
                .collect::<Vec<_>>(),
            [("a", "u1")],
            "only created pods of the Lease's namespace own it"
        );
    }
}
