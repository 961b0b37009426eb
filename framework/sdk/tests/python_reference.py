#!/usr/bin/env python3
"""Reference outputs of CPython for the tests of `modelstage_sdk::python` and `codecs`.

    python3 python_reference.py floats > data/float_repr.txt
        The float table: one line per value, "<16 hex digits of the f64 bits> <repr(x)>".
        Hand-picked edge cases plus a fixed-seed random sample, so the file is reproducible.

    python3 python_reference.py random N SEED
        Same format, N random bit patterns and decimal-looking values from SEED; the ignored test
        `float_repr_matches_python_at_scale` pipes this in to compare at scale without storing it.

    python3 python_reference.py codecs
        Prints the exact bytes numpy / csv / json produce for the codec tests' arrays (the
        expected literals in src/codecs were copied from this output).
"""
import random
import struct
import sys


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def line(x):
    return "%016x %r" % (bits(x), x)


def hand_picked():
    values = [
        0.0, -0.0, 10.0, 0.44, 1e-05, 1e16, 1.5e-07, 123456789012345.0, 1234567890123456.8,
        9999999999999998.0, 1e15, 0.0001, 0.00012345, 0.1 + 0.2, 1 / 3, 2 / 3, 2.0 ** 53,
        2.0 ** 53 + 2, 2.0 ** 63, 2.0 ** 64, 5e-324, 1e-323, 2.2250738585072014e-308,
        2.225073858507201e-308, 1.7976931348623157e308, 1e22, 1e23, 8.41e21, 5e-310, 0.5,
        0.25, 100.0, 1000000.0, 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15, 15.0, 7.0,
        -1.5, -123.456, 3.141592653589793, 2.718281828459045, 1.1, 2.675, 0.1, 0.7, 4.35,
        9.5367431640625e-07, 1e-07, 1.7e-05, 123e-20, 1e100, 1e-100, 1e300, 1e-300, 1e308,
        float.fromhex("0x1.fffffffffffffp-1"), float.fromhex("0x1.0000000000001p+0"),
    ]
    values += [10.0 ** e for e in range(-30, 31)]
    values += [2.0 ** e for e in range(-1074, 1024)]
    values += [-v for v in list(values)]
    values += [float.fromhex("0x1.%013xp%d" % (m, e))
               for m in (0, 1, 0xfffffffffffff) for e in (-1022, -1000, -20, -5, 0, 5, 50, 52, 53, 1023)]
    return values


def random_values(n, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        kind = len(out) % 4
        if kind == 0:  # any bit pattern
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        elif kind == 1:  # decimal text as found in CSV files
            x = float("%.*f" % (rng.randint(0, 6), rng.uniform(-1e6, 1e6)))
        elif kind == 2:  # float32 values widened to double
            x = struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0]
        else:  # the scale where the layout switches, 1e-6 .. 1e18
            x = rng.uniform(1, 10) * 10.0 ** rng.randint(-6, 18)
        if x == x and x not in (float("inf"), float("-inf")):
            out.append(x)
    return out


def codecs():
    import csv
    import io
    import json

    import numpy as np

    def show(label, data):
        print("%s: %r" % (label, data))

    two_d = np.array([[1.5, 2.0], [3.0, 4.25]])
    one_d = np.array([1.0, 2.5, 3.0])
    special = np.array([float("nan"), float("inf"), -float("inf"), 1e-05, 1e16, -0.0])
    for name, arr in (("two_d", two_d), ("one_d", one_d), ("special", special)):
        # Legacy csv encoder: a 1-D array becomes a column, csv.writer with "\n".
        buf = io.StringIO()
        rows = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        csv.writer(buf, lineterminator="\n").writerows(rows.tolist())
        show(name + " csv", buf.getvalue())
        show(name + " json", json.dumps(arr.tolist()))
        npy = io.BytesIO()
        np.save(npy, arr)
        show(name + " npy", npy.getvalue())
    for dtype in ("<f4", "<i8", "<i4", "|u1"):
        npy = io.BytesIO()
        np.save(npy, np.array([[1, 2, 3], [4, 5, 250]], dtype=dtype))
        show("2x3 " + dtype + " npy", npy.getvalue())
    show("float32 json", json.dumps(np.array([0.1, 0.2], dtype=np.float32).tolist()))
    show("0-d json", json.dumps(np.array(7.5).tolist()))
    for text in ("1,2,3", "1,2,3\n4,5,6\n", '"1",2\n3,"4"\n', "1.5"):
        rows = list(csv.reader(io.StringIO(text)))
        show("decode csv %r" % text, np.array(rows).squeeze().astype(np.float64).tolist())


def main():
    if sys.argv[1:2] == ["floats"]:
        for x in hand_picked() + random_values(2000, 20240607):
            print(line(x))
    elif sys.argv[1:2] == ["random"]:
        for x in random_values(int(sys.argv[2]), int(sys.argv[3])):
            print(line(x))
    elif sys.argv[1:2] == ["codecs"]:
        codecs()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
