#!/usr/bin/env bash
# The abalone example of SageMaker's inference pipeline, end to end on this machine, with the same
# request documents a user would send to SageMaker:
#
#   1. fit the featurizer on abalone.csv            (CreateTrainingJob:  featurizer-training-job.json)
#   2. batch-transform the training data into       (CreateTransformJob: featurizer-transform-job.json,
#      label-first CSV                               CreateModel:        featurizer-model.json)
#   3. fit Linear Learner on it                     (CreateTrainingJob:  linear-learner-training-job.json)
#   4. deploy both as a serial pipeline             (CreateModel:        pipeline-model.json)
#   5. invoke it with one abalone and print the answer as the last line of output
#   6. stop the endpoint
#
# The documents use file:// URIs with two placeholders, rendered into a fresh work folder before
# use: @ROOT@ (this repository) and @WORK@ (the work folder, removed at the end unless KEEP_WORK=1).
# PORT chooses the endpoint's port (default 8080); PROFILE=debug uses the debug build (the tests do);
# SKIP_BUILD=1 uses the build as it is (the tests do: rebuilding would replace the binary that
# other tests are running).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
port=${PORT:-8080}

profile=${PROFILE:-release}
if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
    echo "== using the $profile build of modelstage and the stages as it is"
elif [[ "$profile" == release ]]; then
    echo "== building modelstage and the stages ($profile)"
    cargo build --release -q -p modelstage -p featurizer -p linear_learner
else
    echo "== building modelstage and the stages ($profile)"
    cargo build -q -p modelstage -p featurizer -p linear_learner
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin="$target_dir/$profile/modelstage"

work=$(mktemp -d "${TMPDIR:-/tmp}/modelstage-abalone.XXXXXX")
deploy_pid=
cleanup() {
    if [[ -n "$deploy_pid" ]] && kill -0 "$deploy_pid" 2>/dev/null; then
        kill -TERM "$deploy_pid" 2>/dev/null || true
        wait "$deploy_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        echo "work folder kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

for template in examples/abalone/*.json; do
    sed -e "s|@ROOT@/target/release|$target_dir/$profile|g" -e "s|@ROOT@|$root|g" -e "s|@WORK@|$work|g" \
        "$template" >"$work/$(basename "$template")"
done

echo "== 1. fitting the featurizer"
"$bin" fit --request "$work/featurizer-training-job.json"

echo "== 2. featurizing the training data (batch transform)"
"$bin" transform --request "$work/featurizer-transform-job.json" --model "$work/featurizer-model.json"
head -n 2 "$work/featurized/abalone.csv.out"

echo "== 3. fitting Linear Learner"
"$bin" fit --request "$work/linear-learner-training-job.json"

echo "== 4. deploying the pipeline on port $port"
# The endpoint's log (every container's lines, prefixed with its name) goes to a file, so that the
# answer stays the last line of output; it is shown if the endpoint does not come up.
"$bin" deploy --request "$work/pipeline-model.json" --port "$port" >"$work/deploy.log" 2>&1 &
deploy_pid=$!
for _ in $(seq 600); do
    grep -q "endpoint ready at" "$work/deploy.log" && break
    if ! kill -0 "$deploy_pid" 2>/dev/null; then
        cat "$work/deploy.log" >&2
        echo "the endpoint did not start" >&2
        exit 1
    fi
    sleep 0.05
done
grep -q "endpoint ready at" "$work/deploy.log" || { cat "$work/deploy.log" >&2; exit 1; }

echo "== 5. invoking the pipeline"
answer=$("$bin" invoke "http://localhost:$port" --content-type text/csv --accept application/json \
    --body 'M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155')

echo "== 6. stopping the endpoint"
kill -TERM "$deploy_pid"
wait "$deploy_pid"
deploy_pid=
echo "$answer"
