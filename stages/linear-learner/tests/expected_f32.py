"""How the expected scores in tests/serving.rs were derived: the service
answers the float32 nearest to a score, printed as Python prints that value as
a double (json.dumps uses repr)."""
import json
import struct


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


print(json.dumps({"predictions": [{"score": f32(0.1 + 1.0 + 4.0 + 1.0)}]}))
print(json.dumps({"score": [f32(1 / 3)] * 3, "predicted_label": 0.0}))
