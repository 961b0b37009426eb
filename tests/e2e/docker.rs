//! Stages as Docker images, run on this machine's Docker engine: the images `ci/docker-build.sh`
//! builds (from the binaries of this test build), `serve` and `train` in containers with the
//! `/opt/ml` layout SageMaker uses, SIGTERM reaching the server, a killed container, and cleanup of
//! everything a session starts, also when its process is killed.
//!
//! Without an engine these tests print why and return, except when `CI=true`: then they fail,
//! because a CI machine without Docker would otherwise pass without testing anything.
//!
//! The abalone flow in containers runs through the local-mode commands given images (`fit`,
//! `transform`, `deploy`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modelstage_local::docker::{self, ContainerSpec, Session};
use serde_json::{json, Value};

use crate::support::*;

const ECHO: &str = "modelstage/echo:latest";
const FEATURIZER: &str = "modelstage/featurizer:latest";
const LINEAR_LEARNER: &str = "modelstage/linear-learner:latest";

/// Whether the engine answers; in CI an unreachable engine is a failure, never a skip.
pub(crate) fn engine() -> bool {
    docker_engine()
}

/// The built-in images, built once per test run (see [`docker_images`]).
fn images() -> bool {
    docker_images()
}

/// Waits until `GET /ping` on `url` answers 200; the container's log is in the panic message.
fn wait_ping(container: &docker::Container, url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ping(url) == Some(200) {
            return;
        }
        if !container.is_running().unwrap_or(false) {
            panic!(
                "the container exited before /ping answered:\n{}",
                container.logs().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no 200 from {url}/ping within {within:?}:\n{}",
        container.logs().unwrap_or_default()
    );
}

/// Containers of any state carrying `label` (a `key=value` filter).
fn containers_labelled(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "--all", "--quiet", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn container_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn network_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["network", "inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// What `modelstage inspect` says on the host about a stage library, as `field -> text`.
fn inspect_on_host(library: &Path) -> BTreeMap<String, String> {
    let out = Command::new(bin()).arg("inspect").arg(library).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn images_carry_the_contract_labels_and_an_exec_form_entrypoint() {
    if !images() {
        return;
    }
    for (image, library) in [
        (ECHO, "echo"),
        (FEATURIZER, "featurizer"),
        (LINEAR_LEARNER, "linear_learner"),
    ] {
        let labels = docker::image_labels(image).unwrap();
        assert_eq!(labels[docker::BIND_TO_PORT_LABEL], "true", "{image}");
        assert_eq!(labels[docker::MULTI_MODELS_LABEL], "true", "{image}");
        // The stage and ABI labels must say what the host's loader says about the same library.
        let host = inspect_on_host(&stage_lib(library));
        let (name, version) = host["stage"].split_once(' ').unwrap();
        assert_eq!(labels["com.modelstage.stage.name"], name, "{image}");
        assert_eq!(labels["com.modelstage.stage.version"], version, "{image}");
        let abi = host["abi"].split_whitespace().next().unwrap();
        assert_eq!(labels["com.modelstage.abi.version"], abi, "{image}");

        let out = Command::new("docker")
            .args([
                "image",
                "inspect",
                "--format",
                "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}}",
                image,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // Exec form (a JSON list, no /bin/sh -c) and no CMD: `train`/`serve` come from the caller.
        assert!(
            text.starts_with(r#"["/usr/local/bin/modelstage"] null "#),
            "{image}: {text}"
        );
        assert!(
            text.contains("MODELSTAGE_STAGE=/opt/modelstage/stage.so"),
            "{image}: {text}"
        );
    }
}

#[test]
fn serve_in_a_container_answers_ping_and_invocations_despite_extra_model_files() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    // What SageMaker's Python SDK mounts in local mode: the unpacked model next to its tarball.
    let model = tempdir();
    std::fs::write(model.path().join("model.tar.gz"), b"not read by serve").unwrap();
    std::fs::write(model.path().join("notes.txt"), b"an extra file").unwrap();
    let spec = ContainerSpec::serving(ECHO, model.path(), 8080).session(session.id());
    let container = docker::run_detached(&spec).unwrap();
    let url = container.url(8080).unwrap();
    wait_ping(&container, &url, Duration::from_secs(30));

    let body = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155";
    let (status, headers, answer) = post(&url, "text/csv", None, body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(answer, body);
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));
    let (status, parameters) = get(&url, "/execution-parameters");
    assert_eq!(status, 200);
    assert!(json(&parameters).get("MaxPayloadInMB").is_some());
    assert!(container.is_running().unwrap());
}

#[test]
fn serve_in_a_container_listens_on_sagemaker_bind_to_port() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let model = tempdir();
    let spec = ContainerSpec::serving(ECHO, model.path(), 8081).session(session.id());
    assert!(spec
        .env
        .contains(&("SAGEMAKER_BIND_TO_PORT".into(), "8081".into())));
    let container = docker::run_detached(&spec).unwrap();
    let url = container.url(8081).unwrap();
    wait_ping(&container, &url, Duration::from_secs(30));
    let (status, _, answer) = post(&url, "application/json", None, b"[1]");
    assert_eq!((status, answer.as_slice()), (200, b"[1]".as_slice()));
}

#[test]
fn serve_on_the_host_network_listens_on_sagemaker_bind_to_port() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let model = tempdir();
    let port = free_port();
    let spec = ContainerSpec::serving_on_host_network(ECHO, model.path(), port).session(session.id());
    let container = docker::run_detached(&spec).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_ping(&container, &url, Duration::from_secs(30));
    let (status, _, answer) = post(&url, "text/csv", None, b"1,2");
    assert_eq!((status, answer.as_slice()), (200, b"1,2".as_slice()));
}

#[test]
fn docker_stop_reaches_the_server_as_sigterm() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let model = tempdir();
    let container =
        docker::run_detached(&ContainerSpec::serving(ECHO, model.path(), 8080).session(session.id()))
            .unwrap();
    let url = container.url(8080).unwrap();
    wait_ping(&container, &url, Duration::from_secs(30));
    // With a shell in between, SIGTERM would not reach modelstage and docker would SIGKILL it
    // after the grace period (exit 137). The server shuts down gracefully instead.
    let grace = Duration::from_secs(20);
    let started = Instant::now();
    container.stop(grace).unwrap();
    let took = started.elapsed();
    let state = container.state().unwrap();
    assert!(!state.running);
    assert_ne!(
        state.exit.code,
        137,
        "killed, not stopped: {}",
        container.logs().unwrap()
    );
    assert!(took < grace / 2, "stopping took {took:?}");
}

/// A `/opt/ml` tree for the echo stage's training hook, laid out as SageMaker lays it out.
fn training_tree(root: &Path, hyperparameters: Value) -> PathBuf {
    let base = root.join("opt/ml");
    let config = base.join("input/config");
    std::fs::create_dir_all(&config).unwrap();
    let channels = json!({"training": {"ContentType": "text/csv", "TrainingInputMode": "File",
        "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}});
    let resources = json!({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"});
    for (file, value) in [
        ("hyperparameters.json", hyperparameters),
        ("inputdataconfig.json", channels),
        ("resourceconfig.json", resources),
    ] {
        std::fs::write(config.join(file), value.to_string()).unwrap();
    }
    let data = base.join("input/data/training");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("part-0.csv"), "1,2,3\n").unwrap();
    base
}

#[test]
fn train_in_a_container_writes_the_model_and_the_success_file() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let root = tempdir();
    let base = training_tree(root.path(), json!({"epochs": "3"}));
    let spec = ContainerSpec::training(ECHO, &base)
        .env("TRAINING_JOB_NAME", "docker-e2e")
        .session(session.id());
    let mut log = Vec::new();
    let exit = docker::run_to_completion(&spec, |line| log.push(line.to_string())).unwrap();
    let log = log.join("\n");
    assert!(exit.success(), "{exit}:\n{log}");
    assert!(base.join("output/success").is_file(), "{log}");
    assert!(!base.join("output/failure").exists());
    // The hook saw the container's paths, so it ran inside the container on the mounted tree.
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("model/training_env.json")).unwrap())
            .unwrap();
    assert_eq!(env["model_dir"], "/opt/ml/model", "{env}");
    assert_eq!(
        env["channel_input_dirs"]["training"], "/opt/ml/input/data/training",
        "{env}"
    );
    assert_eq!(env["hyperparameters"]["epochs"], 3, "{env}");
    assert_eq!(env["job_name"], "docker-e2e", "{env}");
    assert!(log.contains("/opt/ml/model"), "the log was not streamed:\n{log}");
    // run_to_completion removes the container.
    assert!(containers_labelled(&format!("{}={}", docker::SESSION_LABEL, session.id())).is_empty());
}

#[test]
fn a_failing_training_job_in_a_container_writes_the_failure_file_and_exits_non_zero() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let root = tempdir();
    let base = training_tree(root.path(), json!({"fail": "broken on purpose"}));
    let spec = ContainerSpec::training(ECHO, &base).session(session.id());
    let exit = docker::run_to_completion(&spec, |_| {}).unwrap();
    assert_eq!(exit.code, 1, "{exit}");
    let failure = std::fs::read_to_string(base.join("output/failure")).unwrap();
    assert!(failure.contains("broken on purpose"), "{failure}");
    assert!(!base.join("output/success").exists());
}

#[test]
fn a_killed_container_is_reported_and_then_removed() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let model = tempdir();
    let container =
        docker::run_detached(&ContainerSpec::serving(ECHO, model.path(), 8080).session(session.id()))
            .unwrap();
    let url = container.url(8080).unwrap();
    wait_ping(&container, &url, Duration::from_secs(30));
    container.kill().unwrap();
    let state = container.state().unwrap();
    assert!(!state.running);
    assert_eq!(state.exit.code, 137, "{state:?}");
    assert_eq!(ping(&url), None, "the killed container still answers");
    let id = container.id().to_string();
    container.remove().unwrap();
    assert!(!container_exists(&id));
}

#[test]
fn dropping_a_session_removes_its_containers_and_networks() {
    if !images() {
        return;
    }
    let session = Session::start().unwrap();
    let network_name = format!("{}-net", session.id());
    let network = docker::create_network(&network_name, session.id()).unwrap();
    let model = tempdir();
    let spec = ContainerSpec::serving(ECHO, model.path(), 8080)
        .network(network.name(), Some("featurizer".into()))
        .session(session.id());
    // Leaked on purpose: the session, not the Container guard, must remove it.
    let id = docker::run_detached(&spec).unwrap().id().to_string();
    let kept = docker::run_detached(&spec).unwrap();
    let kept_id = kept.id().to_string();
    std::mem::forget(kept);
    assert!(container_exists(&kept_id));
    assert!(
        !container_exists(&id),
        "a dropped Container must remove its container"
    );
    std::mem::forget(network);

    let label = format!("{}={}", docker::SESSION_LABEL, session.id());
    drop(session);
    assert!(containers_labelled(&label).is_empty());
    assert!(!container_exists(&kept_id));
    assert!(!network_exists(&network_name));
}

/// Run by [`the_watchdog_cleans_up_after_a_killed_process`] in a child process: starts a session
/// and a container, prints the container id, and waits to be killed.
#[test]
#[ignore = "the child process of the_watchdog_cleans_up_after_a_killed_process"]
fn watchdog_child() {
    if std::env::var("MODELSTAGE_WATCHDOG_CHILD").is_err() {
        return;
    }
    let session = Session::start().unwrap();
    let model = tempdir();
    let container =
        docker::run_detached(&ContainerSpec::serving(ECHO, model.path(), 8080).session(session.id()))
            .unwrap();
    println!("container={}", container.id());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn the_watchdog_cleans_up_after_a_killed_process() {
    if !images() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["docker::watchdog_child", "--exact", "--ignored", "--nocapture"])
        .env("MODELSTAGE_WATCHDOG_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut id = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(found) = line.unwrap().strip_prefix("container=") {
            id = Some(found.to_string());
            break;
        }
    }
    let id = id.expect("the child printed no container id");
    assert!(container_exists(&id));
    // SIGKILL: no destructor runs, only the watchdog can clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while container_exists(&id) {
        assert!(
            Instant::now() < deadline,
            "container {id} outlived its killed owner by 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn is_image_tells_images_from_libraries() {
    if !images() {
        return;
    }
    assert!(docker::is_image(ECHO));
    assert!(!docker::is_image(stage_lib("echo").to_str().unwrap()));
    assert!(docker::image_exists(ECHO));
    assert!(!docker::image_exists("modelstage/no-such-stage:latest"));
    let err = docker::run_detached(&ContainerSpec::new("modelstage/no-such-stage:latest").arg("serve"))
        .unwrap_err();
    assert!(err.to_string().contains("is not on this machine"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The abalone flow in containers, through the local-mode commands given images.

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

pub(crate) fn run_ok(mut command: Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// `modelstage fit --request job.json` with a TrainingImage; returns the model.tar.gz.
fn fit_image(dir: &Path, job: &str, image: &str, hyperparameters: Value, train: &Path) -> PathBuf {
    let request = json!({
        "TrainingJobName": job,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{
            "ChannelName": "train",
            "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": file_uri(train),
                "S3DataDistributionType": "FullyReplicated"}}
        }],
        "OutputDataConfig": {"S3OutputPath": file_uri(&dir.join("artifacts"))},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}
    });
    let path = dir.join(format!("{job}.json"));
    std::fs::write(&path, request.to_string()).unwrap();
    let mut command = Command::new(bin());
    command.arg("fit").arg("--request").arg(&path);
    run_ok(command, &format!("modelstage fit ({image})"));
    let model = dir.join("artifacts").join(job).join("output/model.tar.gz");
    assert!(model.is_file(), "{} is missing", model.display());
    model
}

/// A CreateModel request document for `containers` = [(image, model.tar.gz)].
fn model_document(dir: &Path, name: &str, containers: &[(&str, &Path)]) -> PathBuf {
    let defs: Vec<Value> = containers
        .iter()
        .map(|(image, model)| json!({"Image": image, "ModelDataUrl": file_uri(model)}))
        .collect();
    let document = if defs.len() == 1 {
        json!({"ModelName": name, "PrimaryContainer": defs[0]})
    } else {
        json!({"ModelName": name, "Containers": defs})
    };
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, document.to_string()).unwrap();
    path
}

