//! What a container's `Image` names: a stage library, run as a `modelstage serve` process of this
//! binary, or a Docker image, run as `docker run IMAGE serve` (as SageMaker runs it). Decided per
//! container, so one pipeline may mix both.
//!
//! Everything is checked before anything starts: a library must be a file, an image must be on
//! this machine (nothing is pulled) and the engine must answer.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use super::request::ContainerSpec;
use crate::docker;

/// How one container's stage is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageImage {
    /// A stage library on this machine.
    Library(PathBuf),
    /// A Docker image reference, e.g. `modelstage/featurizer:latest`.
    Docker(String),
}

impl StageImage {
    pub fn is_docker(&self) -> bool {
        matches!(self, StageImage::Docker(_))
    }
}

/// Decides what `container.image` is (see [`docker::is_image`]) and checks that it can run.
pub fn resolve(container: &ContainerSpec) -> anyhow::Result<StageImage> {
    let name = &container.name;
    let image = container.image.trim();
    if docker::is_image(image) {
        docker::engine_available().map_err(|e| {
            anyhow!("{name}: Image '{image}' is a Docker image, and Docker is needed to run it: {e}")
        })?;
        if !docker::image_exists(image) {
            bail!(
                "{name}: Image '{image}' is not on this machine: build it (ci/docker-build.sh builds the \
                 modelstage/* images) or `docker pull` it first; nothing is pulled for you"
            );
        }
        return Ok(StageImage::Docker(image.to_string()));
    }
    let path = PathBuf::from(image);
    if !path.is_file() {
        bail!(
            "{name}: Image '{image}' is not a stage library file: give the path of a lib<stage>.so, or a \
             Docker image on this machine (name:tag)"
        );
    }
    Ok(StageImage::Library(path))
}
