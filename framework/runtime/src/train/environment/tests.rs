//! Tests of the training environment against docs/contract.md (Training). The expected values are
//! the training toolkit's documented example, or derived by hand from the toolkit's rules.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::*;

const FACTS: HostFacts = HostFacts {
    num_cpus: 4,
    num_gpus: 0,
    num_neurons: 0,
    smddpmprun_installed: false,
    smddprun_installed: false,
};

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// The training toolkit's documented example (its ENVIRONMENT_VARIABLES.md), plus two `sagemaker_` keys, on host 2 of 2 with two channels.
fn example_config() -> JobConfig {
    JobConfig {
        hyperparameters: object(json!({
            "epochs": "10", "learning-rate": "0.01", "flag": "true", "name": "\"abc\"", "plain": "abc",
            "lst": "[1, 2]", "d": "{\"b\": 2, \"a\": \"x\"}", "x": "null",
            "sagemaker_program": "\"train.py\"", "sagemaker_mpi_enabled": "true"
        })),
        input_data_config: object(json!({
            "train": {"ContentType": "text/csv", "TrainingInputMode": "File"},
            "test": {"TrainingInputMode": "File"}
        })),
        resource_config: object(json!({
            "current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth1"
        })),
    }
}

fn no_vars(_: &str) -> Option<String> {
    None
}

fn vars_of(env: &TrainingEnvironment) -> BTreeMap<String, String> {
    env.sm_vars().into_iter().collect()
}

