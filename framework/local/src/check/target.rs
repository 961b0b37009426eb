//! What `modelstage check` was given: a stage library, a Docker image, or the URL of an endpoint
//! that is already running. Decided from the text alone where it can be (a URL, an existing file),
//! else as `fit` and `deploy` decide between a library and an image.

use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail};

use crate::docker;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A stage library, served by a `modelstage serve` process of this binary.
    Library(PathBuf),
    /// A Docker image on this machine, run as `docker run IMAGE serve` / `train`.
    Image(String),
    /// A running endpoint (`http://host:port`), started by someone else.
    Url(String),
}

impl Target {
    /// Reads `text` and checks that the target can be reached: a library must be a file, an
    /// image must be on this machine (nothing is pulled).
    pub fn parse(text: &str) -> anyhow::Result<Target> {
        let text = text.trim();
        if text.is_empty() {
            bail!("no target given: a stage library (.so), a Docker image or an endpoint URL");
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            bail!(
                "'{text}': the container contract is plain HTTP (SageMaker terminates TLS in front \
                 of the container); give the container's own http:// address"
            );
        }
        if lower.starts_with("http://") {
            let url = text.trim_end_matches('/');
            let rest = url.split_once("://").map_or("", |(_, rest)| rest);
            if rest.is_empty() || rest.contains('/') {
                bail!(
                    "'{text}' is not the URL of an endpoint: give scheme, host and port only, e.g. \
                     http://127.0.0.1:8080 (the checks add /ping, /invocations, ...)"
                );
            }
            return Ok(Target::Url(url.to_string()));
        }
        if docker::is_image(text) {
            docker::engine_available()
                .map_err(|e| anyhow!("{text} is a Docker image, and Docker is needed to check it: {e}"))?;
            if !docker::image_exists(text) {
                bail!(
                    "the image {text} is not on this machine: build it (ci/docker-build.sh builds \
                     the modelstage/* images) or `docker pull` it first; nothing is pulled for you"
                );
            }
            return Ok(Target::Image(text.to_string()));
        }
        let path = PathBuf::from(text);
        if !path.is_file() {
            bail!(
                "'{text}' is neither a stage library file, nor a Docker image on this machine, nor \
                 an http:// URL"
            );
        }
        Ok(Target::Library(path))
    }

    /// Whether the checker starts it; an endpoint is only talked to, never started, stopped or
    /// trained.
    pub fn runnable(&self) -> bool {
        !matches!(self, Target::Url(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Library(path) => write!(f, "stage library {}", path.display()),
            Target::Image(image) => write!(f, "image {image}"),
            Target::Url(url) => write!(f, "endpoint {url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_apart_from_files_and_must_have_no_path() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/").unwrap(),
            Target::Url("http://127.0.0.1:8080".into())
        );
        let e = Target::parse("http://127.0.0.1:8080/invocations")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheme, host and port only"), "{e}");
        let e = Target::parse("./no-such-lib.so").unwrap_err().to_string();
        assert!(e.contains("neither a stage library file"), "{e}");
        assert!(Target::parse("  ").is_err());
        let e = Target::parse("https://example.com").unwrap_err().to_string();
        assert!(e.contains("plain HTTP"), "{e}");
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(
            Target::parse(file.path().to_str().unwrap()).unwrap(),
            Target::Library(file.path().to_path_buf())
        );
    }
}
