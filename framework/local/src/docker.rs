//! Running stages as Docker containers, as SageMaker runs them: the local-mode commands (`fit`,
//! `transform`, `deploy`) call this when they are given an image instead of a stage library.
//!
//! Everything goes through the `docker` command ([`cli`]); nothing is pulled. A [`ContainerSpec`]
//! says what to run ([`ContainerSpec::training`] and [`ContainerSpec::serving`] lay out the
//! `/opt/ml` mounts and ports of docs/contract.md (Training)), [`run_detached`] starts it and returns a
//! [`Container`] that is removed when dropped, and [`run_to_completion`] runs a training job to
//! its end while streaming the log. A [`Session`] labels what it starts and removes all of it on
//! drop, on Ctrl-C and on a crash ([`cleanup_labelled`]).

pub(crate) mod cli;
mod container;
mod session;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use container::{run_detached, run_to_completion, Container, ContainerExit, ContainerState};
pub use session::{
    cleanup_labelled, create_network, new_session_id, remove_network, Cleanup, Network, Session,
    MANAGED_LABEL, SESSION_LABEL,
};
pub use spec::{ContainerSpec, Mount, DEFAULT_PORT, MODELS_DIR, MODEL_DIR, OPT_ML};

/// The label by which an image declares that it honours `SAGEMAKER_BIND_TO_PORT` (docs/contract.md (Serial pipelines)).
pub const BIND_TO_PORT_LABEL: &str = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port";
/// The label SageMaker requires of an image hosted as a multi-model endpoint
/// (`modelstage serve` answers the multi-model API when `SAGEMAKER_MULTI_MODEL=true`).
pub const MULTI_MODELS_LABEL: &str = "com.amazonaws.sagemaker.capabilities.multi-models";

/// Why a Docker operation failed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerError(String);

impl DockerError {
    pub fn new(message: impl Into<String>) -> DockerError {
        DockerError(message.into())
    }

    /// The same error, with what was being done in front.
    pub fn context(self, doing: &str) -> DockerError {
        DockerError(format!("{doing}: {}", self.0))
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DockerError {}

/// Checks that a Docker engine answers and returns its version; the error says what to do.
pub fn engine_available() -> Result<String, DockerError> {
    match cli::run_within(
        &["version", "--format", "{{.Server.Version}}"],
        Duration::from_secs(20),
    ) {
        Ok(version) => Ok(version.trim().to_string()),
        Err(e) => Err(DockerError::new(format!(
            "the Docker engine is not reachable ({e}); start it, or point DOCKER_HOST at one"
        ))),
    }
}

/// Whether `reference` is an image (run as a container) rather than a stage library (run as a
/// `modelstage` process). An existing file, or a name that looks like a shared library, is a
/// library; a name with ':' or '/' that is not a path is an image; anything else is an image if
/// the engine knows it.
pub fn is_image(reference: &str) -> bool {
    match classify(reference, Path::new(reference).exists()) {
        Some(decided) => decided,
        None => image_exists(reference),
    }
}

/// The part of [`is_image`] that needs no engine: `Some` when the text decides, `None` when only
/// `docker image inspect` can.
pub(crate) fn classify(reference: &str, exists_as_file: bool) -> Option<bool> {
    let reference = reference.trim();
    if reference.is_empty() || exists_as_file {
        return Some(false);
    }
    let file_name = reference.rsplit('/').next().unwrap_or(reference);
    let library = [".so", ".dylib", ".dll"]
        .iter()
        .any(|ext| file_name.ends_with(ext))
        || file_name.contains(".so.");
    let path_like = reference.starts_with(['/', '.', '~']);
    if library || path_like {
        return Some(false);
    }
    if reference.contains([':', '/']) {
        return Some(true);
    }
    None
}

/// Whether the image is on this machine.
pub fn image_exists(reference: &str) -> bool {
    !reference.starts_with('-') && cli::run(&["image", "inspect", "--format", "{{.Id}}", reference]).is_ok()
}

/// The labels of a local image (for example [`BIND_TO_PORT_LABEL`] and the
/// `com.modelstage.stage.*` labels ci/docker-build.sh sets).
pub fn image_labels(reference: &str) -> Result<BTreeMap<String, String>, DockerError> {
    Ok(image_config(reference, "Labels", "labels")?.unwrap_or_default())
}

/// The ENTRYPOINT of a local image as Docker keeps it: a list (a shell-form ENTRYPOINT is kept as
/// `["/bin/sh", "-c", "…"]`), or `None` when the image has none.
pub fn image_entrypoint(reference: &str) -> Result<Option<Vec<String>>, DockerError> {
    image_config(reference, "Entrypoint", "entrypoint")
}

/// One field of a local image's `.Config`, decoded from JSON; `None` when it is unset.
fn image_config<T: serde::de::DeserializeOwned>(
    reference: &str,
    field: &str,
    what: &str,
) -> Result<Option<T>, DockerError> {
    let format = format!("{{{{json .Config.{field}}}}}");
    let out = cli::run(&["image", "inspect", "--format", &format, reference])
        .map_err(|e| e.context(&format!("cannot read the {what} of image {reference}")))?;
    let trimmed = out.trim();
    if trimmed == "null" || trimmed.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(trimmed).map(Some).map_err(|e| {
        DockerError::new(format!(
            "cannot decode the {what} of image {reference} ({e}): {trimmed}"
        ))
    })
}