const FEATURIZER_HPS: &str = r#"{"columns": "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight",
    "categorical": "sex", "label": "rings"}"#;

/// The example's training job (examples/abalone/featurizer-training-job.json) with the image as
/// TrainingImage: the container's model is the one the stage library trains as a process, byte
/// for byte, since both run the same stage on the same tree.
#[test]
fn fit_trains_the_featurizer_in_a_container() {
    if !images() {
        return;
    }
    let dir = tempdir();
    let hps: Value = serde_json::from_str(FEATURIZER_HPS).unwrap();
    let model = fit_image(
        dir.path(),
        "featurizer-docker",
        FEATURIZER,
        hps.clone(),
        &abalone_csv(),
    );
    let unpacked = dir.path().join("unpacked");
    untar_model(&model, &unpacked);
    let in_container = std::fs::read_to_string(unpacked.join("featurizer.json")).unwrap();
    let fitted: Value = serde_json::from_str(&in_container).unwrap();
    assert_eq!(fitted["rows"], 4177, "abalone.csv has 4177 rows");

    let library = stage_lib("featurizer");
    let model = fit_image(
        dir.path(),
        "featurizer-process",
        library.to_str().unwrap(),
        hps,
        &abalone_csv(),
    );
    let unpacked = dir.path().join("unpacked-process");
    untar_model(&model, &unpacked);
    let in_process = std::fs::read_to_string(unpacked.join("featurizer.json")).unwrap();
    assert_eq!(
        in_container, in_process,
        "the container and the process trained different models"
    );
}

