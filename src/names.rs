//! Kubernetes' rules for names, labels and quantities, checked before the API server sees them.
//!
//! The API server would reject the same values, but only after a round trip and with a message
//! about the pod rather than the line of the task file that caused it.

/// A DNS-1123 label: what namespaces, container and volume names must be.
pub fn check_dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid name: use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
    })
}

/// A DNS-1123 subdomain: what priority and runtime class names must be.
pub fn check_dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| check_dns_label(part).is_ok());
    ok.then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid name: up to 253 lowercase letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit")
    })
}

/// A port name (IANA_SVC_NAME): up to 15 lowercase letters, digits or '-', with a letter, no
/// '-' at either end nor two in a row.
pub fn check_port_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    ok.then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid port name: up to 15 lowercase letters, digits or '-', with at least one letter, no '-' at either end nor two in a row")
    })
}

/// The prefix of kpo's own labels and annotations (`kpo.dev/run-id`, `kpo.dev/on-finish`): kpo
/// finds, follows and cleans up its pods by them, so no task file, template or mutator sets one.
pub const RESERVED_PREFIX: &str = "kpo.dev/";

/// Whether a label or annotation key is kpo's own (see [`RESERVED_PREFIX`]).
pub fn reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// Task names become label values and, lowercased, pod names.
pub fn check_task_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    check_label_value(s)?;
    if pod_name_stem(s).is_empty() {
        return Err(format!("`{s}` needs at least one letter or digit"));
    }
    Ok(())
}

/// A label value: up to 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub fn check_label_value(s: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    let ok = s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && edge(s.chars().next())
        && edge(s.chars().last());
    ok.then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    })
}

/// A label or annotation key: an optional DNS-subdomain prefix and a name (`kpo.dev/task`).
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.split('.').all(|part| check_dns_label(part).is_ok())
    });
    let name_ok = !name.is_empty() && check_label_value(name).is_ok();
    (prefix_ok && name_ok).then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'")
    })
}

/// Environment variable names as Kubernetes accepts them.
pub fn check_env_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    ok.then_some(()).ok_or_else(|| {
        format!("`{s}` is not a valid environment variable name: letters, digits, '_', '-' or '.', not starting with a digit")
    })
}

/// A resource quantity (`250m`, `1.5`, `64Mi`, `1e3`).
pub fn check_quantity(s: &str) -> Result<(), String> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
    (number_ok && suffix_ok)
        .then_some(())
        .ok_or_else(|| format!("`{s}` is not a quantity (write e.g. \"250m\", \"2\", \"64Mi\")"))
}

/// A checked quantity's value in base units (cores, bytes).
pub fn quantity_value(q: &str) -> f64 {
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().unwrap_or(0.0);
    let scale = match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().unwrap_or(0)),
        _ => 1.0,
    };
    n * scale
}

/// The DNS-1123 form of a task name: lowercase, other characters turned into '-', trimmed.
pub fn pod_name_stem(task: &str) -> String {
    let mapped: String = task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped.trim_matches('-').chars().take(MAX_STEM).collect();
    trimmed.trim_end_matches('-').to_owned()
}

/// Random lowercase letters and digits for unique names; no vowels, so they never spell words
/// (the API server's `generateName` does the same).
pub fn random_suffix(n: usize) -> String {
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect()
}

/// Room left in a 63-character name for `-` and a 5-character random suffix.
const MAX_STEM: usize = 63 - 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(check_dns_label("my-ns-1").is_ok());
        for bad in ["", "My", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["1", "250m", "1.5", "64Mi", "1e3", "+2", "0.5Gi", ".5"] {
            assert!(check_quantity(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1.2.3", "lots", "10mb", "Mi", "1e"] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qualified_names() {
        assert!(check_qualified_name("kpo.dev/task").is_ok());
        assert!(check_qualified_name("app").is_ok());
        for bad in ["/x", "a/", "Kpo.dev/x", "a/b/c", "x y"] {
            assert!(check_qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pod_name_stems_are_dns_safe() {
        assert_eq!(pod_name_stem("My_Task.v2"), "my-task-v2");
        assert_eq!(pod_name_stem("__x__"), "x");
        assert_eq!(pod_name_stem(&"a".repeat(100)).len(), MAX_STEM);
        assert!(check_task_name("___").is_err());
    }
}
