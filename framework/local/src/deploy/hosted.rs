//! A stage library container hosted inside an HTTP server of ours, instead of a `modelstage serve`
//! process behind a second HTTP hop: the model unpacked and the container's environment given as
//! [`super::Endpoint`] gives them, served by the runtime's hosted endpoint
//! (`modelstage_runtime::serve::hosted`), whose workers run the stage in processes of their own.
//!
//! - [`host`]: a lone stage library's model, in `modelstage api`; any other model runs as `deploy`
//!   runs it.
//! - [`host_container`]: a stage library container of a pipeline, in its router; its workers'
//!   output is shown under the container's name, as a process's is.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tempfile::TempDir;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use modelstage_runtime::serve::hosted::{Hosted, HostedSpec, WorkerOutput};

use super::endpoint::{base_dir, prepare_model};
use super::environment::container_env;
use super::health::with_log;
use super::image::{self, StageImage};
use super::logs::{forward, Sink, Stream, Tail};
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
        self.endpoint.invoke(request.headers(), body).await
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
        output: None,
    })
    .map_err(|e| anyhow!("{}: {e}", container.name))?;
    Ok(Some(HostedModel {
        endpoint,
        _work: work,
    }))
}

/// A stage library container of a pipeline, for a router of `lanes` HTTP threads.
pub(super) struct HostedContainer<'a> {
    pub name: &'a str,
    pub library: PathBuf,
    pub model_dir: PathBuf,
    /// Its environment, as its `modelstage serve` process would get it.
    pub env: Vec<(String, String)>,
    pub lanes: usize,
    pub sink: Sink,
    pub startup_timeout: Duration,
}

/// Starts `container`'s workers and waits until one has loaded its model, or `stop` is set. Its
/// workers' output goes to `sink` prefixed with its name; the error names the container and shows
/// its last log lines, as a process's would.
pub(super) fn host_container(container: HostedContainer, stop: &AtomicBool) -> anyhow::Result<Arc<Hosted>> {
    let tail = Tail::default();
    let output = {
        let (name, sink, tail) = (container.name.to_string(), container.sink, tail.clone());
        WorkerOutput(Arc::new(move |stdout, stderr| {
            forward(stdout, Stream::Stdout, &name, sink, tail.clone());
            forward(stderr, Stream::Stderr, &name, sink, tail.clone());
        }))
    };
    let spec = HostedSpec {
        library: container.library,
        model_dir: container.model_dir,
        env: container.env,
        lanes: container.lanes,
        startup_timeout: container.startup_timeout,
        output: Some(output),
    };
    let started = Hosted::start_unless(spec, stop);
    match started {
        Ok(endpoint) => {
            log::info!(
                "{} is hosted in the router: stage {}, its log under its name",
                container.name,
                endpoint.label()
            );
            Ok(Arc::new(endpoint))
        }
        Err(e) => {
            // Its workers' last lines may still be on their way through the relay.
            std::thread::sleep(Duration::from_millis(50));
            Err(anyhow!(with_log(
                format!(
                    "container {} (hosted in the router) did not start: {e}",
                    container.name
                ),
                &tail.lines(),
            )))
        }
    }
}
