//! `modelstage train` and `modelstage fit`: the training environment checked variable by variable
//! against docs/contract.md (Training), the failure paths (failure file, exit code, message), SIGTERM, a
//! local training job whose model.tar.gz `serve` loads, and the refusal of unsafe tarballs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// A `/opt/ml` tree laid out by hand, as the platform lays it out.
struct Tree {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl Tree {
    fn new(hyperparameters: Value, input_data_config: Value, resource_config: Value) -> Tree {
        let dir = tempdir();
        let base = dir.path().join("opt/ml");
        let config = base.join("input/config");
        std::fs::create_dir_all(&config).unwrap();
        for (file, value) in [
            ("hyperparameters.json", hyperparameters),
            ("inputdataconfig.json", input_data_config.clone()),
            ("resourceconfig.json", resource_config),
        ] {
            std::fs::write(config.join(file), value.to_string()).unwrap();
        }
        Tree { _dir: dir, base }
    }

    /// One host, no channels.
    fn simple(hyperparameters: Value) -> Tree {
        Tree::new(
            hyperparameters,
            json!({}),
            json!({"current_host": "algo-1", "hosts": ["algo-1"]}),
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    fn base_str(&self) -> &str {
        self.base.to_str().unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `modelstage train` on this tree, in an environment without any SageMaker variables of the
    /// test runner's own.
    fn command(&self, stage: &Path) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("train").arg("--stage").arg(stage);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("SM_") || text.starts_with("SAGEMAKER_") || text == "MODELSTAGE_STAGE" {
                cmd.env_remove(&name);
            }
        }
        cmd.env("SAGEMAKER_BASE_DIR", &self.base);
        cmd
    }

    fn train(&self, stage: &Path) -> Output {
        self.command(stage).output().expect("run modelstage train")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed run: exit code 1, no success file, the failure file equal to (or containing)
/// `reason`, and the reason in the log.
fn assert_failed(tree: &Tree, out: &Output, reason: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(!tree.path("output/success").exists());
    let failure = tree.read("output/failure");
    assert!(failure.contains(reason), "failure file: {failure}");
    assert!(stderr.contains(reason), "stderr:\n{stderr}");
    failure
}

/// The job of the parity test: the training toolkit's documented example (docs/contract.md,
/// Training) plus special keys, two channels, host 2 of 2.
fn parity_tree() -> Tree {
    let hyperparameters = json!({
        "epochs": "10", "learning-rate": "0.01", "flag": "true", "name": "\"abc\"", "plain": "abc",
        "lst": "[1, 2]", "d": "{\"b\": 2, \"a\": \"x\"}", "x": "null",
        "sagemaker_program": "\"train.py\"", "sagemaker_container_log_level": "20",
        "sagemaker_custom_flag": "true"
    });
    let input_data_config = json!({
        "train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                  "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
        "validation": {"TrainingInputMode": "File",
                       "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    });
    let resource_config = json!({
        "current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth1"
    });
    let tree = Tree::new(hyperparameters, input_data_config, resource_config);
    tree.write("input/data/train/part-0.csv", "1,2,3\n");
    tree.write("input/data/validation/v.csv", "4,5,6\n");
    tree
}

#[test]
fn training_environment_matches_the_toolkit() {
    let tree = parity_tree();
    let out = tree
        .command(&stage_lib("echo"))
        .env("TRAINING_JOB_NAME", "parity-job")
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert_eq!(tree.read("output/success"), "");
    assert!(!tree.path("output/failure").exists());

    let sm: BTreeMap<String, String> = serde_json::from_str(&tree.read("model/sm_env.json")).unwrap();
    let base = tree.base_str();
    let p = |rel: &str| format!("{base}/{rel}");
    // docs/contract.md (Training): the documented example's SM_HP_* and SM_HPS verbatim, and
    // SM_USER_ARGS.
    let mut expected: BTreeMap<&str, String> = [
        ("SM_HP_EPOCHS", "10"),
        ("SM_HP_LEARNING-RATE", "0.01"),
        ("SM_HP_FLAG", "true"),
        ("SM_HP_NAME", "abc"),
        ("SM_HP_PLAIN", "abc"),
        ("SM_HP_LST", "[1,2]"),
        ("SM_HP_D", r#"{"a":"x","b":2}"#),
        ("SM_HP_X", ""),
        (
            "SM_HPS",
            r#"{"d":{"a":"x","b":2},"epochs":10,"flag":true,"learning-rate":0.01,"lst":[1,2],"name":"abc","plain":"abc","x":null}"#,
        ),
        (
            "SM_USER_ARGS",
            r#"["-d","a=x,b=2","--epochs","10","--flag","True","--learning-rate","0.01","--lst","[1, 2]","--name","abc","--plain","abc","-x",""]"#,
        ),
        ("SM_FRAMEWORK_PARAMS", r#"{"sagemaker_custom_flag":true}"#),
        ("SM_CHANNELS", r#"["train","validation"]"#),
        ("SM_HOSTS", r#"["algo-1","algo-2"]"#),
        ("SM_CURRENT_HOST", "algo-2"),
        ("SM_NETWORK_INTERFACE_NAME", "eth1"),
        ("SM_LOG_LEVEL", "20"),
        ("SM_MODULE_NAME", "train"),
        ("SM_USER_ENTRY_POINT", "train.py"),
        ("SM_FRAMEWORK_MODULE", ""),
        ("SM_CURRENT_INSTANCE_TYPE", "local"),
        ("SM_CURRENT_INSTANCE_GROUP", "homogeneousCluster"),
        ("SM_CURRENT_INSTANCE_GROUP_HOSTS", "[]"),
        ("SM_INSTANCE_GROUPS", "[]"),
        ("SM_INSTANCE_GROUPS_DICT", "{}"),
        ("SM_DISTRIBUTION_INSTANCE_GROUPS", "[]"),
        ("SM_IS_HETERO", "false"),
        (
            "SM_RESOURCE_CONFIG",
            r#"{"current_host":"algo-2","hosts":["algo-1","algo-2"],"network_interface_name":"eth1"}"#,
        ),
        (
            "SM_INPUT_DATA_CONFIG",
            r#"{"train":{"ContentType":"text/csv","RecordWrapperType":"None","S3DistributionType":"FullyReplicated","TrainingInputMode":"File"},"validation":{"RecordWrapperType":"None","S3DistributionType":"FullyReplicated","TrainingInputMode":"File"}}"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    for (name, rel) in [
        ("SM_CHANNEL_TRAIN", "input/data/train"),
        ("SM_CHANNEL_VALIDATION", "input/data/validation"),
        ("SM_MODEL_DIR", "model"),
        ("SM_MODULE_DIR", "code"),
        ("SM_INPUT_DIR", "input"),
        ("SM_INPUT_CONFIG_DIR", "input/config"),
        ("SM_OUTPUT_DIR", "output"),
        ("SM_OUTPUT_DATA_DIR", "output/data"),
        ("SM_OUTPUT_INTERMEDIATE_DIR", "output/intermediate"),
    ] {
        expected.insert(name, p(rel));
    }
    for (name, value) in &expected {
        assert_eq!(sm.get(*name), Some(value), "{name}");
    }
    // Machine-dependent counts: whole numbers, and the same in SM_TRAINING_ENV.
    let env: Value = serde_json::from_str(&sm["SM_TRAINING_ENV"]).unwrap();
    for (name, key) in [
        ("SM_NUM_CPUS", "num_cpus"),
        ("SM_NUM_GPUS", "num_gpus"),
        ("SM_NUM_NEURONS", "num_neurons"),
    ] {
        let n: u64 = sm[name]
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {}", sm[name]));
        assert_eq!(env[key], json!(n), "{name}");
    }
    assert!(sm["SM_NUM_CPUS"] != "0");
    // Nothing more, nothing less.
    let mut names: Vec<&str> = expected.keys().copied().collect();
    names.extend(["SM_NUM_CPUS", "SM_NUM_GPUS", "SM_NUM_NEURONS", "SM_TRAINING_ENV"]);
    names.sort_unstable();
    assert_eq!(sm.keys().map(String::as_str).collect::<Vec<_>>(), names);

    // The hook received exactly SM_TRAINING_ENV, whose fields follow the same rules.
    assert_eq!(tree.read("model/training_env.json"), sm["SM_TRAINING_ENV"]);
    assert_eq!(env["job_name"], "parity-job");
    assert_eq!(
        env["hyperparameters"],
        serde_json::from_str::<Value>(&sm["SM_HPS"]).unwrap()
    );
    assert_eq!(
        env["channel_input_dirs"],
        json!({"train": p("input/data/train"), "validation": p("input/data/validation")})
    );
    assert_eq!(env["master_hostname"], "algo-1");
    assert_eq!(env["is_master"], false);
    assert_eq!(env["module_name"], "train");
    assert_eq!(
        env["additional_framework_parameters"],
        json!({"sagemaker_custom_flag": true})
    );
}

#[test]
fn a_bad_hyperparameter_fails_with_a_readable_reason() {
    let tree = Tree::simple(json!({"sleep_seconds": "ten"}));
    let out = tree.train(&stage_lib("echo"));
    let failure = assert_failed(
        &tree,
        &out,
        "hyperparameter 'sleep_seconds' must be a non-negative integer, got 'ten'",
    );
    assert_eq!(
        failure,
        "echo: train_fn: hyperparameter 'sleep_seconds' must be a non-negative integer, got 'ten'"
    );
}

#[test]
fn a_missing_channel_fails_before_the_hook_runs() {
    let tree = Tree::new(
        json!({}),
        json!({"train": {"TrainingInputMode": "File"}, "validation": {"TrainingInputMode": "File"}}),
        json!({"current_host": "algo-1", "hosts": ["algo-1"]}),
    );
    tree.write("input/data/train/a.csv", "1\n");
    let out = tree.train(&stage_lib("echo"));
    assert_failed(&tree, &out, "channel 'validation' is in inputdataconfig.json");
    assert!(
        !tree.path("model/training_env.json").exists(),
        "the hook must not run"
    );
}

#[test]
fn a_hook_error_and_a_panic_become_the_failure_reason() {
    let tree = Tree::simple(json!({"fail": "no rows in channel 'train'"}));
    let out = tree.train(&stage_lib("echo"));
    let failure = assert_failed(&tree, &out, "no rows in channel 'train'");
    assert_eq!(failure, "echo: train_fn: no rows in channel 'train'");

    let tree = Tree::simple(json!({"panic": "index out of bounds"}));
    let out = tree.train(&stage_lib("echo"));
    let failure = assert_failed(&tree, &out, "index out of bounds");
    assert!(failure.starts_with("echo: train_fn: panicked"), "{failure}");
}

#[test]
fn bad_configuration_and_a_stage_without_training_fail_clearly() {
    let tree = Tree::simple(json!({}));
    tree.write("input/config/resourceconfig.json", "{\"hosts\": [");
    assert_failed(
        &tree,
        &tree.train(&stage_lib("echo")),
        "resourceconfig.json is not valid JSON",
    );

    let tree = Tree::simple(json!({}));
    assert_failed(&tree, &tree.train(&stage_lib("c_echo")), "has no training hook");

    let tree = Tree::simple(json!({}));
    let missing = tree.path("no-such-stage.so");
    assert_failed(&tree, &tree.train(&missing), "no-such-stage.so");
}

#[test]
fn sigterm_stops_training_with_a_reason() {
    let tree = Tree::simple(json!({"sleep_seconds": "30"}));
    let mut child = tree
        .command(&stage_lib("echo"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The hook writes training_env.json before it sleeps.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tree.path("model/training_env.json").exists() {
        assert!(Instant::now() < deadline, "the hook did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "train did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(143));
    assert!(tree.read("output/failure").contains("stopped"));
    assert!(!tree.path("output/success").exists());
}

#[test]
fn fit_packs_a_model_that_serve_loads() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("train.csv"), "1,2\n3,4\n").unwrap();
    let out_dir = dir.path().join("artifacts");
    let stage = stage_lib("echo");
    let out = fit(&[
        "--stage",
        stage.to_str().unwrap(),
        "--channel",
        &format!("train={}", data.display()),
        "--content-type",
        "train=text/csv",
        "--hyperparameter",
        "epochs=3",
        "--output-path",
        out_dir.to_str().unwrap(),
        "--job-name",
        "round-trip",
    ]);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let model = out_dir.join("round-trip/output/model.tar.gz");
    assert!(
        text(&out.stdout).contains(&model.display().to_string()),
        "{}",
        text(&out.stdout)
    );
    // echo writes nothing to output/data, so there is no output.tar.gz.
    assert!(!out_dir.join("round-trip/output/output.tar.gz").exists());

    let unpacked = dir.path().join("model");
    untar_model(&model, &unpacked);
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(unpacked.join("training_env.json")).unwrap()).unwrap();
    assert_eq!(env["job_name"], "round-trip");
    assert_eq!(env["hyperparameters"], json!({"epochs": 3}));
    assert_eq!(env["hosts"], json!(["algo-1"]));
    assert_eq!(env["input_data_config"]["train"]["ContentType"], "text/csv");
    let sm: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(unpacked.join("sm_env.json")).unwrap()).unwrap();
    assert!(sm["SM_CHANNEL_TRAIN"].ends_with("/opt/ml/input/data/train"));

    let server = serve(&stage, &unpacked, &[]);
    let (status, _, body) = post(&server.url, "text/csv", None, b"1,2\n");
    assert_eq!(status, 200);
    assert_eq!(body, b"1,2\n");

    // The same job name again is refused, as SageMaker refuses it.
    let again = fit(&[
        "--stage",
        stage.to_str().unwrap(),
        "--output-path",
        out_dir.to_str().unwrap(),
        "--job-name",
        "round-trip",
    ]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already has output"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn fit_from_a_request_document_reports_the_failure_reason() {
    let dir = tempdir();
    let request = json!({
        "TrainingJobName": "failing-job",
        "AlgorithmSpecification": {"TrainingImage": stage_lib("echo"), "TrainingInputMode": "File"},
        "HyperParameters": {"fail": "the data has no label column"},
        "OutputDataConfig": {"S3OutputPath": format!("file://{}/out", dir.path().display())},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
        "RoleArn": "arn:aws:iam::111122223333:role/ignored"
    });
    let request_path = dir.path().join("job.json");
    std::fs::write(&request_path, request.to_string()).unwrap();
    let out = fit(&["--request", request_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Training job failing-job failed: echo: train_fn: the data has no label column"),
        "stderr:\n{stderr}"
    );
    assert!(!dir.path().join("out/failing-job/output/model.tar.gz").exists());
}

#[test]
fn a_tarball_with_parent_entries_is_refused() {
    let dir = tempdir();
    // GNU tar with -P keeps the '../' in the member name, as a hostile archive would.
    let work = dir.path().join("work/inner");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(dir.path().join("work/evil.txt"), "x").unwrap();
    std::fs::write(work.join("ok.txt"), "fine").unwrap();
    let tar_gz = dir.path().join("model.tar.gz");
    let made = Command::new("tar")
        .current_dir(&work)
        .args(["-czPf", tar_gz.to_str().unwrap(), "ok.txt", "../evil.txt"])
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::remove_file(dir.path().join("work/evil.txt")).unwrap();

    let dest = dir.path().join("work/inner/model");
    let err = modelstage_runtime::archive::unpack(&tar_gz, &dest).unwrap_err();
    assert!(
        format!("{err:#}").contains("refusing entry '../evil.txt'"),
        "{err:#}"
    );
    assert!(!dir.path().join("work/inner/evil.txt").exists());
    assert!(!dir.path().join("work/evil.txt").exists());
}
