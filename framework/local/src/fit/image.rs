//! What `AlgorithmSpecification.TrainingImage` (or `--stage`) names: a stage library, trained by a
//! `modelstage train` process of this binary, or a Docker image, trained by `docker run IMAGE train`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::docker;

/// The training container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainingImage {
    /// A stage library (`.so`) on this machine.
    Library(PathBuf),
    /// A Docker image reference, e.g. `modelstage/featurizer:latest`.
    Docker(String),
}

impl TrainingImage {
    /// Routes a reference as [`docker::is_image`] does: an existing file, or a name that looks
    /// like a path or a shared library, is a library; a name with ':' or '/' is an image; a bare
    /// name is an image only if the Docker engine has one by that name.
    pub fn from_reference(reference: &str) -> TrainingImage {
        if docker::is_image(reference) {
            TrainingImage::Docker(reference.trim().to_string())
        } else {
            TrainingImage::Library(PathBuf::from(reference))
        }
    }

    /// The base of the default job name: `liblinear_learner.so` and
    /// `registry:5000/modelstage/linear-learner:latest` both give `linear-learner`.
    pub fn base_name(&self) -> String {
        match self {
            TrainingImage::Library(path) => super::job_name::base_name(path),
            TrainingImage::Docker(image) => super::job_name::image_base_name(image),
        }
    }

    /// The library, when it is one.
    pub fn library(&self) -> Option<&Path> {
        match self {
            TrainingImage::Library(path) => Some(path),
            TrainingImage::Docker(_) => None,
        }
    }
}

impl fmt::Display for TrainingImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainingImage::Library(path) => write!(f, "stage library {}", path.display()),
            TrainingImage::Docker(image) => write!(f, "image {image}"),
        }
    }
}
