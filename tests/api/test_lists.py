"""List operations page (MaxResults, NextToken), filter and sort as the service's do, and an
endpoint with several production variants shares its requests by weight, or sends one to the
variant it names (TargetVariant); UpdateEndpointWeightsAndCapacities changes the shares."""

import collections
import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import WAIT, stage_lib


def test_lists_page_filter_and_sort(server):
    sm = server.client("sagemaker")
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        sm.create_model(ModelName=name, PrimaryContainer={"Image": stage_lib("echo")})

    first = sm.list_models(NameContains="paged-", MaxResults=2)
    assert [m["ModelName"] for m in first["Models"]] == ["paged-4", "paged-3"]
    assert first["NextToken"]
    second = sm.list_models(NameContains="paged-", MaxResults=2, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == ["paged-2", "paged-1"]

    pages = sm.get_paginator("list_models").paginate(
        NameContains="paged-", SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    )
    pages = list(pages)
    assert [len(p["Models"]) for p in pages] == [2, 2, 1]
    assert "NextToken" not in pages[-1]
    assert [m["ModelName"] for p in pages for m in p["Models"]] == names

    # Times travel in whole seconds: bounds an hour away from the creations.
    created = sm.describe_model(ModelName="paged-2")["CreationTime"]
    hour = datetime.timedelta(hours=1)
    assert len(sm.list_models(NameContains="paged-", CreationTimeAfter=created - hour)["Models"]) == 5
    assert sm.list_models(NameContains="paged-", CreationTimeBefore=created - hour)["Models"] == []

    with pytest.raises(ClientError) as bad:
        sm.list_models(NextToken="forged")
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "NextToken" in bad.value.response["Error"]["Message"]


def test_requests_are_shared_by_variant_weight_or_sent_to_the_target_variant(server):
    sm = server.client("sagemaker")
    runtime = server.client("sagemaker-runtime")
    for model in ["echo-a", "echo-b"]:
        sm.create_model(ModelName=model, PrimaryContainer={"Image": stage_lib("echo")})
    sm.create_endpoint_config(
        EndpointConfigName="two-variants",
        ProductionVariants=[
            {"VariantName": "a", "ModelName": "echo-a", "InitialVariantWeight": 1.0},
            {"VariantName": "b", "ModelName": "echo-b", "InitialVariantWeight": 3.0},
        ],
    )
    sm.create_endpoint(EndpointName="two-variants", EndpointConfigName="two-variants")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="two-variants", WaiterConfig=WAIT)
    described = sm.describe_endpoint(EndpointName="two-variants")["ProductionVariants"]
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described] == [("a", 1.0), ("b", 3.0)]

    def invoke(**target):
        answer = runtime.invoke_endpoint(EndpointName="two-variants", ContentType="text/csv", Body=b"1,2", **target)
        assert answer["Body"].read() == b"1,2"
        return answer["InvokedProductionVariant"]

    shares = collections.Counter(invoke() for _ in range(40))
    assert set(shares) == {"a", "b"} and abs(shares["a"] - 10) <= 2, shares
    assert {invoke(TargetVariant="a") for _ in range(5)} == {"a"}
    with pytest.raises(ClientError) as bad:
        invoke(TargetVariant="c")
    assert bad.value.response["Error"]["Code"] == "ValidationError"
    assert '"c"' in bad.value.response["Error"]["Message"]

    sm.update_endpoint_weights_and_capacities(
        EndpointName="two-variants", DesiredWeightsAndCapacities=[{"VariantName": "a", "DesiredWeight": 0.0}]
    )
    assert {invoke() for _ in range(10)} == {"b"}
    described = sm.describe_endpoint(EndpointName="two-variants")["ProductionVariants"]
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described] == [("a", 0.0), ("b", 3.0)]
    with pytest.raises(ClientError) as bad:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="two-variants", DesiredWeightsAndCapacities=[{"VariantName": "c", "DesiredWeight": 1.0}]
        )
    assert '"c"' in bad.value.response["Error"]["Message"]

    sm.delete_endpoint(EndpointName="two-variants")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="two-variants", WaiterConfig=WAIT)
