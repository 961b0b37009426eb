#!/usr/bin/env python3
"""Baseline for the featurizer benchmark: the scikit-learn container's code path.

Fits the abalone preprocessing of SageMaker's pipeline example (the same
transform the featurizer stage fits) and times what the Python container does
per request: input_fn (pandas.read_csv of the body), predict_fn
(ColumnTransformer.transform) and output_fn (numpy.savetxt for text/csv,
json.dumps of the Linear Learner request for application/json), on 10,000-row
requests and on single-record requests, on one core. The HTTP server is left
out, as in the Rust measurement (stages/featurizer/examples/throughput.rs).

    python3 bench/featurizer_sklearn.py [--data examples/abalone/data/abalone.csv]
        [--rows 10000] [--seconds 5]

Needs numpy, pandas and scikit-learn.
"""

import argparse
import io
import json
import os
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FEATURES = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
            "shell_weight"]
LABEL = "rings"


def fit(path):
    """The example's training script (sklearn_abalone_featurizer.py)."""
    dtype = {name: np.float64 for name in FEATURES[1:]}
    dtype["sex"] = str
    dtype[LABEL] = np.float64
    df = pd.read_csv(path, header=None, names=FEATURES + [LABEL], dtype=dtype)
    df.pop(LABEL)
    preprocessor = ColumnTransformer(
        transformers=[
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), FEATURES[1:]),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore")), ["sex"]),
        ],
        remainder="drop",
    )
    return preprocessor.fit(df)


def input_fn(body):
    df = pd.read_csv(io.StringIO(body), header=None)
    if len(df.columns) == len(FEATURES) + 1:
        df.columns = FEATURES + [LABEL]
    else:
        df.columns = FEATURES
    return df


def predict_fn(df, model):
    features = model.transform(df)
    if LABEL in df:
        return np.insert(features, 0, df[LABEL], axis=1)
    return features


def output_csv(prediction):
    out = io.StringIO()
    np.savetxt(out, prediction, delimiter=",", fmt="%s")
    return out.getvalue()


def output_json(prediction):
    return json.dumps({"instances": [{"features": row.tolist()} for row in prediction]})


def measure(model, body, output, seconds):
    """Requests per second over at least `seconds` (after one warm-up)."""
    output(predict_fn(input_fn(body), model))
    count, started = 0, time.perf_counter()
    while True:
        output(predict_fn(input_fn(body), model))
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "examples/abalone/data/abalone.csv"))
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    model = fit(args.data)
    with open(args.data) as f:
        records = [line.rsplit(",", 1)[0] for line in f.read().splitlines() if line]
    body = "".join(records[i % len(records)] + "\n" for i in range(args.rows))
    single = records[0] + "\n"

    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}, numpy {np.__version__}")
    for name, output in [("text/csv", output_csv), ("application/json", output_json)]:
        big = measure(model, body, output, args.seconds)
        one = measure(model, single, output, args.seconds)
        print(f"{name:<18} {args.rows}-row requests: {big * args.rows:>10,.0f} rows/s "
              f"({1e3 / big:.2f} ms/request); single-record: {1e6 / one:,.0f} us/request")


if __name__ == "__main__":
    main()
