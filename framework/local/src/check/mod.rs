//! `modelstage check TARGET`: a conformance checker for the SageMaker container contract.
//!
//! TARGET is a stage library, a Docker image or the URL of a running endpoint. The checker speaks
//! only the contract (HTTP, the environment, the `/opt/ml` tree, signals, image labels), so it
//! checks any SageMaker container, not only ours. Each check has a stable id ([`ids`]); the
//! result ([`report`]) is a table, or JSON with `--format json`, and the exit status is non-zero
//! when any check failed.
//!
//! The pieces: [`target`] says what TARGET is, [`launch`] starts a library or an image as
//! SageMaker would and watches it come up, [`serving`] sends the HTTP checks, [`image`] reads the
//! image's configuration and [`training`] runs `train` on a sample.

pub mod http;
pub mod ids;
pub mod image;
pub mod launch;
pub mod report;
pub mod serving;
pub mod target;
pub mod training;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::deploy::runner::Ended;
use launch::{Started, Startup};
use report::{Report, Verdict};
use serving::{PayloadLimit, Requests, Sample};
use target::Target;

/// The `SAGEMAKER_MAX_PAYLOAD_IN_MB` a started container gets, so that the 413 check sends 2 MB,
/// not 6.
const CHECK_MAX_PAYLOAD_MB: usize = 1;

/// How the report is printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// `modelstage check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// What to check: a stage library (.so), a Docker image on this machine, or the URL of a
    /// running endpoint (http://host:port).
    #[arg(value_name = "LIB|IMAGE|URL")]
    pub target: String,
    /// A request body that the container answers with 2xx, sent to /invocations.
    #[arg(long, value_name = "FILE", requires = "content_type")]
    pub sample: Option<PathBuf>,
    /// The Content-Type of the sample.
    #[arg(long, value_name = "TYPE", requires = "sample")]
    pub content_type: Option<String>,
    /// The Accept the sample is sent with; the answer's Content-Type must match it.
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,
    /// The model folder a library or image is served with (mounted at /opt/ml/model); default: an
    /// empty folder.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Training data: a folder with one subfolder per channel and, optionally,
    /// hyperparameters.json. Runs the train checks.
    #[arg(long, value_name = "DIR")]
    pub train_sample: Option<PathBuf>,
    /// Hyperparameters (a JSON object) that training must refuse; default: every hyperparameter
    /// of the sample set to garbage, plus an unknown one.
    #[arg(long, value_name = "FILE", requires = "train_sample")]
    pub bad_hyperparameters: Option<PathBuf>,
    /// Seconds each training run may take before it is stopped (SIGTERM, then SIGKILL).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub train_timeout: u64,
    /// Seconds the container has to answer GET /ping with 200 (SageMaker allows 4 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::deploy::STARTUP_TIMEOUT_SECS)]
    pub ready_timeout: u64,
    /// Seconds between SIGTERM and SIGKILL for the SIGTERM check.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub stop_grace: u64,
    /// A check that does not apply to this container (its id, e.g.
    /// invocations.content-type-415): reported as skipped, never as a failure. Repeatable.
    #[arg(long = "skip", value_name = "ID")]
    pub skips: Vec<String>,
    /// How the report is printed: a table for people, or JSON for CI.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `modelstage check`: prints the report; exits 0 when no check failed, 1 when one did, 2 when
/// the checks could not run.
pub fn run(args: CheckArgs) -> Result<(), crate::CommandError> {
    let report = check(&args).map_err(crate::CommandError::CannotCheck)?;
    match args.format {
        Format::Table => print!("{}", report.table()),
        Format::Json => println!("{}", report.json()),
    }
    match report.failed() {
        0 => Ok(()),
        failed => Err(crate::CommandError::ChecksFailed { failed }),
    }
}

/// Everything the user gave, read and checked before anything starts.
struct Plan {
    target: Target,
    requests: Requests,
    model_dir: ModelDir,
    train: Option<(training::TrainSample, std::collections::BTreeMap<String, String>)>,
    skips: Vec<&'static str>,
}

/// The model folder: the user's, or an empty one of our own.
enum ModelDir {
    Given(PathBuf),
    Empty(tempfile::TempDir),
}

impl ModelDir {
    fn path(&self) -> &Path {
        match self {
            ModelDir::Given(path) => path,
            ModelDir::Empty(dir) => dir.path(),
        }
    }
}

