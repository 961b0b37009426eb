#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh machine: the Rust
# components for the checks, and the C and C++ compilers the C and C++ stages
# are built with. (Crates come from the registry during the build.)
set -euo pipefail
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
for tool in cargo cc c++; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ci/setup.sh: $tool is required" >&2; exit 1; }
done
