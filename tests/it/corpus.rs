//! Runs every file of `tests/corpus/`: the command it names must exit with the code it names and
//! print each `# expect:` line exactly (a `*` stands for the random part of a pod name).

use std::path::Path;

fn matches(pattern: &str, line: &str) -> bool {
    match pattern.split_once('*') {
        None => line.contains(pattern),
        Some((before, after)) => line.find(before).is_some_and(|i| {
            line[i + before.len()..]
                .split_once('"')
                .is_some_and(|(_, rest)| rest.starts_with(after.trim_start_matches('"')))
        }),
    }
}

#[test]
fn every_hostile_input_gets_its_exact_error() {
    // The wrong-world case needs a built interpreter component.
    crate::harness::plugin("log-scan");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases = 0;
    for entry in std::fs::read_dir(root.join("tests/corpus")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let header = |key: &'static str| {
            let prefix = format!("# {key}: ");
            text.lines()
                .filter_map(move |l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let command_line = header("command").into_iter().next().expect("# command:");
        let command: Vec<&str> = command_line.split_whitespace().collect();
        let exit: i32 = header("exit")
            .into_iter()
            .next()
            .expect("# exit:")
            .parse()
            .unwrap();
        let relative = path.strip_prefix(root).unwrap();
        let out = crate::harness::kpo_command()
            .args(&command)
            .arg(relative)
            .current_dir(root)
            .env("KPO_CACHE_DIR", std::env::temp_dir().join("kpo-corpus-cache"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit), "{}: {stderr}", relative.display());
        for expected in header("expect") {
            assert!(
                stderr.lines().any(|l| matches(&expected, l)),
                "{}: expected the line\n  {expected}\nin\n{stderr}",
                relative.display()
            );
        }
        cases += 1;
    }
    assert!(cases >= 12, "only {cases} corpus files ran");
}
