//! `modelstage api` driven by boto3 and the AWS CLI, as a user's own code drives SageMaker: the
//! pytest suite in `tests/api` (the seed's whole workflow with file:// and with s3:// URIs, the
//! SageMaker Python SDK in its normal mode, multi-model endpoints, manifests and sharded data on
//! S3, the refusals, a restart, the CLI), run against the
//! binary and the stage libraries of this build, with moto's S3-compatible server started by the
//! tests. Python with boto3, pytest, the AWS CLI, the SageMaker SDK and moto's server is a
//! requirement of the test suite (`ci/setup.sh` installs the pinned versions of
//! `tests/api/requirements.txt`): when it is missing this test fails and says so, it never passes
//! without running.

use std::process::Command;

use crate::support::{bin, python, repo_root, stage_lib};

#[test]
fn boto3_drives_the_seed_workflow_through_modelstage_api() {
    stage_lib("featurizer");
    stage_lib("linear_learner");
    stage_lib("failing_model");
    stage_lib("echo");
    stage_lib("abort_on_request");
    stage_lib("doubler");
    stage_lib("sleep_from_body");
    stage_lib("slow");
    let check = Command::new(python())
        .args(["-c", "import boto3, pytest, awscli, sagemaker, moto.server"])
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the tests of modelstage api need boto3, pytest, the AWS CLI, the SageMaker SDK and moto: run ci/setup.sh (pip install -r \
             tests/api/requirements.txt)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "the tests of modelstage api need {} with boto3, pytest, the AWS CLI, the SageMaker SDK and moto: {e}",
            python()
        ),
    }
    let out = Command::new(python())
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "tests/api"])
        .current_dir(repo_root())
        .env("MODELSTAGE_BIN", bin())
        .env("MODELSTAGE_STAGE_DIR", bin().parent().unwrap())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // boto3 must reach the local server only, whatever this machine's AWS settings say.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_SAGEMAKER")
        .env_remove("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_STS")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the boto3 tests failed:\n{stdout}\n{stderr}"
    );
    for test in [
        "test_workflow.py::test_the_seed_workflow",
        "test_workflow.py::test_the_seed_workflow_on_s3",
        "test_sdk.py::test_the_sagemaker_sdk_fits_transforms_deploys_and_predicts",
        "test_multi_model.py::test_a_multi_model_endpoint_answers_with_the_model_each_request_names",
        "test_multi_model.py::test_a_multi_model_endpoint_on_s3_fetches_each_model_on_its_first_request",
        "test_s3_data.py::test_manifests_and_sharded_channels_on_s3",
    ] {
        assert!(
            stdout
                .lines()
                .any(|line| line.trim() == format!("PASSED tests/api/{test}")),
            "{test} did not run:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("SKIPPED"),
        "a boto3 test skipped itself:\n{stdout}"
    );
}
