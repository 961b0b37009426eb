"""The AWS CLI against `modelstage api`, configured only by the environment variables of
docs/sagemaker-api.md: list-endpoints, describe-endpoint, invoke-endpoint with an output file."""

import json
import os
import subprocess
import sys

from conftest import REGION, WAIT, stage_lib


def aws(server, *args):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_")
    }
    env.update(
        AWS_ENDPOINT_URL_SAGEMAKER=server.url,
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="not-a-secret",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    # The CLI of the pinned awscli package, whatever `aws` is first on PATH.
    done = subprocess.run([sys.executable, "-m", "awscli", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"aws {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_aws_cli_lists_describes_and_invokes(server, tmp_path):
    sm = server.client("sagemaker")
    sm.create_model(ModelName="cli-echo", PrimaryContainer={"Image": stage_lib("echo")})
    sm.create_endpoint_config(EndpointConfigName="cli-echo", ProductionVariants=[{"VariantName": "v1", "ModelName": "cli-echo"}])
    sm.create_endpoint(EndpointName="cli-echo", EndpointConfigName="cli-echo")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cli-echo", WaiterConfig=WAIT)
    try:
        listed = json.loads(aws(server, "sagemaker", "list-endpoints"))
        assert "cli-echo" in [e["EndpointName"] for e in listed["Endpoints"]]
        described = json.loads(aws(server, "sagemaker", "describe-endpoint", "--endpoint-name", "cli-echo"))
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointArn"] == f"arn:aws:sagemaker:{REGION}:000000000000:endpoint/cli-echo"
        out = tmp_path / "answer.json"
        printed = json.loads(
            aws(
                server,
                "sagemaker-runtime",
                "invoke-endpoint",
                "--endpoint-name",
                "cli-echo",
                "--content-type",
                "application/json",
                "--body",
                '{"x": [1, 2]}',
                str(out),
            )
        )
        assert printed["InvokedProductionVariant"] == "v1"
        assert json.loads(out.read_text()) == {"x": [1, 2]}
    finally:
        sm.delete_endpoint(EndpointName="cli-echo")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="cli-echo", WaiterConfig=WAIT)
