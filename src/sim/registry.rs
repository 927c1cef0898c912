//! The simulated image registry: pulls that succeed, take their time, or fail the way
//! containerd reports it (not found, unauthorized, rate-limited), and the reference grammar the
//! kubelet checks first.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::node::Node;
use super::script::Script;

impl Node {
    /// Pulls the container's image, or fails the way a registry would; a failure never returns.
    pub(super) async fn pull(&self, pod: &Pod, c: &Container) {
        let image = c.image.clone().unwrap_or_default();
        let script = Script::of(pod, &c.name);
        if let Err(why) = check_image_reference(&image) {
            self.set_waiting(&c.name, "InvalidImageName", &why);
            self.event(pod, "Warning", "InspectFailed", &why);
            self.event(pod, "Warning", "Failed", "Error: InvalidImageName");
            return std::future::pending().await;
        }
        let full = qualified(&image);
        let error = match script.pull.as_deref() {
            None | Some("ok") => None,
            Some("not-found") => Some(format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
            )),
            Some("unauthorized") => Some(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
            )),
            Some(_) => Some(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to copy: httpReadSeeker: failed open: unexpected status code 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit."
            )),
        };
        if error.is_none() && script.pull_ms == 0 && c.image_pull_policy.as_deref() == Some("IfNotPresent") {
            let message = format!("Container image \"{image}\" already present on machine");
            return self.event(pod, "Normal", "Pulled", &message);
        }
        self.event(pod, "Normal", "Pulling", &format!("Pulling image \"{image}\""));
        tokio::time::sleep(Duration::from_millis(script.pull_ms)).await;
        let Some(error) = error else {
            let took = script.pull_ms as f64 / 1000.0;
            self.event(
                pod,
                "Normal",
                "Pulled",
                &format!("Successfully pulled image \"{image}\" in {took:.3}s"),
            );
            return;
        };
        loop {
            self.set_waiting(&c.name, "ErrImagePull", &error);
            self.event(
                pod,
                "Warning",
                "Failed",
                &format!("Failed to pull image \"{image}\": {error}"),
            );
            self.event(pod, "Warning", "Failed", "Error: ErrImagePull");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let backoff = format!("Back-off pulling image \"{image}\"");
            self.set_waiting(&c.name, "ImagePullBackOff", &backoff);
            self.event(pod, "Normal", "BackOff", &backoff);
            self.event(pod, "Warning", "Failed", "Error: ImagePullBackOff");
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.event(pod, "Normal", "Pulling", &format!("Pulling image \"{image}\""));
        }
    }
}

/// The image-reference grammar's basics, as the kubelet checks it before pulling.
fn check_image_reference(image: &str) -> Result<(), String> {
    let (rest, _digest) = image.split_once('@').unwrap_or((image, ""));
    let last = rest.rsplit('/').next().unwrap_or_default();
    let repo = match last.rsplit_once(':') {
        Some((_, tag))
            if !tag.is_empty()
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) =>
        {
            &rest[..rest.len() - tag.len() - 1]
        }
        Some(_) => "",
        None => rest,
    };
    let repo_ok = !repo.is_empty()
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-:".contains(c))
        });
    let uppercase = repo.chars().any(|c| c.is_ascii_uppercase());
    match (repo_ok, uppercase) {
        (true, _) => Ok(()),
        // The kubelet quotes the reference the way Go's %q does: a control character in it
        // arrives escaped (`\x1b`), never raw (seen on the v1.20 test cluster).
        (false, upper) => Err(format!(
            "Failed to apply default image tag {quoted}: couldn't parse image reference {quoted}: invalid reference format{}",
            if upper {
                ": repository name must be lowercase"
            } else {
                ""
            },
            quoted = go_quoted(image)
        )),
    }
}

/// `s` as Go's `%q` prints it: in double quotes, `"` and `\` escaped, control characters as
/// `\n`, `\t`, … or `\xNN`.
fn go_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `busybox` -> `docker.io/library/busybox:latest`, as containerd names it in errors.
fn qualified(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut name = match (has_registry, image.contains('/')) {
        (true, _) => image.to_owned(),
        (false, true) => format!("docker.io/{image}"),
        (false, false) => format!("docker.io/library/{image}"),
    };
    if !image.contains('@') && !image.rsplit('/').next().unwrap_or_default().contains(':') {
        name.push_str(":latest");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "registry.k8s.io/pause:3.6",
            "localhost:5000/a/b:v1",
            "a@sha256:abc",
        ] {
            assert!(check_image_reference(ok).is_ok(), "{ok}");
        }
        for bad in ["Busybox", "busy box", "busybox:", "a//b"] {
            assert!(check_image_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(qualified("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(qualified("me/app:1"), "docker.io/me/app:1");
    }

    /// As the kubelet says it (Go's %q), seen on the v1.20 test cluster.
    #[test]
    fn an_invalid_reference_is_quoted_as_go_quotes_it() {
        let why = check_image_reference("busybox:\u{1b}[2Jnope").unwrap_err();
        assert!(
            why.starts_with(r#"Failed to apply default image tag "busybox:\x1b[2Jnope": "#),
            "{why}"
        );
    }
}
