#!/usr/bin/env bash
# Trains the two models of the abalone pipeline with nothing but the stage images and `docker`,
# exactly as SageMaker runs them, and leaves them unpacked where abalone.yml mounts them:
#
#   docker/compose/prepare-models.sh [abalone.csv]
#
# 1. featurizer: `docker run IMAGE train` on an /opt/ml tree whose `train` channel holds the CSV;
# 2. the training data through a featurizer `serve` container (text/csv in, text/csv out: label
#    first, then the 10 features), which is what the example's batch transform does;
# 3. linear-learner: `docker run IMAGE train` on that output.
# The models land in docker/compose/models/{featurizer,linear-learner}. Needs the images
# (ci/docker-build.sh), curl, and a Docker engine that can bind-mount this folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
data=${1:-$repo/examples/abalone/data/abalone.csv}
[ -f "$data" ] || { echo "$0: no data file $data (pass the headerless abalone CSV)" >&2; exit 1; }
data=$(cd "$(dirname "$data")" && pwd)/$(basename "$data")
for image in modelstage/featurizer:latest modelstage/linear-learner:latest; do
    docker image inspect "$image" >/dev/null 2>&1 ||
        { echo "$0: image $image is missing: run ci/docker-build.sh" >&2; exit 1; }
done

work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then docker rm -f "$server" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# An /opt/ml tree with one `train` channel of text/csv and the given hyperparameters.
tree() {
    local base=$1 hyperparameters=$2 file=$3
    mkdir -p "$base/input/config" "$base/input/data/train" "$base/model" "$base/output"
    printf '%s' "$hyperparameters" >"$base/input/config/hyperparameters.json"
    printf '{"train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}' \
        >"$base/input/config/inputdataconfig.json"
    printf '{"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}' \
        >"$base/input/config/resourceconfig.json"
    cp "$file" "$base/input/data/train/"
}

train() {
    local image=$1 base=$2
    echo "== docker run $image train"
    # As this user rather than root (SageMaker's choice), so the files it writes stay ours.
    docker run --rm --user "$(id -u):$(id -g)" -v "$base:/opt/ml" "$image" train
    [ -f "$base/output/success" ] || { echo "$0: $image training did not succeed" >&2; exit 1; }
}

tree "$work/featurizer" '{"columns": "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight", "categorical": "sex", "label": "rings"}' "$data"
train modelstage/featurizer:latest "$work/featurizer"

echo "== featurizing the training data through a featurizer serve container"
server=$(docker run -d -p 127.0.0.1::8080 -v "$work/featurizer/model:/opt/ml/model:ro" modelstage/featurizer:latest serve)
port=$(docker port "$server" 8080/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && break
    sleep 0.05
done
mkdir -p "$work/features"
curl -fsS -X POST -H 'Content-Type: text/csv' -H 'Accept: text/csv' --data-binary "@$data" \
    "http://127.0.0.1:$port/invocations" >"$work/features/train.csv"
docker rm -f "$server" >/dev/null
server=""
echo "   $(wc -l <"$work/features/train.csv") rows, $(head -n1 "$work/features/train.csv" | tr ',' '\n' | wc -l) columns (label first)"

tree "$work/linear-learner" '{"feature_dim": "10", "predictor_type": "regressor", "mini_batch_size": "32"}' \
    "$work/features/train.csv"
train modelstage/linear-learner:latest "$work/linear-learner"

for stage in featurizer linear-learner; do
    rm -rf "${here:?}/models/$stage"
    mkdir -p "$here/models/$stage"
    cp -R "$work/$stage/model/." "$here/models/$stage/"
done
echo "models ready in $here/models; now: docker-compose -f $here/abalone.yml up"