fn plan(args: &CheckArgs) -> anyhow::Result<Plan> {
    let mut skips = Vec::new();
    for text in &args.skips {
        match ids::find(text.trim()) {
            Some(id) => skips.push(id),
            None => {
                let known: Vec<&str> = ids::ALL.iter().map(|(id, _)| *id).collect();
                bail!("--skip {text}: no such check (the checks: {})", known.join(", "));
            }
        }
    }
    let sample = match (&args.sample, &args.content_type) {
        (Some(file), Some(content_type)) => Some(Sample {
            body: std::fs::read(file).with_context(|| format!("cannot read --sample {}", file.display()))?,
            content_type: content_type.clone(),
        }),
        _ => None,
    };
    let target = Target::parse(&args.target)?;
    let model_dir = match &args.model_dir {
        Some(dir) if !dir.is_dir() => bail!("--model-dir {} is not a folder", dir.display()),
        // Absolute: Docker mounts need it.
        Some(dir) => ModelDir::Given(
            dir.canonicalize()
                .with_context(|| format!("cannot resolve --model-dir {}", dir.display()))?,
        ),
        None => ModelDir::Empty(
            tempfile::Builder::new()
                .prefix("modelstage-check-model-")
                .tempdir()
                .context("cannot create an empty model folder")?,
        ),
    };
    let train = match &args.train_sample {
        Some(dir) => {
            let sample = training::TrainSample::read(dir)?;
            let bad = match &args.bad_hyperparameters {
                Some(file) => training::read_hyperparameters(file)?,
                None => training::garbage_hyperparameters(&sample.hyperparameters),
            };
            Some((sample, bad))
        }
        None => None,
    };
    Ok(Plan {
        target,
        requests: Requests {
            sample,
            accept: args.accept.clone(),
        },
        model_dir,
        train,
        skips,
    })
}

/// Runs every check; an error means the checks could not run at all (a bad argument, no engine).
pub fn check(args: &CheckArgs) -> anyhow::Result<Report> {
    let plan = plan(args)?;
    let mut report = Report::new(plan.target.to_string());
    for (id, _) in ids::ALL {
        report.record(id, Verdict::Skip("not reached".into()));
    }
    not_applicable(&plan, &mut report);
    if let Target::Image(image) = &plan.target {
        image::check_image(image, &mut report);
    }
    let ready = Duration::from_secs(args.ready_timeout);
    match &plan.target {
        Target::Url(url) => check_url(url, &plan.requests, ready, &mut report)?,
        target => {
            let grace = Duration::from_secs(args.stop_grace);
            check_started(target, &plan, ready, grace, &mut report)?;
        }
    }
    if let Some((sample, bad)) = &plan.train {
        let limit = Duration::from_secs(args.train_timeout);
        training::check_training(&plan.target, sample, bad, limit, &mut report);
    }
    for id in &plan.skips {
        report.record(id, Verdict::Skip("skipped with --skip".into()));
    }
    Ok(report)
}

/// The checks that do not apply to this kind of target, with why.
fn not_applicable(plan: &Plan, report: &mut Report) {
    let mut skip = |id: &'static str, why: &str| report.record(id, Verdict::Skip(why.to_string()));
    if !matches!(plan.target, Target::Image(_)) {
        for id in [ids::IMAGE_LABEL, ids::IMAGE_ENTRYPOINT, ids::IMAGE_SERVE_ARG] {
            skip(id, "not an image");
        }
    }
    if let Target::Url(_) = plan.target {
        let why = "an endpoint started elsewhere: the checker does not start or stop it";
        for id in [ids::PING_BEFORE_LOAD, ids::BIND_TO_PORT, ids::SIGTERM] {
            skip(id, why);
        }
    }
    if plan.train.is_none() || !plan.target.runnable() {
        let why = if plan.target.runnable() {
            "no --train-sample given"
        } else {
            "an endpoint has no training container"
        };
        for id in [
            ids::TRAIN_MODEL,
            ids::TRAIN_SUCCESS,
            ids::TRAIN_BAD_HYPERPARAMETER,
        ] {
            skip(id, why);
        }
    }
}

