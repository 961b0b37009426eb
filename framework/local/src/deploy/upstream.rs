//! `modelstage deploy --upstream [NAME=]URL ...`: the router alone, in front of endpoints that
//! already run (the containers of a Compose project or of a Kubernetes pod). It starts nothing: it
//! chains the upstreams in order (`Serial`, an inference pipeline), routes each request to the
//! one its `X-Amzn-SageMaker-Target-Container-Hostname` names (`Direct`), or plays the platform in
//! front of one multi-model container (`MultiModel`: the model a request's
//! `X-Amzn-SageMaker-Target-Model` names is unpacked from `--model-data` and loaded on first use),
//! with the same answers as the router `deploy` starts itself: errors name the upstream, `/ping`
//! is 200 only when every upstream answers 200.
//!
//! The upstreams may come up after the router (Compose starts services in parallel): until they
//! answer, `/ping` says which do not. The request size limit is the first upstream's
//! `MaxPayloadInMB`, read once it answers.

use modelstage_contract::payload::DEFAULT_MAX_PAYLOAD_IN_MB;
use modelstage_contract::settings;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use super::health::{max_payload_in_mb, ping, PING_TIMEOUT};
use super::request::{check_hostname, Mode, MAX_CONTAINERS};
use super::router::multi::Models;
use super::router::{Router, RouterConfig, Target};
use super::DeployArgs;
use crate::tarball::model_data_url_to_path;

/// How often the upstreams' health is looked at, to report changes on our output.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Reads `[NAME=]URL` arguments, in order. A name defaults to `container-<i>` (1-based), as
/// SageMaker names the containers of a pipeline.
pub fn parse(arguments: &[String]) -> anyhow::Result<Vec<Target>> {
    if arguments.is_empty() || arguments.len() > MAX_CONTAINERS {
        bail!("give 1 to {MAX_CONTAINERS} --upstream, got {}", arguments.len());
    }
    let mut targets: Vec<Target> = Vec::new();
    for (i, argument) in arguments.iter().enumerate() {
        let target = parse_one(argument, i).map_err(|e| anyhow!("--upstream '{argument}': {e}"))?;
        if targets.iter().any(|t| t.name == target.name) {
            bail!(
                "--upstream '{argument}': two upstreams are named '{}'; give each its own NAME=",
                target.name
            );
        }
        targets.push(target);
    }
    Ok(targets)
}

fn parse_one(argument: &str, index: usize) -> anyhow::Result<Target> {
    let argument = argument.trim();
    // `name=http://...`; an '=' after the scheme (in a query) does not make a name.
    let (name, url) = match argument.split_once('=') {
        Some((name, url)) if !name.contains([':', '/']) => (name.trim().to_string(), url.trim()),
        _ => (format!("container-{}", index + 1), argument),
    };
    check_hostname(&name).map_err(|e| anyhow!("the name '{name}' {e}"))?;
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("'{url}' is not a URL: write http://HOST:PORT");
    };
    if scheme.eq_ignore_ascii_case("https") {
        bail!(
            "https is not supported: the router speaks plain HTTP to the containers, as SageMaker's \
             front end does; put TLS in front of the router instead"
        );
    }
    if !scheme.eq_ignore_ascii_case("http") {
        bail!("the scheme '{scheme}://' is not supported: write http://HOST:PORT");
    }
    if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        bail!("write the base URL only (http://HOST:PORT[/PREFIX]); /ping and /invocations are added to it");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        bail!("'{url}' names no host: write http://HOST:PORT");
    }
    let base_url = format!("http://{}", rest.trim_end_matches('/'));
    Target::new(name, base_url, None).map_err(|e| anyhow!("'{url}' is not a URL: {e}"))
}

/// Where the models of a multi-model upstream come from and are unpacked (`--mode MultiModel`).
#[derive(Debug, Clone)]
pub struct UpstreamModels {
    /// `--model-data`: the folder of `*.tar.gz`, as a MultiModel `ModelDataUrl`.
    pub source: PathBuf,
    /// `--models-dir`: where they are unpacked; `None`: a temporary folder.
    pub local_root: Option<PathBuf>,
    /// `--container-models-dir`: that folder as the upstream sees it; `None`: the same path.
    pub container_root: Option<PathBuf>,
}

