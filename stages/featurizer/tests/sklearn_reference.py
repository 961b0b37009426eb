#!/usr/bin/env python3
"""Generates the featurizer's expected outputs with pandas and scikit-learn.

Run from the repository root after changing a case below:

    python3 stages/featurizer/tests/sklearn_reference.py

It fits the pipeline of SageMaker's abalone example (numeric columns:
SimpleImputer + StandardScaler; categorical: SimpleImputer(constant,
"missing") + OneHotEncoder(handle_unknown)) on each case's training CSV, read
as the example's training script reads it (header=None, numeric columns as
float64, categorical as str), then transforms each request as the example's
inference script does (pd.read_csv(header=None) without dtypes, the label
inserted first when the request has one more column, np.savetxt(fmt="%s")
for text/csv). The results go to tests/fixtures/*.json; the Rust tests read
them and need no Python.
"""

import io
import json
import os
import sys

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.path.join(HERE, "fixtures")
ABALONE = os.path.join(REPO, "examples", "abalone", "data", "abalone.csv")

ABALONE_COLUMNS = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight"


def build(hp):
    """The ColumnTransformer for a dict of hyperparameters (the stage's names)."""
    columns = hp["columns"].split(",")
    categorical = [c for c in hp.get("categorical", "").split(",") if c]
    numeric = [c for c in columns if c not in categorical]
    strategy = hp.get("numeric_imputer", "median")
    imputer_args = {"strategy": strategy}
    if strategy == "constant":
        imputer_args["fill_value"] = float(hp.get("numeric_fill_value", "0"))
    numeric_steps = [SimpleImputer(**imputer_args)]
    if hp.get("scale", "true").lower() in ("true", "1"):
        numeric_steps.append(StandardScaler())
    categorical_steps = [
        SimpleImputer(strategy="constant", fill_value=hp.get("categorical_fill_value", "missing")),
        OneHotEncoder(handle_unknown=hp.get("handle_unknown", "ignore")),
    ]
    return ColumnTransformer(
        transformers=[
            ("num", make_pipeline(*numeric_steps), numeric),
            ("cat", make_pipeline(*categorical_steps), categorical),
        ],
        remainder="drop",
    )


def read_training(text, hp):
    columns = hp["columns"].split(",")
    categorical = [c for c in hp.get("categorical", "").split(",") if c]
    names = columns + ([hp["label"]] if "label" in hp else [])
    dtype = {c: (str if c in categorical else np.float64) for c in columns}
    df = pd.read_csv(io.StringIO(text), header=None, names=names, dtype=dtype)
    if "label" in hp:
        df.pop(hp["label"])
    return df


def transform_request(preprocessor, body, hp):
    """input_fn + predict_fn + output_fn(text/csv) of the example's script."""
    columns = hp["columns"].split(",")
    label = hp.get("label", "label")
    df = pd.read_csv(io.StringIO(body), header=None)
    if len(df.columns) == len(columns) + 1:
        df.columns = columns + [label]
    elif len(df.columns) == len(columns):
        df.columns = columns
    else:
        raise ValueError("wrong column count")
    features = preprocessor.transform(df)
    if label in df:
        features = np.insert(features, 0, df[label], axis=1)
    out = io.StringIO()
    np.savetxt(out, features, delimiter=",", fmt="%s")
    return out.getvalue()


def transform_request_json(preprocessor, body, hp):
    """The same with output_fn(application/json): the Linear Learner request."""
    columns = hp["columns"].split(",")
    df = pd.read_csv(io.StringIO(body), header=None)
    df.columns = columns[: len(df.columns)] if len(df.columns) <= len(columns) else columns + [hp["label"]]
    features = preprocessor.transform(df)
    if hp.get("label") in df:
        features = np.insert(features, 0, df[hp["label"]], axis=1)
    return json.dumps({"instances": [{"features": row.tolist()} for row in features]})


BLOG_REQUEST = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"


def statistics(preprocessor):
    num = preprocessor.named_transformers_["num"]
    stats = {"fill": [float(v) for v in num.steps[0][1].statistics_]}
    if len(num.steps) > 1:
        scaler = num.steps[1][1]
        stats["mean"] = [float(v) for v in scaler.mean_]
        stats["variance"] = [float(v) for v in scaler.var_]
        stats["scale"] = [float(v) for v in scaler.scale_]
    encoder = preprocessor.named_transformers_["cat"].steps[1][1]
    stats["categories"] = [[str(c) for c in cats] for cats in encoder.categories_]
    return stats


ABALONE_HP = {"columns": ABALONE_COLUMNS, "categorical": "sex", "label": "rings"}