/// The whole abalone example in containers: fit the featurizer, batch-transform the training data
/// through it, train Linear Learner on the result, deploy both as a serial pipeline, invoke, then
/// kill one container and see the endpoint report it.
#[test]
fn abalone_pipeline_in_containers() {
    if !images() {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let hps: Value = serde_json::from_str(FEATURIZER_HPS).unwrap();
    let featurizer_model = fit_image(d, "featurizer-docker", FEATURIZER, hps, &abalone_csv());

    // Batch transform of the training data: label-first CSV for Linear Learner.
    let featurizer_doc = model_document(d, "featurizer", &[(FEATURIZER, &featurizer_model)]);
    let input = d.join("transform-in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(abalone_csv(), input.join("abalone.csv")).unwrap();
    let mut command = Command::new(bin());
    command
        .arg("transform")
        .arg("--model")
        .arg(&featurizer_doc)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(d.join("transform-out"))
        .args([
            "--content-type",
            "text/csv",
            "--accept",
            "text/csv",
            "--split-type",
            "Line",
        ])
        .args(["--strategy", "MultiRecord", "--assemble-with", "Line", "--quiet"]);
    run_ok(command, "modelstage transform (featurizer image)");
    let features = d.join("transform-out/abalone.csv.out");
    let rows = std::fs::read_to_string(&features).unwrap();
    let expected_rows = std::fs::read_to_string(abalone_csv()).unwrap().lines().count();
    assert_eq!(rows.lines().count(), expected_rows);
    // Label first, then 7 scaled numbers and 3 one-hot columns.
    assert_eq!(rows.lines().next().unwrap().split(',').count(), 11);
    let train_dir = d.join("ll-train");
    std::fs::create_dir_all(&train_dir).unwrap();
    std::fs::copy(&features, train_dir.join("train.csv")).unwrap();

    let ll_hps = json!({"feature_dim": "10", "predictor_type": "regressor", "mini_batch_size": "32"});
    let ll_model = fit_image(d, "linear-learner-docker", LINEAR_LEARNER, ll_hps, &train_dir);

    // The serial pipeline, each stage in its own container behind the router.
    let pipeline = model_document(
        d,
        "abalone-pipeline",
        &[(FEATURIZER, &featurizer_model), (LINEAR_LEARNER, &ll_model)],
    );
    let port = free_port();
    let mut deploy = StopOnDrop(
        Command::new(bin())
            .arg("deploy")
            .arg("--request")
            .arg(&pipeline)
            .arg("--port")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ping(&url) != Some(200) {
        assert!(deploy.0.try_wait().unwrap().is_none(), "modelstage deploy exited");
        assert!(
            Instant::now() < deadline,
            "the pipeline endpoint was not ready in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let request = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155";
    let (status, _, body) = post(&url, "text/csv", Some("application/json"), request);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let score = json(&body)["predictions"][0]["score"].as_f64().unwrap();
    assert!((9.3..=9.9).contains(&score), "score {score}");

    // Kill the featurizer's container: the endpoint must notice and name it.
    let out = Command::new("docker")
        .args(["ps", "--quiet", "--filter", &format!("ancestor={FEATURIZER}")])
        .args(["--filter", &format!("label={}=true", docker::MANAGED_LABEL)])
        // The endpoint names its containers `<session>-<container name>`: other
        // tests may run featurizer containers of their own at the same time.
        .args(["--filter", "name=-container-1$"])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 1, "expected one featurizer container, found {ids:?}");
    let status = Command::new("docker").args(["kill", &ids[0]]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while ping(&url) == Some(200) {
        assert!(
            Instant::now() < deadline,
            "/ping still answers 200 with a dead container"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _, body) = post(&url, "text/csv", Some("application/json"), request);
    let text = String::from_utf8_lossy(&body);
    assert_ne!(status, 200, "{text}");
    assert!(
        text.contains("container-1") || text.contains("featurizer"),
        "the error does not name the dead container: {text}"
    );

    // Stopping the endpoint removes every container it started.
    let _ = Command::new("kill")
        .args(["-TERM", &deploy.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while deploy.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "modelstage deploy did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for image in [FEATURIZER, LINEAR_LEARNER] {
        let out = Command::new("docker")
            .args(["ps", "--all", "--quiet", "--filter", &format!("ancestor={image}")])
            .args(["--filter", &format!("label={}=true", docker::MANAGED_LABEL)])
            .args(["--filter", "name=-container-[0-9]+$"])
            .output()
            .unwrap();
        assert!(out.stdout.is_empty(), "containers of {image} left behind");
    }
}

/// Stops a `modelstage deploy` started by a test when the test ends early (a
/// failed assertion), so that its containers do not outlive the test.
pub(crate) struct StopOnDrop(pub(crate) std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}
