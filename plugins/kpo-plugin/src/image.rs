//! Image references as a container runtime reads them, so that a policy compares registries and
//! repositories rather than string prefixes (`busybox` is `docker.io/library/busybox`).

use std::fmt;

/// The registry an image without one is pulled from.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A container image reference, normalised: `busybox:1.36` reads as registry `docker.io`,
/// repository `library/busybox`, tag `1.36`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`, when the reference names a digest.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Reads an image reference. `Err` for one no runtime would pull: empty, or with an empty
    /// repository, tag or digest.
    pub fn parse(image: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("image {image:?} {why}"));
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) if !digest.is_empty() => (name, Some(digest.to_owned())),
            Some(_) => return bad("has an empty digest"),
            None => (image, None),
        };
        let (path, tag) = match name.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => {
                if tag.is_empty() {
                    return bad("has an empty tag");
                }
                (path, Some(tag.to_owned()))
            }
            _ => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), path.to_owned()),
        };
        // Docker Hub's other names, and its official images' implicit `library/`.
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_owned(),
            _ => registry,
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if path.is_empty() || repository.is_empty() || repository.split('/').any(str::is_empty) {
            return bad("names no repository");
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Whether the reference names one fixed image: a digest, or a tag other than `latest`.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some() || self.tag.as_deref().is_some_and(|t| t != "latest")
    }
}

impl fmt::Display for ImageRef {
    /// The full reference: `docker.io/library/busybox:1.36`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(image: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(image).unwrap();
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn references_read_as_a_runtime_reads_them() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(parts("busybox"), ("docker.io".into(), "library/busybox".into(), None, None));
        assert_eq!(parts("busybox:1.36"), ("docker.io".into(), "library/busybox".into(), s("1.36"), None));
        assert_eq!(parts("bitnami/redis:7"), ("docker.io".into(), "bitnami/redis".into(), s("7"), None));
        assert_eq!(
            parts("localhost:5000/team/app:1.0@sha256:ab"),
            ("localhost:5000".into(), "team/app".into(), s("1.0"), s("sha256:ab"))
        );
        assert_eq!(parts("registry.example.com/app"), ("registry.example.com".into(), "app".into(), None, None));
        assert_eq!(parts("localhost/app"), ("localhost".into(), "app".into(), None, None));
        // Docker Hub however it is named.
        for hub in ["docker.io/busybox:1.36", "index.docker.io/library/busybox:1.36", "busybox:1.36"] {
            assert_eq!(parts(hub), ("docker.io".into(), "library/busybox".into(), s("1.36"), None), "{hub}");
        }
    }

    #[test]
    fn a_registry_port_is_no_tag() {
        let r = ImageRef::parse("registry.example.com:5000/app").unwrap();
        assert_eq!((r.registry.as_str(), r.tag.as_deref()), ("registry.example.com:5000", None));
        assert!(!r.is_pinned());
    }

    #[test]
    fn pinned_means_a_digest_or_a_tag_other_than_latest() {
        let pinned = |i: &str| ImageRef::parse(i).unwrap().is_pinned();
        assert!(pinned("busybox:1.36") && pinned("busybox@sha256:ab"));
        assert!(!pinned("busybox") && !pinned("busybox:latest"));
    }

    #[test]
    fn what_no_runtime_would_pull_is_an_error() {
        for image in ["", "busybox:", "busybox@", "registry.example.com/", "a//b"] {
            assert!(ImageRef::parse(image).is_err(), "{image:?}");
        }
    }

    #[test]
    fn the_full_reference_prints_back() {
        let r = ImageRef::parse("busybox:1.36").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
    }
}
