#!/usr/bin/env bash
# Runs every check and test: formatting, lints, the C header check, the unit
# tests and the end-to-end tests (which need the workspace's stage libraries,
# so the workspace is built first). CI runs exactly this; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== build the workspace (stage libraries for the end-to-end tests)"
cargo build --workspace

echo "== tests (the C header check is framework/abi/tests/header.rs)"
cargo test --workspace

# The crates stage authors depend on from the registry. Each must package (and
# build from its package alone); one run packages them together so that a path
# dependency between them resolves. Add a crate here when it becomes public.
PUBLISHABLE=(modelstage-abi modelstage-contract modelstage-sdk modelstage-runtime modelstage-testing)
echo "== cargo package ${PUBLISHABLE[*]}"
# cargo treats a packaged crate like a registry crate, which never changes
# for a given version: it reuses an unpacked copy under $CARGO_HOME/registry/src
# and its build from an earlier run. Remove the copies and verify in a target
# folder of its own, so that the crates are verified as they are now.
for crate in "${PUBLISHABLE[@]}"; do
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate"-[0-9]*
done
verify_target="${CARGO_TARGET_DIR:-target}/package-verify"
rm -rf "$verify_target"
package_args=()
for crate in "${PUBLISHABLE[@]}"; do package_args+=(-p "$crate"); done
CARGO_TARGET_DIR="$verify_target" cargo package --allow-dirty "${package_args[@]}"