/// The models of `--mode MultiModel`, from the flags; `None` for the other modes, whose
/// upstreams hold their own models.
pub fn models(mode: Mode, args: &DeployArgs) -> anyhow::Result<Option<UpstreamModels>> {
    if mode != Mode::MultiModel {
        if args.model_data.is_some() {
            bail!("--model-data is for --mode MultiModel: the upstreams of the other modes hold their own models");
        }
        return Ok(None);
    }
    if args.upstreams.len() != 1 {
        bail!(
            "--mode MultiModel routes to one multi-model container: give one --upstream, got {}",
            args.upstreams.len()
        );
    }
    let Some(data) = &args.model_data else {
        bail!(
            "--mode MultiModel needs --model-data DIR: the folder of the model.tar.gz files that the \
             requests' X-Amzn-SageMaker-Target-Model names"
        );
    };
    let source = model_data_url_to_path(data).with_context(|| format!("--model-data '{data}'"))?;
    if !source.is_dir() {
        bail!(
            "--model-data '{}' is not a folder: give the folder holding the model.tar.gz files",
            source.display()
        );
    }
    Ok(Some(UpstreamModels {
        source,
        local_root: args.models_dir.clone(),
        container_root: args.container_models_dir.clone(),
    }))
}

impl UpstreamModels {
    /// The router's table of models, and the temporary folder they are unpacked into when no
    /// `--models-dir` was given (removed when dropped).
    fn open(&self) -> anyhow::Result<(Models, Option<tempfile::TempDir>)> {
        let (local, temporary) = match &self.local_root {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create --models-dir {}", dir.display()))?;
                // The container is told absolute paths: its working folder is not ours.
                let dir = std::path::absolute(dir)
                    .with_context(|| format!("cannot resolve --models-dir {}", dir.display()))?;
                (dir, None)
            }
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("modelstage-models-")
                    .tempdir()
                    .context("cannot make a temporary folder for the models")?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        let seen = self.container_root.clone().unwrap_or_else(|| local.clone());
        Ok((Models::new(self.source.clone(), local, seen), temporary))
    }
}

/// What the router of running endpoints needs.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub targets: Vec<Target>,
    pub mode: Mode,
    /// The models of a multi-model upstream (`Mode::MultiModel`).
    pub models: Option<UpstreamModels>,
    pub bind: IpAddr,
    pub port: u16,
}

/// Runs the router until `stop` is set; reports on our output when an upstream becomes healthy
/// or stops answering.
pub fn serve(options: UpstreamOptions, stop: &AtomicBool) -> anyhow::Result<Option<String>> {
    let separator = if options.mode == Mode::Direct {
        ", "
    } else {
        " -> "
    };
    let label = options
        .targets
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(separator);
    let config = RouterConfig::new(
        options.mode,
        options.targets.clone(),
        label.clone(),
        // The upstream's own timeout answers first; this catches one that hangs.
        Duration::from_secs(
            env_number(settings::MODEL_SERVER_TIMEOUT).unwrap_or(settings::DEFAULT_TIMEOUT_SECS) + 5,
        ),
        env_number(settings::MAX_PAYLOAD_IN_MB).unwrap_or(DEFAULT_MAX_PAYLOAD_IN_MB.into()),
    );
    // Kept until the router stops: the unpacked models, when in a temporary folder.
    let (config, _unpacked) = match &options.models {
        Some(models) => {
            let (models, unpacked) = models.open()?;
            (config.with_models(models), unpacked)
        }
        None => (config, None),
    };
    let http_threads = modelstage_contract::settings::http_threads();
    let router = Router::start(config, options.bind, options.port, http_threads)?;
    let how = match options.mode {
        Mode::Direct => "Direct mode",
        Mode::MultiModel => "multi-model endpoint",
        _ => "serial pipeline",
    };
    eprintln!(
        "modelstage deploy: router listening on http://{}:{}/invocations ({how} of running endpoints: {label})",
        options.bind, router.port
    );
    for t in &options.targets {
        eprintln!(
            "modelstage deploy: upstream {} at {}",
            t.name,
            t.base_url().unwrap_or_default()
        );
    }
    if let Some(models) = &options.models {
        eprintln!(
            "modelstage deploy: models from {}, loaded into {} on first use",
            models.source.display(),
            options.targets[0].name
        );
    }
    watch(&options.targets, &router, stop);
    eprintln!("modelstage deploy: stopping");
    router.stop();
    eprintln!("modelstage deploy: stopped");
    Ok(None)
}