#[test]
fn worked_example_of_the_contract() {
    let env =
        TrainingEnvironment::build(&Paths::new("/opt/ml"), &example_config(), &FACTS, &no_vars).unwrap();
    let v = vars_of(&env);
    let expected = [
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
        ("SM_CHANNELS", r#"["test","train"]"#),
        ("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"),
        ("SM_CHANNEL_TEST", "/opt/ml/input/data/test"),
        ("SM_HOSTS", r#"["algo-1","algo-2"]"#),
        ("SM_CURRENT_HOST", "algo-2"),
        ("SM_NETWORK_INTERFACE_NAME", "eth1"),
        ("SM_NUM_CPUS", "4"),
        ("SM_NUM_GPUS", "0"),
        ("SM_NUM_NEURONS", "0"),
        ("SM_LOG_LEVEL", "20"),
        ("SM_MODEL_DIR", "/opt/ml/model"),
        ("SM_INPUT_DIR", "/opt/ml/input"),
        ("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"),
        ("SM_OUTPUT_DIR", "/opt/ml/output"),
        ("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"),
        ("SM_OUTPUT_INTERMEDIATE_DIR", "/opt/ml/output/intermediate"),
        ("SM_MODULE_NAME", "train"),
        ("SM_MODULE_DIR", "/opt/ml/code"),
        ("SM_USER_ENTRY_POINT", "train.py"),
        ("SM_FRAMEWORK_PARAMS", r#"{"sagemaker_mpi_enabled":true}"#),
        ("SM_FRAMEWORK_MODULE", ""),
        ("SM_CURRENT_INSTANCE_TYPE", "local"),
        ("SM_CURRENT_INSTANCE_GROUP", "homogeneousCluster"),
        ("SM_CURRENT_INSTANCE_GROUP_HOSTS", "[]"),
        ("SM_INSTANCE_GROUPS", "[]"),
        ("SM_INSTANCE_GROUPS_DICT", "{}"),
        // sagemaker_mpi_enabled is truthy, so the current group is a distribution group.
        ("SM_DISTRIBUTION_INSTANCE_GROUPS", r#"["homogeneousCluster"]"#),
        ("SM_IS_HETERO", "false"),
        (
            "SM_RESOURCE_CONFIG",
            r#"{"current_host":"algo-2","hosts":["algo-1","algo-2"],"network_interface_name":"eth1"}"#,
        ),
        (
            "SM_INPUT_DATA_CONFIG",
            r#"{"test":{"TrainingInputMode":"File"},"train":{"ContentType":"text/csv","TrainingInputMode":"File"}}"#,
        ),
    ];
    for (name, value) in expected {
        assert_eq!(v.get(name).map(String::as_str), Some(value), "{name}");
    }
    // Nothing else but SM_TRAINING_ENV (checked below) and no SM_TOPOLOGY without a topology.
    assert_eq!(v.len(), expected.len() + 1, "{:?}", v.keys().collect::<Vec<_>>());
    assert_eq!(v["SM_TRAINING_ENV"], env.training_env_json());
}

#[test]
fn training_env_document() {
    let env = TrainingEnvironment::build(&Paths::new("/opt/ml"), &example_config(), &FACTS, &|name| {
        (name == "TRAINING_JOB_NAME").then(|| "job-1".to_string())
    })
    .unwrap();
    let doc: Value = serde_json::from_str(&env.training_env_json()).unwrap();
    let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    // The legacy toolkit's keys plus the training toolkit's, as docs/contract.md (Training) lists them.
    let expected_keys = [
        "additional_framework_parameters",
        "channel_input_dirs",
        "current_host",
        "current_instance_group",
        "current_instance_group_hosts",
        "current_instance_type",
        "distribution_hosts",
        "distribution_instance_groups",
        "framework_module",
        "hosts",
        "hyperparameters",
        "input_config_dir",
        "input_data_config",
        "input_dir",
        "instance_groups",
        "instance_groups_dict",
        "is_hetero",
        "is_master",
        "is_modelparallel_enabled",
        "is_smddpmprun_installed",
        "is_smddprun_installed",
        "job_name",
        "log_level",
        "master_hostname",
        "model_dir",
        "module_dir",
        "module_name",
        "network_interface_name",
        "num_cpus",
        "num_gpus",
        "num_neurons",
        "output_data_dir",
        "output_dir",
        "output_intermediate_dir",
        "resource_config",
        "topology",
        "user_entry_point",
    ];
    assert_eq!(keys, expected_keys);
    assert_eq!(doc["job_name"], "job-1");
    assert_eq!(doc["master_hostname"], "algo-1");
    assert_eq!(doc["is_master"], false);
    assert_eq!(doc["distribution_hosts"], json!(["algo-1", "algo-2"]));
    assert_eq!(
        doc["channel_input_dirs"],
        json!({"test": "/opt/ml/input/data/test", "train": "/opt/ml/input/data/train"})
    );
    assert_eq!(doc["hyperparameters"]["x"], Value::Null);
    assert!(!doc["hyperparameters"]
        .as_object()
        .unwrap()
        .contains_key("sagemaker_program"));
    assert_eq!(doc["is_modelparallel_enabled"], Value::Null);
    assert_eq!(doc["topology"], Value::Null);
    assert_eq!(
        env.toolkit_vars,
        [
            ("SAGEMAKER_JOB_NAME".to_string(), String::new()),
            ("CURRENT_HOST".to_string(), "algo-2".to_string()),
            ("SAGEMAKER_REGION".to_string(), String::new()),
        ]
    );
}

#[test]
fn defaults_without_special_hyperparameters() {
    let config = JobConfig {
        resource_config: object(json!({"current_host": "algo-1", "hosts": ["algo-1"]})),
        ..JobConfig::default()
    };
    let env = TrainingEnvironment::build(&Paths::new("/base/"), &config, &FACTS, &no_vars).unwrap();
    let v = vars_of(&env);
    // str(None) is "None" for the module name; a missing entry point renders as empty.
    assert_eq!(v["SM_MODULE_NAME"], "None");
    assert_eq!(v["SM_USER_ENTRY_POINT"], "");
    assert_eq!(v["SM_MODULE_DIR"], "/base/code");
    assert_eq!(v["SM_MODEL_DIR"], "/base/model");
    assert_eq!(v["SM_NETWORK_INTERFACE_NAME"], "eth0");
    assert_eq!(v["SM_HPS"], "{}");
    assert_eq!(v["SM_USER_ARGS"], "[]");
    assert_eq!(v["SM_CHANNELS"], "[]");
    assert_eq!(v["SM_FRAMEWORK_PARAMS"], "{}");
    assert_eq!(v["SM_DISTRIBUTION_INSTANCE_GROUPS"], "[]");
    let doc: Value = serde_json::from_str(&v["SM_TRAINING_ENV"]).unwrap();
    assert_eq!(doc["is_master"], true);
    assert_eq!(doc["job_name"], Value::Null);
}

#[test]
fn environment_overrides_and_special_hyperparameters() {
    let config = JobConfig {
        hyperparameters: object(json!({
            "sagemaker_container_log_level": "10", "sagemaker_region": "\"eu-west-1\"",
            "sagemaker_job_name": "\"j\"", "sagemaker_submit_directory": "\"s3://b/k/sourcedir.tar.gz\""
        })),
        resource_config: object(json!({"current_host": "algo-1", "hosts": ["algo-1"], "topology": {"a": 1}})),
        ..JobConfig::default()
    };
    let var = |name: &str| match name {
        "SAGEMAKER_PROGRAM" => Some("entry.py".to_string()),
        "SAGEMAKER_TRAINING_MODULE" => Some("pkg.mod:main".to_string()),
        "SM_HP_MP_PARAMETERS" => Some("{}".to_string()),
        _ => None,
    };
    let env = TrainingEnvironment::build(&Paths::new("/opt/ml"), &config, &FACTS, &var).unwrap();
    let v = vars_of(&env);
    assert_eq!(v["SM_LOG_LEVEL"], "10");
    assert_eq!(v["SM_MODULE_NAME"], "entry");
    assert_eq!(v["SM_USER_ENTRY_POINT"], "entry.py");
    assert_eq!(v["SM_MODULE_DIR"], "s3://b/k/sourcedir.tar.gz");
    assert_eq!(v["SM_FRAMEWORK_MODULE"], "pkg.mod:main");
    assert_eq!(v["SM_TOPOLOGY"], r#"{"a":1}"#);
    // The fixed special keys are not framework parameters.
    assert_eq!(v["SM_FRAMEWORK_PARAMS"], "{}");
    let doc: Value = serde_json::from_str(&v["SM_TRAINING_ENV"]).unwrap();
    assert_eq!(doc["is_modelparallel_enabled"], false);
    assert_eq!(env.toolkit_vars[0].1, "j");
    assert_eq!(env.toolkit_vars[2].1, "eu-west-1");
}

#[test]
fn heterogeneous_cluster() {
    let config = JobConfig {
        hyperparameters: object(json!({
            "sagemaker_distribution_instance_groups": "[\"gpu\"]"
        })),
        resource_config: object(json!({
            "current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"],
            "current_group_name": "cpu", "current_instance_type": "ml.c5.xlarge",
            "instance_groups": [
                {"instance_group_name": "cpu", "instance_type": "ml.c5.xlarge", "hosts": ["algo-3"]},
                {"instance_group_name": "gpu", "instance_type": "ml.p3.2xlarge", "hosts": ["algo-2", "algo-1"]}
            ]
        })),
        ..JobConfig::default()
    };
    let env = TrainingEnvironment::build(&Paths::new("/opt/ml"), &config, &FACTS, &no_vars).unwrap();
    let v = vars_of(&env);
    assert_eq!(v["SM_IS_HETERO"], "true");
    assert_eq!(v["SM_INSTANCE_GROUPS"], r#"["cpu","gpu"]"#);
    assert_eq!(v["SM_CURRENT_INSTANCE_GROUP"], "cpu");
    assert_eq!(v["SM_CURRENT_INSTANCE_GROUP_HOSTS"], r#"["algo-3"]"#);
    assert_eq!(v["SM_CURRENT_INSTANCE_TYPE"], "ml.c5.xlarge");
    let doc: Value = serde_json::from_str(&v["SM_TRAINING_ENV"]).unwrap();
    // The master is the first host of the first distribution group, in the group's own order.
    assert_eq!(doc["distribution_hosts"], json!(["algo-2", "algo-1"]));
    assert_eq!(doc["master_hostname"], "algo-2");
    assert_eq!(doc["is_master"], false);
}

#[test]
fn bad_resource_config_is_refused() {
    for (rc, needle) in [
        (json!({"current_host": "algo-1"}), "no 'hosts'"),
        (json!({"current_host": "algo-1", "hosts": []}), "non-empty list"),
        (json!({"hosts": ["algo-1"]}), "no 'current_host'"),
        (
            json!({"current_host": "a", "hosts": ["a"], "instance_groups": [{"hosts": []}]}),
            "instance_groups[0] has no 'instance_group_name'",
        ),
    ] {
        let config = JobConfig {
            resource_config: object(rc),
            ..JobConfig::default()
        };
        let err = TrainingEnvironment::build(&Paths::new("/opt/ml"), &config, &FACTS, &no_vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn non_ascii_and_floats_render_like_python() {
    let config = JobConfig {
        hyperparameters: object(
            json!({"s": "\"é\"", "l": "[\"é\", 1e-05, 1000.0]", "f": "0.30000000000000004"}),
        ),
        resource_config: object(json!({"current_host": "algo-1", "hosts": ["algo-1"]})),
        ..JobConfig::default()
    };
    let env = TrainingEnvironment::build(&Paths::new("/opt/ml"), &config, &FACTS, &no_vars).unwrap();
    let v = vars_of(&env);
    // Strings raw; containers as ASCII JSON with Python's float repr.
    assert_eq!(v["SM_HP_S"], "é");
    assert_eq!(v["SM_HP_L"], r#"["\u00e9",1e-05,1000.0]"#);
    assert_eq!(v["SM_HP_F"], "0.30000000000000004");
}
