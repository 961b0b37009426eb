//! `modelstage check`: the conformance checker run on the built-in stages (as libraries and as
//! images), which pass, and on the `ignores-accept` fixture (as a library, as an endpoint served
//! here, and as an image built from it), which fails exactly the checks it breaks. Every run is
//! read through `--format json`, so the ids the report promises are what the tests match on.
//!
//! The image tests live in the `docker` submodule (run with the Docker tests, skipped with them by
//! `--skip docker::`); without an engine they print why and return, except when `CI=true`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// The ids of every check, in report order.
const ALL: [&str; 16] = [
    "ping.before-load",
    "ping.after-load",
    "env.bind-to-port",
    "invocations.sample",
    "invocations.accept",
    "invocations.content-type-415",
    "invocations.accept-406",
    "invocations.payload-413",
    "execution-parameters",
    "signals.sigterm",
    "image.label-bind-to-port",
    "image.entrypoint-exec-form",
    "image.serve-argument",
    "train.model",
    "train.success",
    "train.bad-hyperparameter",
];

/// What the `ignores-accept` fixture breaks, wherever it runs.
const BROKEN_BY_IGNORES_ACCEPT: [&str; 2] = ["invocations.accept", "invocations.accept-406"];

/// Echo answers any Content-Type in that same type, by design: there is no type it cannot read
/// and no Accept it refuses, so these two checks do not apply to it.
const ECHO_SKIPS: [&str; 2] = ["invocations.content-type-415", "invocations.accept-406"];

/// One `modelstage check --format json` run.
struct Checked {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

impl Checked {
    fn outcome(&self, id: &str) -> &str {
        self.check(id)["outcome"].as_str().unwrap()
    }

    fn detail(&self, id: &str) -> &str {
        self.check(id)["detail"].as_str().unwrap()
    }

    fn check(&self, id: &str) -> &Value {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id} in {:#}", self.json))
    }

