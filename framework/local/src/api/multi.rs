//! Multi-model endpoints (`"Mode": "MultiModel"`) behind the runtime: `TargetModel`
//! (`X-Amzn-SageMaker-Target-Model`) checked as the service checks it, before the request
//! reaches the endpoint's router (`crate::deploy`'s, which unpacks and loads the target on first
//! use). A target that is not under the model's `ModelDataUrl` is the service's
//! `ValidationError` ("Failed to download model data"), not the container's 404; a target on
//! S3 is fetched into the endpoint's models folder on its first request, as the service fetches
//! it onto the instance, within the bytes one model start may download (`--max-s3-mb`).

use std::path::PathBuf;
use std::sync::Mutex;

use modelstage_runtime::serve::mme::registry::target_problem;

use super::artifacts::{Artifacts, Staging};
use super::s3::S3Uri;
use super::wire::{quote, ApiError};

/// The models of a multi-model production variant.
pub struct MultiModels {
    /// The folder the router reads the target models from: the `ModelDataUrl` folder, or the
    /// staging folder of a prefix on S3.
    folder: PathBuf,
    /// The `ModelDataUrl` prefix on S3, if that is where the models are.
    remote: Option<S3Uri>,
    /// The bytes fetched from S3 so far; held while a target is fetched, so that concurrent
    /// first requests for it fetch it once.
    fetched: Mutex<u64>,
    /// Keeps the staging folder of models fetched from S3 until the endpoint goes.
    _staging: Option<Staging>,
}

impl MultiModels {
    /// `folder` is the local `ModelDataUrl` the router was started with; `staging` is the
    /// model's staging, holding the prefix on S3 when the models are there.
    pub fn new(folder: PathBuf, staging: Staging) -> MultiModels {
        let remote = staging.multi_model().map(|(uri, _)| uri.clone());
        MultiModels {
            folder,
            _staging: remote.is_some().then_some(staging),
            remote,
            fetched: Mutex::new(0),
        }
    }

    /// Checks the request's target model; whether its archive is in the models folder.
    pub fn ready(&self, target: &str) -> Result<bool, ApiError> {
        if let Some(problem) = target_problem(target) {
            return Err(ApiError::runtime_validation(format!("TargetModel: {problem}")));
        }
        Ok(self.folder.join(target).is_file())
    }

    /// Fetches the archive of a checked target that is not [`ready`](MultiModels::ready) from
    /// S3; the service's error when it is nowhere. Blocking.
    pub fn fetch(&self, target: &str, artifacts: &Artifacts) -> Result<(), ApiError> {
        let file = self.folder.join(target);
        let Some(remote) = &self.remote else {
            return Err(not_found(
                target,
                &format!("file://{}", self.folder.display()),
                "there is no such file",
            ));
        };
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_file() {
            // Fetched by the request this one waited for.
            return Ok(());
        }
        let left = artifacts.max_bytes().saturating_sub(*fetched);
        let object = remote.join(target);
        match artifacts.s3.download(&object, &file, left) {
            Ok(bytes) => {
                *fetched += bytes;
                log::info!("fetched target model {} from {object}", quote(target));
                Ok(())
            }
            Err(e) => Err(not_found(target, &remote.to_string(), &e.to_string())),
        }
    }
}

/// The service's answer for a target model it cannot fetch.
fn not_found(target: &str, prefix: &str, why: &str) -> ApiError {
    ApiError::runtime_validation(format!(
        "Failed to download model data for TargetModel {} under {}: {why}. Please ensure that there \
         is an object located at the URL.",
        quote(target),
        quote(prefix)
    ))
}

/// A request to a multi-model endpoint that names no model.
pub fn missing_target(endpoint: &str) -> ApiError {
    ApiError::runtime_validation(format!(
        "Request is missing a target model header: endpoint {} is a multi-model endpoint; name the \
         model in TargetModel (X-Amzn-SageMaker-Target-Model)",
        quote(endpoint)
    ))
}

/// A request that names a model, to an endpoint that serves one.
pub fn not_multi_model(endpoint: &str) -> ApiError {
    ApiError::runtime_validation(format!(
        "Endpoint {} is not a multi-model endpoint and does not support target model header.",
        quote(endpoint)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::s3::S3;

    #[test]
    fn a_target_is_checked_and_looked_up_in_the_models_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.tar.gz"), b"x").unwrap();
        let artifacts = Artifacts::new(S3::from_env().unwrap(), dir.path(), 1_000);
        let staging = artifacts.model("us-east-1", &mut Default::default()).unwrap();
        let models = MultiModels::new(dir.path().to_path_buf(), staging);
        assert!(models.ready("a.tar.gz").unwrap());
        assert!(!models.ready("b.tar.gz").unwrap());
        let e = models.fetch("b.tar.gz", &artifacts).unwrap_err();
        assert_eq!((e.kind, e.status.as_u16()), ("ValidationError", 400));
        assert!(
            e.message
                .contains("Failed to download model data for TargetModel \"b.tar.gz\""),
            "{}",
            e.message
        );
        let e = models.ready("../a.tar.gz").unwrap_err();
        assert!(
            e.message.contains("relative path inside the model folder"),
            "{}",
            e.message
        );
    }
}
