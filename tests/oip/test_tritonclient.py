"""The Open Inference Protocol of `modelstage serve`, driven by Triton's own HTTP client.

The servers are started by the e2e test `oip::tritonclient_drives_the_protocol`, which passes
their addresses: OIP_DOUBLER_URL (the doubler, which declares nothing) and OIP_TYPED_URL (the
typed doubler, which declares inputs a INT32 [-1, 1], b FP32 [-1, 2] and output doubled FP32).
"""

import os

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def client(var):
    return httpclient.InferenceServerClient(url=os.environ[var])


def test_health_and_metadata():
    c = client("OIP_TYPED_URL")
    assert c.is_server_live()
    assert c.is_server_ready()
    assert c.is_model_ready("typed-doubler")
    assert not c.is_model_ready("nope")
    server = c.get_server_metadata()
    assert server["name"] == "modelstage"
    assert "binary_tensor_data" in server["extensions"]
    model = c.get_model_metadata("typed-doubler")
    assert model["versions"] == ["0.1.0"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["inputs"]] == [
        ("a", "INT32", [-1, 1]),
        ("b", "FP32", [-1, 2]),
    ]
    assert model["outputs"][0]["name"] == "doubled"


@pytest.mark.parametrize("binary", [True, False])
def test_infer_binary_and_json(binary):
    c = client("OIP_TYPED_URL")
    a = np.array([[7], [8]], dtype=np.int32)
    b = np.array([[0.5, 1.5], [2.0, 3.0]], dtype=np.float32)
    inputs = [httpclient.InferInput("b", b.shape, "FP32"), httpclient.InferInput("a", a.shape, "INT32")]
    inputs[0].set_data_from_numpy(b, binary_data=binary)
    inputs[1].set_data_from_numpy(a, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("doubled", binary_data=binary)]
    result = c.infer("typed-doubler", inputs, outputs=outputs, request_id="r1")
    doubled = result.as_numpy("doubled")
    assert doubled.dtype == np.float32
    np.testing.assert_array_equal(doubled, np.array([[14, 1, 3], [16, 4, 6]], dtype=np.float32))
    assert result.get_response()["id"] == "r1"


@pytest.mark.parametrize(
    "dtype,triton",
    [
        (np.bool_, "BOOL"),
        (np.uint8, "UINT8"),
        (np.uint16, "UINT16"),
        (np.uint32, "UINT32"),
        (np.uint64, "UINT64"),
        (np.int8, "INT8"),
        (np.int16, "INT16"),
        (np.int32, "INT32"),
        (np.int64, "INT64"),
        (np.float16, "FP16"),
        (np.float32, "FP32"),
        (np.float64, "FP64"),
    ],
)
def test_every_numeric_datatype_in_binary(dtype, triton):
    c = client("OIP_DOUBLER_URL")
    x = np.array([[1, 0], [1, 1]], dtype=dtype)
    i = httpclient.InferInput("x", x.shape, triton)
    i.set_data_from_numpy(x, binary_data=True)
    result = c.infer("doubler", [i])
    np.testing.assert_array_equal(result.as_numpy("output-0"), x.astype(np.float64) * 2)


def test_bytes_reach_the_stage_as_text():
    c = client("OIP_DOUBLER_URL")
    x = np.array([[b"1.5", b"2"]], dtype=np.object_)
    i = httpclient.InferInput("x", x.shape, "BYTES")
    i.set_data_from_numpy(x, binary_data=True)
    result = c.infer("doubler", [i])
    np.testing.assert_array_equal(result.as_numpy("output-0"), np.array([3.0, 4.0]))


def test_errors_reach_the_client():
    c = client("OIP_TYPED_URL")
    b = np.array([[1.0, 2.0]], dtype=np.float64)
    i = httpclient.InferInput("b", b.shape, "FP64")
    i.set_data_from_numpy(b)
    with pytest.raises(InferenceServerException) as e:
        c.infer("typed-doubler", [i])
    assert "input \"a\" is missing" in str(e.value)
    with pytest.raises(InferenceServerException) as e:
        c.infer("nope", [i])
    assert "unknown model \"nope\"" in str(e.value)