    fn with(&self, outcome: &str) -> BTreeSet<String> {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["outcome"] == outcome)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Everything, for assertion messages.
    fn show(&self) -> String {
        format!("{:#}\nstderr:\n{}", self.json, self.stderr)
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn run_check(target: &str, args: &[&str]) -> Checked {
    run_check_with_env(target, args, &[])
}

fn run_check_with_env(target: &str, args: &[&str], env: &[(&str, &str)]) -> Checked {
    let out = Command::new(bin())
        .arg("check")
        .arg(target)
        .args(args)
        .args(["--format", "json"])
        .envs(env.iter().copied())
        .output()
        .expect("run modelstage check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}"));
    // Both formats list every check, in the same order.
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ALL, "{json:#}");
    Checked {
        code: out.status.code(),
        json,
        stderr,
    }
}

/// Asserts that exactly `failing` failed, that the run said so, and that nothing else failed.
fn assert_fails_exactly(checked: &Checked, failing: &[&str]) {
    assert_eq!(checked.with("fail"), set(failing), "{}", checked.show());
    let expected_code = if failing.is_empty() { 0 } else { 1 };
    assert_eq!(checked.code, Some(expected_code), "{}", checked.show());
    assert_eq!(checked.json["passed"], failing.is_empty());
}

/// Asserts that the evidence of check `id` says `text`.
fn assert_detail(checked: &Checked, id: &str, text: &str) {
    let detail = checked.detail(id);
    assert!(
        detail.contains(text),
        "{id}: {text:?} not in {detail:?}\n{}",
        checked.show()
    );
}

fn write(path: &Path, text: &str) -> String {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The request and training data each built-in stage is checked with.
struct StageSample {
    sample: String,
    content_type: &'static str,
    accept: &'static str,
    train: String,
    /// Extra arguments (a model folder, bad hyperparameters, skips).
    extra: Vec<String>,
}

impl StageSample {
    fn args(&self) -> Vec<&str> {
        let mut args = vec![
            "--sample",
            &self.sample,
            "--content-type",
            self.content_type,
            "--accept",
            self.accept,
            "--train-sample",
            &self.train,
        ];
        args.extend(self.extra.iter().map(String::as_str));
        args
    }
}

fn echo_sample(dir: &Path) -> StageSample {
    write(&dir.join("train/train/data.txt"), "anything\n");
    StageSample {
        sample: write(&dir.join("sample.json"), r#"{"instances": [1, 2]}"#),
        content_type: "application/json",
        accept: "application/json",
        train: dir.join("train").to_str().unwrap().to_string(),
        // Echo reads only this hyperparameter; the built-in garbage leaves it out.
        extra: vec![
            "--bad-hyperparameters".into(),
            write(&dir.join("bad.json"), r#"{"sleep_seconds": "ten"}"#),
        ],
    }
}

fn featurizer_sample(dir: &Path) -> StageSample {
    let model = crate::featurizer::fit_abalone(&dir.join("fit"));
    std::fs::copy(abalone_csv(), {
        std::fs::create_dir_all(dir.join("train/train")).unwrap();
        dir.join("train/train/abalone.csv")
    })
    .unwrap();
    let columns = crate::featurizer::COLUMNS.split_once('=').unwrap().1;
    write(
        &dir.join("train/hyperparameters.json"),
        &serde_json::json!({"columns": columns, "categorical": "sex", "label": "rings"}).to_string(),
    );
    StageSample {
        sample: write(
            &dir.join("sample.csv"),
            "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n",
        ),
        content_type: "text/csv",
        accept: "application/json",
        train: dir.join("train").to_str().unwrap().to_string(),
        extra: vec!["--model-dir".into(), model.to_str().unwrap().to_string()],
    }
}

fn linear_learner_sample(dir: &Path) -> StageSample {
    let (model, _) = crate::linear_learner::fit_line(&dir.join("fit"));
    std::fs::create_dir_all(dir.join("train")).unwrap();
    let data = dir.join("fit/data/train/train.csv");
    std::fs::create_dir_all(dir.join("train/train")).unwrap();
    std::fs::copy(data, dir.join("train/train/train.csv")).unwrap();
    write(
        &dir.join("train/hyperparameters.json"),
        r#"{"predictor_type": "regressor", "feature_dim": "2", "mini_batch_size": "50", "epochs": "2"}"#,
    );
    StageSample {
        sample: write(&dir.join("sample.csv"), "1.5,2.0\n"),
        content_type: "text/csv",
        accept: "application/json",
        train: dir.join("train").to_str().unwrap().to_string(),
        extra: vec!["--model-dir".into(), model.to_str().unwrap().to_string()],
    }
}

/// Every check that applies to a library ran and passed; the image checks are skipped.
fn assert_library_passes(checked: &Checked, skipped_on_request: &[&str]) {
    assert_fails_exactly(checked, &[]);
    let mut skipped = set(&[
        "image.label-bind-to-port",
        "image.entrypoint-exec-form",
        "image.serve-argument",
    ]);
    skipped.extend(set(skipped_on_request));
    assert_eq!(checked.with("skip"), skipped, "{}", checked.show());
    for id in skipped_on_request {
        assert_eq!(checked.detail(id), "skipped with --skip");
    }
}

fn skips(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| ["--skip".to_string(), id.to_string()])
        .collect()
}

#[test]
fn echo_passes_every_check_that_applies_to_it() {
    let dir = tempdir();
    let mut sample = echo_sample(dir.path());
    let lib = stage_lib("echo");
    let lib = lib.to_str().unwrap();

    // As it is, echo answers an unknown Content-Type and an unknown Accept with 200: the two
    // checks fail, with the evidence.
    let plain = run_check(lib, &sample.args());
    assert_fails_exactly(&plain, &ECHO_SKIPS);
    assert_detail(&plain, "invocations.content-type-415", "expected 415, got 200");

    sample.extra.extend(skips(&ECHO_SKIPS));
    let checked = run_check(lib, &sample.args());
    assert_library_passes(&checked, &ECHO_SKIPS);
    assert_detail(
        &checked,
        "train.bad-hyperparameter",
        "'sleep_seconds' must be a non-negative integer",
    );
    assert_detail(&checked, "invocations.payload-413", "2097152 bytes");
}

#[test]
fn the_featurizer_with_a_fitted_model_passes_every_check() {
    let dir = tempdir();
    let sample = featurizer_sample(dir.path());
    let checked = run_check(stage_lib("featurizer").to_str().unwrap(), &sample.args());
    assert_library_passes(&checked, &[]);
    // The built-in bad hyperparameters fail the job in the stage's own training hook.
    assert_detail(
        &checked,
        "train.bad-hyperparameter",
        "output/failure: \"featurizer: train_fn:",
    );
}

#[test]
fn linear_learner_with_a_fitted_model_passes_every_check() {
    let dir = tempdir();
    let sample = linear_learner_sample(dir.path());
    let checked = run_check(stage_lib("linear_learner").to_str().unwrap(), &sample.args());
    assert_library_passes(&checked, &[]);
    assert_detail(&checked, "signals.sigterm", "exited with status 0");
}

fn ignores_accept_args(dir: &Path) -> Vec<String> {
    vec![
        "--sample".into(),
        write(&dir.join("sample.json"), "[[1.5, 2.0]]"),
        "--content-type".into(),
        "application/json".into(),
        "--accept".into(),
        "application/json".into(),
    ]
}

#[test]
fn a_stage_that_ignores_accept_fails_exactly_the_accept_checks() {
    let dir = tempdir();
    let args = ignores_accept_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = run_check(stage_lib("ignores_accept").to_str().unwrap(), &args);
    assert_fails_exactly(&checked, &BROKEN_BY_IGNORES_ACCEPT);
    assert_eq!(
        checked.detail("invocations.accept"),
        r#"asked for "application/json", got Content-Type "text/csv""#
    );
    assert_detail(&checked, "invocations.accept-406", "expected 406, got 200");
    // What it does keep, it passes.
    for id in [
        "invocations.content-type-415",
        "invocations.payload-413",
        "signals.sigterm",
    ] {
        assert_eq!(checked.outcome(id), "pass", "{}", checked.show());
    }
}

#[test]
fn a_stage_that_ignores_accept_fails_the_same_checks_as_an_endpoint_url() {
    let dir = tempdir();
    let server = serve(&stage_lib("ignores_accept"), dir.path(), &[]);
    let args = ignores_accept_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = run_check(&server.url, &args);
    assert_fails_exactly(&checked, &BROKEN_BY_IGNORES_ACCEPT);
    // What needs the container in hand is skipped, saying why.
    for id in ["ping.before-load", "env.bind-to-port", "signals.sigterm"] {
        assert_eq!(checked.outcome(id), "skip");
        assert_detail(&checked, id, "started elsewhere");
    }
    assert_detail(&checked, "train.model", "no training container");
    // Nobody set the limit low here: just over the endpoint's own 6 MB is sent.
    assert_detail(
        &checked,
        "invocations.payload-413",
        "6291457 bytes against MaxPayloadInMB=6",
    );
    assert_eq!(checked.outcome("invocations.payload-413"), "pass");
}

#[test]
fn a_server_that_exits_while_loading_fails_the_ping_checks_with_its_log() {
    let checked = run_check(stage_lib("failing_model").to_str().unwrap(), &[]);
    // Whether it answered 503 before it exited depends on timing; either way only the wait for
    // 200 fails (what it answered before, if anything, was right).
    assert_fails_exactly(&checked, &["ping.after-load"]);
    assert_detail(&checked, "ping.after-load", "exited with status 1");
    assert_detail(&checked, "ping.after-load", "its last log lines");
    assert_detail(&checked, "invocations.sample", "never answered /ping with 200");
    assert_detail(&checked, "signals.sigterm", "already exited");
}

#[test]
fn the_table_names_every_check_and_the_exit_status_says_failed() {
    let dir = tempdir();
    let args = ignores_accept_args(dir.path());
    let out = Command::new(bin())
        .arg("check")
        .arg(stage_lib("ignores_accept"))
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    for id in ALL {
        assert!(table.contains(id), "{id} missing:\n{table}");
    }
    let accept_line = table
        .lines()
        .find(|l| l.starts_with("invocations.accept "))
        .unwrap();
    assert!(accept_line.contains(" fail "), "{table}");
    assert!(table.contains("8 passed, 2 failed, 6 skipped"), "{table}");
}

#[test]
fn a_server_still_loading_at_the_health_limit_fails_after_load_and_still_stops() {
    // The fixture's model takes a minute to load; the checker waits 15 s.
    let checked = run_check_with_env(
        stage_lib("slow").to_str().unwrap(),
        &["--ready-timeout", "15"],
        &[("FIXTURE_MODEL_SLEEP_MS", "60000")],
    );
    assert_fails_exactly(&checked, &["ping.after-load"]);
    assert_eq!(checked.detail("ping.before-load"), "first answer: 503 (loading)");
    assert_eq!(
        checked.detail("ping.after-load"),
        "no 200 within 15 s; answers seen: 503"
    );
    assert_eq!(checked.outcome("env.bind-to-port"), "pass");
    assert_eq!(checked.outcome("signals.sigterm"), "pass", "{}", checked.show());
}

#[test]
fn a_training_run_past_its_time_limit_is_stopped_and_fails() {
    let dir = tempdir();
    let sample = echo_sample(dir.path());
    // Echo's training hook waits this long when told to.
    write(
        &dir.path().join("train/hyperparameters.json"),
        r#"{"sleep_seconds": "600"}"#,
    );
    let mut args = sample.args();
    // Long enough for the bad run, which fails at once, even on a loaded machine.
    args.extend(["--train-timeout", "10"]);
    let checked = run_check(stage_lib("echo").to_str().unwrap(), &args);
    let mut failing = ECHO_SKIPS.to_vec();
    failing.extend(["train.model", "train.success"]);
    assert_fails_exactly(&checked, &failing);
    assert_detail(
        &checked,
        "train.model",
        "did not finish within 10 s (--train-timeout) and was stopped",
    );
    // The bad value is refused at once, well within the limit.
    assert_eq!(
        checked.outcome("train.bad-hyperparameter"),
        "pass",
        "{}",
        checked.show()
    );
}

#[test]
fn bad_arguments_are_refused_before_anything_starts() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["http://127.0.0.1:9/invocations"],
            "give scheme, host and port only",
        ),
        (&["./no-such-stage.so"], "neither a stage library file"),
        (
            &["http://127.0.0.1:9", "--skip", "ping.nope"],
            "--skip ping.nope: no such check",
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(bin()).arg("check").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// The built-in images and an image of the `ignores-accept` fixture, run on this machine's
/// engine.
mod docker {
    use std::sync::OnceLock;

    use super::*;

    const ECHO: &str = "modelstage/echo:latest";
    /// The `ignores-accept` library in place of echo's, with the SAGEMAKER_BIND_TO_PORT label
    /// turned off (a second defect, one only images can have).
    const IGNORES_ACCEPT_IMAGE: &str = "modelstage-check-fixture/ignores-accept:latest";
    /// Echo with a shell-form ENTRYPOINT: the runtime base has no shell, so it cannot start.
    const SHELL_FORM_IMAGE: &str = "modelstage-check-fixture/shell-form:latest";

    /// Builds the built-in images once, then the fixture images on top of the echo image: the
    /// same runtime base and binary, changed only where each fixture is broken.
    fn images() -> bool {
        static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
        if !docker_images() {
            return false;
        }
        let built = BUILT.get_or_init(|| {
            let env = Command::new("docker")
                .args(["image", "inspect", "--format", "{{json .Config.Env}}", ECHO])
                .output()
                .map_err(|e| e.to_string())?;
            let env: Vec<String> = serde_json::from_slice(&env.stdout).map_err(|e| e.to_string())?;
            let stage_path = env
                .iter()
                .find_map(|v| v.strip_prefix("MODELSTAGE_STAGE="))
                .ok_or(format!("{ECHO} sets no MODELSTAGE_STAGE: {env:?}"))?;
            build_fixture(
                IGNORES_ACCEPT_IMAGE,
                &format!(
                    "COPY stage.so {stage_path}\nLABEL \
                     com.amazonaws.sagemaker.capabilities.accept-bind-to-port=false \
                     com.modelstage.stage.name=ignores-accept"
                ),
            )?;
            build_fixture(SHELL_FORM_IMAGE, "ENTRYPOINT /usr/local/bin/modelstage")
        });
        if let Err(e) = built {
            panic!("{e}");
        }
        true
    }

    /// `docker build` of `FROM echo` plus `lines`, with the `ignores-accept` library in the
    /// context as `stage.so`.
    fn build_fixture(tag: &str, lines: &str) -> Result<(), String> {
        let context = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::copy(stage_lib("ignores_accept"), context.path().join("stage.so"))
            .map_err(|e| e.to_string())?;
        std::fs::write(
            context.path().join("Dockerfile"),
            format!("FROM {ECHO}\n{lines}\n"),
        )
        .map_err(|e| e.to_string())?;
        let out = Command::new("docker")
            .args(["build", "-q", "-t", tag])
            .arg(context.path())
            // As ci/docker-build.sh builds: BuildKit may look a local-only image up in a registry.
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "docker build of {tag} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn assert_image_passes(checked: &Checked, skipped_on_request: &[&str]) {
        assert_fails_exactly(checked, &[]);
        assert_eq!(
            checked.with("skip"),
            set(skipped_on_request),
            "{}",
            checked.show()
        );
        assert_eq!(
            checked.detail("image.entrypoint-exec-form"),
            r#"["/usr/local/bin/modelstage"]"#
        );
    }

    #[test]
    fn the_built_in_images_pass() {
        if !images() {
            return;
        }
        let dir = tempdir();
        let mut echo = echo_sample(&dir.path().join("echo"));
        echo.extra.extend(skips(&ECHO_SKIPS));
        let checked = run_check(ECHO, &echo.args());
        assert_image_passes(&checked, &ECHO_SKIPS);

        let featurizer = featurizer_sample(&dir.path().join("featurizer"));
        let checked = run_check("modelstage/featurizer:latest", &featurizer.args());
        assert_image_passes(&checked, &[]);

        let linear = linear_learner_sample(&dir.path().join("linear-learner"));
        let checked = run_check("modelstage/linear-learner:latest", &linear.args());
        assert_image_passes(&checked, &[]);
    }

    #[test]
    fn an_image_of_a_broken_stage_fails_exactly_what_it_breaks() {
        if !images() {
            return;
        }
        let dir = tempdir();
        let args = ignores_accept_args(dir.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let checked = run_check(IGNORES_ACCEPT_IMAGE, &args);
        let mut failing = BROKEN_BY_IGNORES_ACCEPT.to_vec();
        failing.push("image.label-bind-to-port");
        assert_fails_exactly(&checked, &failing);
        assert_detail(&checked, "image.label-bind-to-port", r#"is "false", not true"#);
        assert_eq!(checked.outcome("image.serve-argument"), "pass");
    }

    #[test]
    fn an_image_with_a_shell_form_entrypoint_fails_to_serve_and_says_why() {
        if !images() {
            return;
        }
        let checked = run_check(SHELL_FORM_IMAGE, &[]);
        assert_fails_exactly(
            &checked,
            &[
                "ping.after-load",
                "image.entrypoint-exec-form",
                "image.serve-argument",
            ],
        );
        assert_detail(&checked, "image.entrypoint-exec-form", "shell form");
        // The engine cannot even start it: /bin/sh is not in the image.
        assert_detail(&checked, "image.serve-argument", "/bin/sh");
        assert_detail(&checked, "signals.sigterm", "did not start");
    }
}
