#!/usr/bin/env bash
# The main job. For now: build, serve the echo stage, invoke it once, stop.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p modelstage -p echo
model_dir=$(mktemp -d)
port=${PORT:-8080}
target/release/modelstage serve --stage target/release/libecho.so --model-dir "$model_dir" --port "$port" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$model_dir"' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/ping" >/dev/null && break
    sleep 0.05
done
curl -fs -X POST -H 'Content-Type: text/csv' --data-binary 'M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155' \
    "http://127.0.0.1:$port/invocations"
echo