/// An endpoint someone else runs: waits for `/ping` 200, then the HTTP checks.
fn check_url(url: &str, requests: &Requests, ready: Duration, report: &mut Report) -> anyhow::Result<()> {
    let client = http::Client::new(url)?;
    let began = std::time::Instant::now();
    loop {
        let last = match client.ping() {
            Ok(answer) if answer.status == 200 => {
                let seen = format!("200 after {:.1} s", began.elapsed().as_secs_f64());
                report.record(ids::PING_AFTER_LOAD, Verdict::Pass(seen));
                break;
            }
            Ok(answer) => answer.describe(),
            Err(e) => format!("no answer: {e}"),
        };
        if began.elapsed() >= ready {
            let evidence = format!("no 200 within {} s; last: {last}", ready.as_secs());
            report.record(ids::PING_AFTER_LOAD, Verdict::Fail(evidence));
            not_healthy(report);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    serving::check_endpoint(&client, requests, PayloadLimit::Unknown, report);
    Ok(())
}

/// The HTTP checks that cannot run on an endpoint that never became healthy.
fn not_healthy(report: &mut Report) {
    let why = "the endpoint never answered /ping with 200 (see ping.after-load)";
    for id in [
        ids::SAMPLE,
        ids::ACCEPT,
        ids::CONTENT_TYPE_415,
        ids::ACCEPT_406,
        ids::PAYLOAD_413,
        ids::EXECUTION_PARAMETERS,
    ] {
        report.record(id, Verdict::Skip(why.into()));
    }
}

/// A library or an image: started with `SAGEMAKER_BIND_TO_PORT` and a low payload limit, watched
/// while it loads, checked over HTTP, then stopped with SIGTERM.
fn check_started(
    target: &Target,
    plan: &Plan,
    ready: Duration,
    grace: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let env = [("SAGEMAKER_MAX_PAYLOAD_IN_MB", CHECK_MAX_PAYLOAD_MB.to_string())];
    let mut server = match launch::start(target, plan.model_dir.path(), &env) {
        Ok(server) => server,
        // An image the engine cannot start is the image's failure, reported like the others.
        Err(e) if matches!(target, Target::Image(_)) => {
            let evidence = format!("{e:#}");
            report.record(ids::IMAGE_SERVE_ARG, Verdict::Fail(evidence.clone()));
            report.record(ids::PING_AFTER_LOAD, Verdict::Fail(evidence));
            let why = "the container did not start (see image.serve-argument)";
            for id in [ids::PING_BEFORE_LOAD, ids::BIND_TO_PORT, ids::SIGTERM] {
                report.record(id, Verdict::Skip(why.into()));
            }
            not_healthy(report);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let startup = server.watch_startup(ready)?;
    let image = matches!(target, Target::Image(_));
    record_startup(
        image,
        server.port,
        &|| server.log_excerpt(),
        &startup,
        ready,
        report,
    );
    match startup {
        Startup::Ready { .. } => {
            let client = http::Client::new(&server.url())?;
            let limit = PayloadLimit::Set(CHECK_MAX_PAYLOAD_MB);
            serving::check_endpoint(&client, &plan.requests, limit, report);
        }
        Startup::Exited { .. } => {
            not_healthy(report);
            let why = "the server had already exited (see ping.after-load)";
            report.record(ids::SIGTERM, Verdict::Skip(why.into()));
            return Ok(());
        }
        // Not healthy, but running: it must still stop when told to.
        Startup::NotReady { .. } | Startup::Silent => not_healthy(report),
    }
    report.record(ids::SIGTERM, sigterm(&mut server, grace));
    Ok(())
}

/// The ping, port and (for an `image`) serve-argument checks, from how the server on `port` came
/// up; `log` gives its last lines, the evidence of a failure (read only then: for an image it is
/// a `docker logs`).
fn record_startup(
    image: bool,
    port: u16,
    log: &dyn Fn() -> String,
    startup: &Startup,
    ready: Duration,
    report: &mut Report,
) {
    let statuses = |list: &[u16]| {
        let texts: Vec<String> = list.iter().map(u16::to_string).collect();
        texts.join(", ")
    };
    // While loading, 503 says "not yet" and 200 "ready"; anything else is wrong.
    let before = |first: u16| match first {
        503 => Verdict::Pass("first answer: 503 (loading)".into()),
        200 => Verdict::Pass("first answer: 200 (the model was already loaded)".into()),
        other => Verdict::Fail(format!(
            "first answer: {other}; while loading, 503 or 200 is expected"
        )),
    };
    let (before_load, after_load, bound) = match startup {
        Startup::Ready { first, after } => (
            before(*first),
            Verdict::Pass(format!("200 after {:.1} s", after.as_secs_f64())),
            Verdict::Pass(format!("answered on port {port}")),
        ),
        Startup::NotReady { statuses: seen } => (
            before(seen[0]),
            Verdict::Fail(format!(
                "no 200 within {} s; answers seen: {}",
                ready.as_secs(),
                statuses(seen)
            )),
            Verdict::Pass(format!("answered on port {port}")),
        ),
        Startup::Silent => {
            let evidence = format!(
                "nothing answered on port {port} (given as SAGEMAKER_BIND_TO_PORT) within {} s; {}",
                ready.as_secs(),
                log()
            );
            (
                Verdict::Skip("nothing answered on the port (see env.bind-to-port)".into()),
                Verdict::Fail("nothing answered (see env.bind-to-port)".into()),
                Verdict::Fail(evidence),
            )
        }
        Startup::Exited { how, statuses: seen } => {
            let evidence = format!(
                "the server {how} before /ping answered 200 (answers seen: {}); {}",
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    statuses(seen)
                },
                log()
            );
            let unknown = || Verdict::Skip(format!("the server {how} before it answered"));
            match seen.first() {
                Some(first) => (
                    before(*first),
                    Verdict::Fail(evidence),
                    Verdict::Pass(format!("answered on port {port}")),
                ),
                None => (unknown(), Verdict::Fail(evidence), unknown()),
            }
        }
    };
    // The argument was taken if a server came up, healthy or not.
    let serve_arg = match startup {
        Startup::Ready { .. } | Startup::NotReady { .. } => {
            Verdict::Pass("`serve` started a server that answers /ping".into())
        }
        Startup::Exited { how, .. } => Verdict::Fail(format!(
            "with `serve` the container {how} (its log is under ping.after-load)"
        )),
        Startup::Silent => {
            Verdict::Fail("with `serve`, nothing answered /ping (see env.bind-to-port)".into())
        }
    };
    report.record(ids::PING_BEFORE_LOAD, before_load);
    report.record(ids::PING_AFTER_LOAD, after_load);
    report.record(ids::BIND_TO_PORT, bound);
    if image {
        report.record(ids::IMAGE_SERVE_ARG, serve_arg);
    }
}

/// SIGTERM, as SageMaker stops a container: it must exit before the grace period ends (the SIGKILL
/// that follows it is the failure).
fn sigterm(server: &mut Started, grace: Duration) -> Verdict {
    let (ended, took) = server.terminate(grace);
    match ended {
        None => Verdict::Fail(format!(
            "still not known to have ended {:.1} s after SIGTERM (and SIGKILL after {} s)",
            took.as_secs_f64(),
            grace.as_secs()
        )),
        Some(how) if killed(how) => Verdict::Fail(format!(
            "did not exit within {} s of SIGTERM: it {how} (SIGKILL); {}",
            grace.as_secs(),
            server.log_excerpt()
        )),
        Some(how) => Verdict::Pass(format!("{how} {:.1} s after SIGTERM", took.as_secs_f64())),
    }
}

/// Whether the end was the SIGKILL that follows an unanswered SIGTERM.
fn killed(ended: Ended) -> bool {
    use std::os::unix::process::ExitStatusExt;
    match ended {
        Ended::Process(status) => status.signal() == Some(9),
        Ended::Docker(exit) => exit.code == 137 && !exit.oom_killed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup_report(startup: Startup) -> Report {
        let mut report = Report::new("image x".into());
        let log = "its last log lines:\n  \"listening on 8080\"";
        record_startup(
            true,
            4321,
            &|| log.to_string(),
            &startup,
            Duration::from_secs(5),
            &mut report,
        );
        report
    }

    #[test]
    fn a_server_that_listens_elsewhere_fails_the_port_check_with_its_log() {
        let report = startup_report(Startup::Silent);
        let Some(Verdict::Fail(evidence)) = report.get(ids::BIND_TO_PORT) else {
            panic!("{report:?}");
        };
        assert!(evidence
            .starts_with("nothing answered on port 4321 (given as SAGEMAKER_BIND_TO_PORT) within 5 s"));
        assert!(evidence.contains("listening on 8080"), "{evidence}");
        assert!(matches!(
            report.get(ids::PING_BEFORE_LOAD),
            Some(Verdict::Skip(_))
        ));
        assert!(matches!(report.get(ids::PING_AFTER_LOAD), Some(Verdict::Fail(_))));
        assert!(matches!(report.get(ids::IMAGE_SERVE_ARG), Some(Verdict::Fail(_))));
    }

    #[test]
    fn a_first_answer_other_than_503_or_200_fails_before_load() {
        let report = startup_report(Startup::NotReady {
            statuses: vec![500, 503],
        });
        assert_eq!(
            report.get(ids::PING_BEFORE_LOAD),
            Some(&Verdict::Fail(
                "first answer: 500; while loading, 503 or 200 is expected".into()
            ))
        );
        assert_eq!(
            report.get(ids::PING_AFTER_LOAD),
            Some(&Verdict::Fail("no 200 within 5 s; answers seen: 500, 503".into()))
        );
        // It runs and answers: `serve` was taken.
        assert!(matches!(report.get(ids::IMAGE_SERVE_ARG), Some(Verdict::Pass(_))));
    }

    #[test]
    fn only_images_get_the_serve_argument_check() {
        let mut report = Report::new("lib".into());
        let ready = Startup::Ready {
            first: 503,
            after: Duration::from_millis(1500),
        };
        record_startup(
            false,
            1,
            &String::new,
            &ready,
            Duration::from_secs(5),
            &mut report,
        );
        assert_eq!(report.get(ids::IMAGE_SERVE_ARG), None);
        assert_eq!(
            report.get(ids::PING_AFTER_LOAD),
            Some(&Verdict::Pass("200 after 1.5 s".into()))
        );
    }
}
