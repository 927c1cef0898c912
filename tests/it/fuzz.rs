//! Property tests, run for a bounded number of cases on every `cargo test`: the task-file
//! parser and the check of mutator output never panic, and what they accept keeps its promises.

use std::path::Path;

use kpo::pod::{LABEL_RUN_ID, RunIdentity};
use kpo::task::TaskError;
use proptest::prelude::*;

const VALID: &str = include_str!("../../examples/etl.toml");

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every rejection names the file and a real position.
fn assert_well_formed(result: Result<kpo::task::Task, TaskError>) {
    if let Err(TaskError::Invalid { file, problems }) = result {
        assert_eq!(file, Path::new("fuzz.toml"));
        assert!(!problems.is_empty());
        for p in problems {
            assert!(p.line >= 1 && p.column >= 1, "{p:?}");
            assert!(!p.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".{0,400}") {
        assert_well_formed(kpo::task::parse(&text, Path::new("fuzz.toml")));
    }

    #[test]
    fn a_damaged_task_file_is_rejected_or_still_builds_a_pod(
        at in 0usize..VALID.len(),
        cut in 0usize..40,
        insert in "[ -~\n]{0,12}",
    ) {
        let mut text = VALID.to_owned();
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (at..=(at + cut).min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(at);
        text.replace_range(at..end, &insert);
        // The template path is relative to the examples folder.
        let result = kpo::task::parse(&text, &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fuzz.toml"));
        match result {
            Ok(task) => {
                let pod = kpo::pod::build(&task, &RunIdentity::generate(&task.name), "default");
                let spec = pod.spec.unwrap();
                prop_assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
                prop_assert!(spec.containers.iter().any(|c| c.name == "base"));
            }
            Err(TaskError::Invalid { problems, .. }) => {
                for p in problems {
                    prop_assert!(p.line >= 1 && p.column >= 1);
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn mutator_output_is_checked_without_panicking(out in ".{0,300}") {
        let before = serde_json::to_value(base_pod()).unwrap();
        let _ = kpo::plugin::check("fuzz", &before, &out, None);
    }

    #[test]
    fn accepted_mutator_output_keeps_the_run_identity(
        labels in proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..4),
        run_id in "[a-z0-9]{1,12}",
        namespace in "[a-z]{1,8}",
        writable in proptest::option::of(Just(vec!["/metadata/labels".to_owned()])),
    ) {
        let before = serde_json::to_value(base_pod()).unwrap();
        let mut after = before.clone();
        for (k, v) in &labels {
            after["metadata"]["labels"][k] = v.clone().into();
        }
        after["metadata"]["labels"][LABEL_RUN_ID] = run_id.clone().into();
        after["metadata"]["namespace"] = namespace.clone().into();
        match kpo::plugin::check("fuzz", &before, &after.to_string(), writable.as_deref()) {
            Ok((pod, _)) => {
                let original = base_pod();
                prop_assert_eq!(pod.metadata.namespace, original.metadata.namespace);
                prop_assert_eq!(pod.metadata.labels.unwrap()[LABEL_RUN_ID].clone(), original.metadata.labels.unwrap()[LABEL_RUN_ID].clone());
            }
            Err(e) => prop_assert!(e.to_string().starts_with("plugin fuzz changed /metadata/"), "{}", e),
        }
    }
}

fn base_pod() -> k8s_openapi::api::core::v1::Pod {
    let task = kpo::task::parse("name = \"fuzz\"\nimage = \"busybox\"\n", Path::new("fuzz.toml")).unwrap();
    kpo::pod::build(
        &task,
        &RunIdentity {
            batch: None,
            batch_namespace: None,
            run_id: "run1".into(),
            pod_name: "fuzz-abcde".into(),
            attempt: 1,
        },
        "default",
    )
}
