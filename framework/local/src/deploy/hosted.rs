//! A lone stage library hosted inside the caller's HTTP server (`modelstage api`), instead of a
//! `modelstage serve` process behind a second HTTP hop: the model unpacked and the container's
//! environment given as [`super::Endpoint`] gives them, served by the runtime's hosted endpoint
//! (`modelstage_runtime::serve::hosted`), whose workers run the stage in processes of their own.
//! Only a model of one container whose `Image` is a stage library is hosted; any other runs as
//! `deploy` runs it.

use std::time::Duration;

use anyhow::{anyhow, Context};
use tempfile::TempDir;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use modelstage_runtime::serve::hosted::{Hosted, HostedSpec};

use super::endpoint::{base_dir, prepare_model};
use super::environment::container_env;
use super::image::{self, StageImage};
use super::request::{Mode, ModelSpec};
use super::STARTUP_TIMEOUT_SECS;
use crate::docker;

/// A model served on the caller's HTTP threads; its workers stop, and its unpacked model goes,
/// when it is dropped.
pub struct HostedModel {
    /// Declared first: the workers stop before their model's folder is removed.
    endpoint: Hosted,
    _work: TempDir,
}

impl HostedModel {
    /// How errors and logs name the stage.
    pub fn label(&self) -> &str {
        self.endpoint.label()
    }

    /// Answers one `POST /invocations` as the stage's own server would. Runs on one of the
    /// caller's HTTP threads, of which there are at most the `lanes` given to [`host`].
    pub async fn invoke(&self, request: &HttpRequest, body: Bytes) -> HttpResponse {
        self.endpoint.invoke(request, body).await
    }
}

/// Hosts `spec` when it is one container with a stage library, for an HTTP server of `lanes`
/// threads: `None` for any other model. Blocks until a worker has loaded the model.
pub fn host(spec: &ModelSpec, lanes: usize) -> anyhow::Result<Option<HostedModel>> {
    let ([container], Mode::Single) = (&spec.containers[..], spec.mode) else {
        return Ok(None);
    };
    if docker::is_image(container.image.trim()) {
        return Ok(None);
    }
    let StageImage::Library(library) = image::resolve(container)? else {
        return Ok(None);
    };
    let work = tempfile::Builder::new()
        .prefix("modelstage-endpoint-")
        .tempdir()
        .context("cannot make a temporary folder for the endpoint's model")?;
    let model_dir = prepare_model(container, work.path())?;
    let mut env = container_env(container, &[]);
    // As a `serve` process is told where its tree is.
    env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(&model_dir)));
    let endpoint = Hosted::start(HostedSpec {
        library,
        model_dir,
        env,
        lanes,
        startup_timeout: Duration::from_secs(STARTUP_TIMEOUT_SECS),
    })
    .map_err(|e| anyhow!("{}: {e}", container.name))?;
    Ok(Some(HostedModel {
        endpoint,
        _work: work,
    }))
}
