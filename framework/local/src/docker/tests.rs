//! Unit tests of what needs no engine: command lines, parsing of docker's output, the
//! image-or-library rule. Running real containers is tested in tests/e2e/docker.rs.

use std::path::Path;

use super::container::{merge_timestamped, parse_port, parse_state};
use super::*;

fn position(args: &[String], wanted: &str) -> usize {
    args.iter()
        .position(|a| a == wanted)
        .unwrap_or_else(|| panic!("{wanted} not in {args:?}"))
}

/// The value that follows each occurrence of `flag`.
fn values(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

#[test]
fn training_spec_mounts_the_tree_at_opt_ml_and_passes_train_after_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ContainerSpec::training("modelstage/echo:latest", dir.path())
        .env("TRAINING_JOB_NAME", "job-1")
        .session("ms-1");
    let args = spec.run_args().unwrap();
    assert_eq!(&args[..2], ["run", "--detach"]);
    assert_eq!(values(&args, "--pull"), ["never"]);
    assert_eq!(
        values(&args, "--mount"),
        [format!(
            "type=bind,source={},target=/opt/ml",
            dir.path().display()
        )]
    );
    assert_eq!(values(&args, "--env"), ["TRAINING_JOB_NAME=job-1"]);
    assert_eq!(
        values(&args, "--label"),
        ["com.modelstage.managed=true", "com.modelstage.session=ms-1"]
    );
    // Everything after the image belongs to the container, so the image must come last but one.
    let image = position(&args, "modelstage/echo:latest");
    assert_eq!(&args[image + 1..], ["train"]);
    assert!(values(&args, "--publish").is_empty());
}

#[test]
fn serving_spec_sets_bind_to_port_only_off_the_default_port() {
    let dir = tempfile::tempdir().unwrap();
    let default = ContainerSpec::serving("img:1", dir.path(), 8080)
        .run_args()
        .unwrap();
    assert!(values(&default, "--env").is_empty());
    assert_eq!(values(&default, "--publish"), ["127.0.0.1::8080"]);
    assert_eq!(default.last().unwrap(), "serve");
    assert_eq!(
        values(&default, "--mount"),
        [format!(
            "type=bind,source={},target=/opt/ml/model",
            dir.path().display()
        )]
    );

    let second = ContainerSpec::serving("img:1", dir.path(), 8081)
        .publish(9000, 8082)
        .run_args()
        .unwrap();
    assert_eq!(values(&second, "--env"), ["SAGEMAKER_BIND_TO_PORT=8081"]);
    assert_eq!(
        values(&second, "--publish"),
        ["127.0.0.1::8081", "127.0.0.1:9000:8082"]
    );
}

#[test]
fn host_network_serving_listens_on_the_given_port_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = ContainerSpec::serving_on_host_network("img:1", dir.path(), 40123)
        .run_args()
        .unwrap();
    assert_eq!(values(&args, "--network"), ["host"]);
    assert_eq!(values(&args, "--env"), ["SAGEMAKER_BIND_TO_PORT=40123"]);
    assert!(values(&args, "--publish").is_empty());
    assert_eq!(args.last().unwrap(), "serve");
    // Publishing on a network the container does not own is refused, not silently dropped.
    let err = ContainerSpec::serving_on_host_network("img:1", dir.path(), 40123)
        .publish(0, 8080)
        .run_args()
        .unwrap_err();
    assert!(err.to_string().contains("network 'host'"), "{err}");
    let shared = ContainerSpec::new("img:1")
        .network("container:abc", None)
        .publish(0, 8080);
    assert!(shared.run_args().is_err());
}

#[test]
fn a_source_path_with_a_comma_or_quote_is_quoted_as_one_csv_field() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("a,b\"c");
    std::fs::create_dir(&odd).unwrap();
    let args = ContainerSpec::new("img:1")
        .mount_read_only(&odd, "/data")
        .run_args()
        .unwrap();
    assert_eq!(
        values(&args, "--mount"),
        [format!(
            "type=bind,\"source={}/a,b\"\"c\",target=/data,readonly",
            dir.path().display()
        )]
    );
}

#[test]
fn network_alias_and_entrypoint_and_user_are_passed() {
    let args = ContainerSpec::new("img:1")
        .name("featurizer-1")
        .network("ms-net", Some("featurizer".to_string()))
        .run_args()
        .unwrap();
    assert_eq!(values(&args, "--name"), ["featurizer-1"]);
    assert_eq!(values(&args, "--network"), ["ms-net"]);
    assert_eq!(values(&args, "--network-alias"), ["featurizer"]);

    let mut spec = ContainerSpec::new("img:1").arg("--flag");
    spec.entrypoint = Some("/bin/other".into());
    spec.user = Some("1000:1000".into());
    let args = spec.run_args().unwrap();
    assert_eq!(values(&args, "--entrypoint"), ["/bin/other"]);
    assert_eq!(values(&args, "--user"), ["1000:1000"]);
    // The entrypoint flag precedes the image; the container's own arguments follow it.
    assert!(position(&args, "--entrypoint") < position(&args, "img:1"));
    assert_eq!(args.last().unwrap(), "--flag");
}