# Training data with every kind of missing value, an even count of values per
# column (so medians average two values), a constant column and a category
# that sorts by code point ("F" < "I" < "M" < "a").
TRICKY_TRAIN = (
    "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n"
    "F,0.53,,0.135,0.677,0.2565,0.1415,0.21,9\n"
    ",0.44,0.365,NA,0.516,0.2155,0.114,0.155,10\n"
    "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7\n"
    "a,0.425,0.3,0.095,0.3515,0.141,0.0775,0.12,8\n"
    "M,0.53,0.415,0.15,0.7775,0.237,0.1415,0.33,20\n"
    "NA,0.545,0.425,0.125,0.768,0.294,0.1495,0.26,16\n"
    "F,nan,0.37,0.125,0.5095,0.2165,0.1125,0.165,9\n"
    "M,0.475,0.37,0.125,0.5095,0.2165,0.1125,0.165,9\n"
    "I,0.55,0.44,0.15,0.8945,0.3145,0.151,0.32,19\n"
)

# Requests: spaces, NA texts, unknown and missing categories, labelled and
# unlabelled rows, CRLF, quotes, exponents, and values outside the training range.
TRICKY_REQUESTS = {
    "blog": "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155\n",
    "labelled": "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9\n",
    "missing_numbers": "M,,0.365,NA,0.516,N/A,NULL,#N/A\nI,0.33,NaN,0.08,null,<NA>,n/a,None\n",
    "missing_category": ",0.44,0.365,0.125,0.516,0.2155,0.114,0.155\nnan,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n",
    "unknown_category": "X,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n",
    "crlf": "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\r\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21\r\n",
    "quoted": '"M","0.44",0.365,"0.125",0.516,0.2155,0.114,0.155\n"F",0.53,0.42,0.135,0.677,0.2565,0.1415,""\n',
    "exponents": "M,4.4e-1,3.65E-01,1.25e-1,5.16e-1,2.155e-1,1.14e-1,1.55e-1\nI,1e-05,1e+3,0.125,-0.516,.2155,5.,+0.155\n",
    "empty_label": "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,7\n",
    "blank_lines": "\nM,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n\n   \nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21\n\n",
    "no_trailing_newline": "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055",
    "labelled_crlf_spaces": "M , 0.44 ,0.365,0.125,0.516,0.2155,0.114,0.155, 10 \r\n",
}

TRICKY_CASES = [
    ("default", {}),
    ("mean", {"numeric_imputer": "mean"}),
    ("most_frequent", {"numeric_imputer": "most_frequent"}),
    ("constant", {"numeric_imputer": "constant", "numeric_fill_value": "-1.5"}),
    ("no_scale", {"scale": "false"}),
    ("fill_value", {"categorical_fill_value": "unknown"}),
]

# A training set with a constant column and a column of one repeated value
# with rounding noise: StandardScaler gives both scale 1.0.
CONSTANT_TRAIN = "a,0.1,5\nb,0.1,5\na,0.1,5\n,0.1,\n"
CONSTANT_HP = {"columns": "c,x,y", "categorical": "c"}
CONSTANT_REQUESTS = {"constant": "a,0.1,5\nb,0.3,7\n,,\n"}


def run_case(name, hp, train, requests):
    preprocessor = build(hp).fit(read_training(train, hp))
    expected = {k: transform_request(preprocessor, body, hp) for k, body in requests.items()}
    return {
        "name": name,
        "hyperparameters": hp,
        "train": train,
        "statistics": statistics(preprocessor),
        "requests": [{"name": k, "body": requests[k], "csv": expected[k]} for k in requests],
    }


def fnv1a64(data):
    """FNV-1a, 64 bits: a checksum the Rust test recomputes without a crate."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def write(name, value):
    path = os.path.join(FIXTURES, name)
    with open(path, "w") as f:
        json.dump(value, f, indent=1, allow_nan=True)
        f.write("\n")
    print("wrote", os.path.relpath(path, REPO))


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    data = sys.argv[1] if len(sys.argv) > 1 else ABALONE
    versions = {"sklearn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__}

    # Abalone: fit on the whole file, then transform the whole file as one
    # labelled request. The first 500 output rows are kept verbatim, the
    # whole output as a checksum.
    with open(data) as f:
        text = f.read()
    preprocessor = build(ABALONE_HP).fit(read_training(text, ABALONE_HP))
    output = transform_request(preprocessor, text, ABALONE_HP)
    write(
        "abalone.json",
        {
            "versions": versions,
            "hyperparameters": ABALONE_HP,
            "statistics": statistics(preprocessor),
            "rows": len(output.splitlines()),
            "first_rows_csv": "".join(line + "\n" for line in output.splitlines()[:500]),
            "csv_fnv1a64": fnv1a64(output.encode()),
            # The request of the SageMaker blog post, for the end-to-end test.
            "blog_request": BLOG_REQUEST,
            "blog_csv": transform_request(preprocessor, BLOG_REQUEST, ABALONE_HP),
            "blog_json": transform_request_json(preprocessor, BLOG_REQUEST, ABALONE_HP),
        },
    )

    cases = [
        run_case(name, dict(ABALONE_HP, **extra), TRICKY_TRAIN, TRICKY_REQUESTS) for name, extra in TRICKY_CASES
    ]
    cases.append(run_case("constant_columns", CONSTANT_HP, CONSTANT_TRAIN, CONSTANT_REQUESTS))
    write("tricky.json", {"versions": versions, "cases": cases})


if __name__ == "__main__":
    main()
