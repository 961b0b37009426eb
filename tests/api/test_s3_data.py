"""Data on S3 named by a manifest (`S3DataType: ManifestFile`) and sharded by key
(`S3DataDistributionType: ShardedByS3Key`), against moto's S3-compatible server: a training
channel reads the objects the manifest lists, laid out at their paths in it; a transform job
writes one output per listed object, at the same path below its output prefix; a job with one
instance reads every shard, as one instance of the service does."""

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, WAIT, ApiServer, failed_job, render

DATA = ROOT / "examples/abalone/data/abalone.csv"


def test_manifests_and_sharded_channels_on_s3(s3_server, tmp_path):
    s3 = s3_server.client("s3")
    s3.create_bucket(Bucket="shards")
    rows = DATA.read_text().splitlines()
    parts = {"data/part-0.csv": rows[:2000], "data/part-1/rows.csv": rows[2000:]}
    for key, part in parts.items():
        s3.put_object(Bucket="shards", Key=key, Body=("\n".join(part) + "\n").encode())
    # Listed, and not: the manifest names what is read.
    s3.put_object(Bucket="shards", Key="data/unlisted.csv", Body=b"not,a,row\n")
    manifest = '[{"prefix": "s3://shards/data/"}, "part-0.csv", "part-1/rows.csv"]'
    s3.put_object(Bucket="shards", Key="lists/abalone.manifest", Body=manifest.encode())
    s3.put_object(Bucket="shards", Key="lists/escape.manifest", Body=b'[{"prefix": "s3://shards/data/"}, "../x.csv"]')

    server = ApiServer(tmp_path / "state", env=s3_server.env())
    try:
        sm = server.client("sagemaker")
        locations = {f"file://{tmp_path}/": "s3://shards/", f"file://{DATA}": "s3://shards/lists/abalone.manifest"}
        job = render("featurizer-training-job.json", tmp_path, locations)
        source = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
        source["S3DataType"] = "ManifestFile"
        source["S3DataDistributionType"] = "ShardedByS3Key"
        sm.create_training_job(**job)
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=job["TrainingJobName"], WaiterConfig=WAIT)
        trained = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
        assert trained["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"

        # A prefix both parts begin with, sharded by key, one instance: it reads every shard.
        sharded = render(
            "featurizer-training-job.json",
            tmp_path,
            {f"file://{tmp_path}/": "s3://shards/", f"file://{DATA}": "s3://shards/data/part-"},
            TrainingJobName="sharded",
        )
        sharded["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
        sm.create_training_job(**sharded)
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="sharded", WaiterConfig=WAIT)
        assert sm.describe_training_job(TrainingJobName="sharded")["TrainingJobStatus"] == "Completed"

        model = render("featurizer-model.json", tmp_path, locations)
        model["PrimaryContainer"]["ModelDataUrl"] = trained["ModelArtifacts"]["S3ModelArtifacts"]
        sm.create_model(**model)
        transform = render("featurizer-transform-job.json", tmp_path, locations)
        transform["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
        sm.create_transform_job(**transform)
        name = transform["TransformJobName"]
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name, WaiterConfig=WAIT)
        done = sm.describe_transform_job(TransformJobName=name)
        assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
        outputs = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="shards", Prefix="featurized/")["Contents"])
        assert outputs == ["featurized/part-0.csv.out", "featurized/part-1/rows.csv.out"]
        for key, part in parts.items():
            out = s3.get_object(Bucket="shards", Key=f"featurized/{key[len('data/'):]}.out")["Body"].read().decode()
            assert len(out.splitlines()) == len(part), key

        escape = render("featurizer-transform-job.json", tmp_path, locations, TransformJobName="escape")
        source = escape["TransformInput"]["DataSource"]["S3DataSource"]
        source["S3DataType"] = "ManifestFile"
        source["S3Uri"] = "s3://shards/lists/escape.manifest"
        sm.create_transform_job(**escape)
        reason = failed_job(sm, "transform", "escape")
        assert "cannot be a local file name" in reason, reason

        with pytest.raises(ClientError) as augmented:
            source["S3DataType"] = "AugmentedManifestFile"
            sm.create_transform_job(**{**escape, "TransformJobName": "augmented"})
        assert "use S3Prefix or ManifestFile" in str(augmented.value)
        assert not any((tmp_path / "state/staging").rglob("*.csv")), list((tmp_path / "state/staging").rglob("*"))
    finally:
        assert server.stop() == 0, server.log()