#[test]
fn bad_values_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = |spec: ContainerSpec| spec.run_args().unwrap_err().to_string();

    assert!(err(ContainerSpec::new("  ")).contains("no image"));
    assert!(err(ContainerSpec::new("-v")).contains("'-v' is not an image reference"));
    assert!(err(ContainerSpec::new("img").mount(Path::new("rel/dir"), "/x")).contains("rel/dir"));
    let missing = dir.path().join("missing");
    assert!(err(ContainerSpec::new("img").mount(&missing, "/x")).contains("does not exist"));
    assert!(err(ContainerSpec::new("img").mount(dir.path(), "opt/ml")).contains("'opt/ml'"));
    assert!(err(ContainerSpec::new("img").env("A=B", "1")).contains("'A=B'"));
    assert!(err(ContainerSpec::new("img").env("A", "x\0y")).contains("A contains a NUL"));
    assert!(err(ContainerSpec::new("img").name("-bad")).contains("'-bad'"));
    assert!(err(ContainerSpec::new("img").name("has space")).contains("'has space'"));
    assert!(err(ContainerSpec::new("img").network("container:abc", Some("x".into()))).contains("'x'"));
    let mut no_network = ContainerSpec::new("img");
    no_network.network_alias = Some("lonely".into());
    assert!(err(no_network).contains("'lonely'"));
    assert!(err(ContainerSpec::new("img").publish(0, 0)).contains("port 0"));
}

#[test]
fn library_or_image() {
    // Decided by the text alone.
    assert_eq!(classify("modelstage/featurizer:latest", false), Some(true));
    assert_eq!(
        classify("123456789012.dkr.ecr.us-east-1.amazonaws.com/featurizer", false),
        Some(true)
    );
    assert_eq!(classify("featurizer:1.0", false), Some(true));
    assert_eq!(classify("target/release/libfeaturizer.so", false), Some(false));
    assert_eq!(classify("libfoo.so.1", false), Some(false));
    assert_eq!(classify("stage.dylib", false), Some(false));
    assert_eq!(classify("./featurizer", false), Some(false));
    assert_eq!(classify("/opt/stage", false), Some(false));
    assert_eq!(classify("", false), Some(false));
    // An existing file is a library whatever its name.
    assert_eq!(classify("modelstage/featurizer:latest", true), Some(false));
    // A bare name: only the engine knows.
    assert_eq!(classify("featurizer", false), None);
}

#[test]
fn docker_port_output_is_parsed() {
    assert_eq!(parse_port("127.0.0.1:49153\n"), Some(49153));
    assert_eq!(parse_port("0.0.0.0:32768\n[::]:32768\n"), Some(32768));
    assert_eq!(parse_port(""), None);
    assert_eq!(parse_port("Error: no public port"), None);
}

#[test]
fn docker_inspect_state_is_parsed() {
    let state = parse_state("exited false 137 true\n").unwrap();
    assert_eq!(state.status, "exited");
    assert!(!state.running);
    assert_eq!(
        state.exit,
        ContainerExit {
            code: 137,
            oom_killed: true
        }
    );
    assert!(parse_state("running true 0 false").unwrap().running);
    assert_eq!(parse_state("running maybe 0 false"), None);
    assert_eq!(parse_state("running"), None);
}

#[test]
fn exit_is_described() {
    let exit = |code, oom_killed| ContainerExit { code, oom_killed }.to_string();
    assert_eq!(exit(0, false), "exit code 0");
    assert_eq!(exit(143, false), "exit code 143 (ended by signal 15)");
    assert_eq!(exit(137, true), "exit code 137 (killed: out of memory)");
    assert!(ContainerExit {
        code: 0,
        oom_killed: false
    }
    .success());
    assert!(!ContainerExit {
        code: 1,
        oom_killed: false
    }
    .success());
}

#[test]
fn logs_of_both_streams_merge_in_time_order() {
    // Fractions of different lengths order by value: .5 s is after .123456789 s.
    let stdout = "2024-05-01T10:00:00.000000001Z one\n2024-05-01T10:00:00.5Z four\n";
    let stderr = "2024-05-01T10:00:00.123456789Z two\n2024-05-01T10:00:00.2Z three\n";
    assert_eq!(merge_timestamped(stdout, stderr), "one\ntwo\nthree\nfour\n");
    // Same instant: standard output first, each stream in its own order.
    let same = "2024-05-01T10:00:01.000000000Z";
    assert_eq!(
        merge_timestamped(&format!("{same} a\n{same} b\n"), &format!("{same} c\n")),
        "a\nb\nc\n"
    );
}

#[test]
fn session_ids_are_distinct_and_fit_in_names() {
    let a = new_session_id();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let b = new_session_id();
    assert_ne!(a, b);
    assert!(a.starts_with("ms-"));
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{a}");
}
