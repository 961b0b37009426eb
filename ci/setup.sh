#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh machine: the Rust
# components for the checks, the C and C++ compilers the C and C++ stages are
# built with, and the Python packages of the boto3 tests of `modelstage api`
# (tests/api). (Crates come from the registry during the build.)
set -euo pipefail
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
for tool in cargo cc c++; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ci/setup.sh: $tool is required" >&2; exit 1; }
done
command -v python3 >/dev/null 2>&1 || { echo "ci/setup.sh: python3 is required (tests/api)" >&2; exit 1; }
python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/../tests/api/requirements.txt"
python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/../tests/oip/requirements.txt"
