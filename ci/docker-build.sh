#!/usr/bin/env bash
# Builds the runtime base image and one Docker image per stage from binaries
# cargo already built on this machine, with no registry:
#
#   ci/docker-build.sh [release|debug] [STAGE...]
#
# STAGE is a built-in stage (echo, featurizer, linear-learner; default: all
# three), tagged modelstage/<stage>:latest, or the path of any stage library,
# tagged modelstage/<its stage name>:latest. Build the binaries first:
#   cargo build --release --workspace      (or `cargo build --workspace` for debug)
#
# It does what a stage author does by hand, with the same binary:
#   modelstage image --runtime                         -> modelstage/runtime:<version>
#   modelstage image --stage LIB --tag NAME            -> the stage on that base
# `modelstage image` reads the labels from the library with the loader, and
# checks that the stage loads inside the image before tagging it.
#
# Environment:
#   STRIP=0      keep release binaries as cargo built them. By default the
#                `modelstage` binary loses its debug sections and its symbol
#                table (`strip`: 4 MB of a 21 MB binary, which kept the images
#                over 25 MB), and the stage libraries their debug sections
#                only (`strip --strip-debug`: their symbols stay, so a panic
#                backtrace in stage code still names its functions).
#   MODELSTAGE_BUILD_DIR=DIR   take the binaries from DIR instead of
#                ${CARGO_TARGET_DIR:-target}/<profile>.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-release}
case "$profile" in
    release | debug) ;;
    *) echo "ci/docker-build.sh: the profile is 'release' or 'debug', not '$profile'" >&2; exit 2 ;;
esac
shift || true
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(echo featurizer linear-learner)

cargo_flag=""
[ "$profile" = release ] && cargo_flag=" --release"
dir=${MODELSTAGE_BUILD_DIR:-${CARGO_TARGET_DIR:-target}/$profile}

# A built-in stage's library, or the library the argument names.
library_of() {
    case "$1" in
        echo) echo "$dir/libecho.so" ;;
        featurizer) echo "$dir/libfeaturizer.so" ;;
        linear-learner) echo "$dir/liblinear_learner.so" ;;
        */* | *.so) echo "$1" ;;
        *) return 1 ;;
    esac
}

missing=()
[ -x "$dir/modelstage" ] || missing+=("$dir/modelstage")
for stage in "${stages[@]}"; do
    lib=$(library_of "$stage") || {
        echo "ci/docker-build.sh: unknown stage '$stage': give echo, featurizer, linear-learner" \
            "or the path of a stage library (e.g. target/release/libmy_stage.so)" >&2
        exit 2
    }
    [ -f "$lib" ] || missing+=("$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci/docker-build.sh: not built yet: ${missing[*]}" >&2
    echo "  run: cargo build$cargo_flag --workspace (or the build of your stage)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Release binaries are stripped on the way into the images: `stage_file SRC
# DEST [STRIP-FLAG...]` (the flags are strip's; none strips everything strip
# can, which keeps the dynamic symbols a binary needs).
stage_file() {
    local src=$1 dest=$2
    shift 2
    if [ "$profile" = release ] && [ "${STRIP:-1}" != 0 ] && command -v strip >/dev/null; then
        strip "$@" -o "$dest" "$src"
    else
        cp "$src" "$dest"
    fi
}

# The runtime base holds this very binary (the copy in $work).
stage_file "$dir/modelstage" "$work/modelstage"
chmod +x "$work/modelstage"
"$work/modelstage" image --runtime

for stage in "${stages[@]}"; do
    lib=$(library_of "$stage")
    case "$stage" in
        */* | *.so)
            # `stage:      NAME VERSION` from the loader names the image.
            info=$("$work/modelstage" inspect "$lib") || exit 1
            name=$(awk '$1 == "stage:" { print $2 }' <<<"$info")
            ;;
        *) name=$stage ;;
    esac
    copy="$work/$(basename "$lib")"
    stage_file "$lib" "$copy" --strip-debug
    "$work/modelstage" image --stage "$copy" --tag "modelstage/$name:latest"
    rm -f "$copy"
done

echo
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' |
    awk 'NR == 1 || $1 ~ /^modelstage\//'