/// Waits for `stop`, looking at the upstreams every [`CHECK_EVERY`].
fn watch(targets: &[Target], router: &Router, stop: &AtomicBool) {
    let client = reqwest::blocking::Client::builder()
        .timeout(PING_TIMEOUT)
        .build()
        .ok();
    let mut healthy = vec![false; targets.len()];
    let mut payload_known = false;
    let mut next_check = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next_check {
            if let Some(client) = &client {
                for (target, was) in targets.iter().zip(healthy.iter_mut()) {
                    let status = ping(client, &target.url("/ping"));
                    let now = status == Some(200);
                    match (now, *was) {
                        (true, false) => eprintln!("modelstage deploy: {} answers GET /ping", target.name),
                        (false, true) => eprintln!(
                            "modelstage deploy: {} stopped answering GET /ping with 200 ({}); the endpoint \
                             answers 503 until it does again",
                            target.name,
                            status.map_or("no answer".to_string(), |s| s.to_string())
                        ),
                        _ => {}
                    }
                    *was = now;
                }
            }
            if !payload_known && healthy[0] {
                if let Some(mb) = max_payload_in_mb(targets[0].base_url().unwrap_or_default()) {
                    router.set_max_payload_in_mb(mb);
                    payload_known = true;
                }
            }
            next_check = Instant::now() + CHECK_EVERY;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(arguments: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
        let arguments: Vec<String> = arguments.iter().map(|a| a.to_string()).collect();
        Ok(parse(&arguments)?
            .into_iter()
            .map(|t| (t.name.clone(), t.base_url().unwrap_or_default().to_string()))
            .collect())
    }

    fn error(arguments: &[&str]) -> String {
        format!("{:#}", targets(arguments).unwrap_err())
    }

    #[test]
    fn names_are_given_or_numbered() {
        let parsed = targets(&[
            "featurizer=http://featurizer:8081/",
            "http://127.0.0.1:8082",
            "ll = HTTP://ll:8080/prefix/",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            [
                ("featurizer".to_string(), "http://featurizer:8081".to_string()),
                ("container-2".to_string(), "http://127.0.0.1:8082".to_string()),
                ("ll".to_string(), "http://ll:8080/prefix".to_string()),
            ]
        );
    }

    #[test]
    fn bad_upstreams_say_what_to_fix() {
        assert!(error(&[]).contains("give 1 to 15 --upstream, got 0"));
        let e = error(&["a=http://x:1", "a=http://y:2"]);
        assert!(e.contains("two upstreams are named 'a'"), "{e}");
        let e = error(&["http://x:1", "container-1=http://y:2"]);
        assert!(e.contains("named 'container-1'"), "{e}");
        let e = error(&["featurizer=https://x:1"]);
        assert!(
            e.starts_with("--upstream 'featurizer=https://x:1': https is not supported"),
            "{e}"
        );
        assert!(error(&["x:8081"]).contains("is not a URL"));
        assert!(error(&["a=ftp://x"]).contains("'ftp://' is not supported"));
        assert!(error(&["a=http://"]).contains("names no host"));
        assert!(error(&["a=http://x:1/?q=1"]).contains("base URL only"));
        let e = error(&["bad_name=http://x:1"]);
        assert!(e.contains("the name 'bad_name' may hold only letters"), "{e}");
    }
}
