#!/usr/bin/env bash
# Builds one Docker image per stage from binaries cargo already built on this
# machine, with no registry:
#
#   ci/docker-build.sh [release|debug] [STAGE...]
#
# STAGE is echo, featurizer or linear-learner (default: all three); the images
# are tagged modelstage/<stage>:latest. Build the binaries first:
#   cargo build --release --workspace      (or `cargo build --workspace` for debug)
# Environment:
#   BASE=IMAGE   use IMAGE as the runtime base (e.g. gcr.io/distroless/cc-debian12
#                where a registry is reachable) instead of importing
#                modelstage/base:latest from this machine's libraries.
#   STRIP=0      keep the debug sections of release binaries (stripped by
#                default with `strip --strip-debug`; symbols stay, so panic
#                backtraces still name functions).
# Each image is checked after the build: `modelstage inspect` runs inside it
# against the baked-in stage, which proves the loader, the libraries and the
# stage fit together.
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

library_of() {
    case "$1" in
        echo) echo libecho.so ;;
        featurizer) echo libfeaturizer.so ;;
        linear-learner) echo liblinear_learner.so ;;
        *) return 1 ;;
    esac
}

cargo_flag=""
[ "$profile" = release ] && cargo_flag=" --release"
# The binaries of that profile: MODELSTAGE_BUILD_DIR, else cargo's target folder.
dir=${MODELSTAGE_BUILD_DIR:-${CARGO_TARGET_DIR:-target}/$profile}
missing=()
[ -x "$dir/modelstage" ] || missing+=("$dir/modelstage")
for stage in "${stages[@]}"; do
    lib=$(library_of "$stage") || {
        echo "ci/docker-build.sh: unknown stage '$stage' (known: echo, featurizer, linear-learner)" >&2
        exit 2
    }
    [ -f "$dir/$lib" ] || missing+=("$dir/$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci/docker-build.sh: not built yet: ${missing[*]}" >&2
    echo "  run: cargo build$cargo_flag --workspace" >&2
    exit 1
fi

if ! err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null); then
    echo "ci/docker-build.sh: the Docker engine is not reachable: $err" >&2
    exit 1
fi

# The classic builder: BuildKit may look a local-only base image up in a
# registry, and none is reachable here.
export DOCKER_BUILDKIT=0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Binaries go into a small build context of their own (the target folder is
# gigabytes). Release binaries lose their debug sections on the way.
stage_file() {
    local src=$1 dest=$2
    if [ "$profile" = release ] && [ "${STRIP:-1}" != 0 ] && command -v strip >/dev/null; then
        strip --strip-debug -o "$dest" "$src"
    else
        cp "$src" "$dest"
    fi
}

base=${BASE:-}
if [ -z "$base" ]; then
    base=modelstage/base:latest
    elves=("$dir/modelstage")
    for stage in "${stages[@]}"; do elves+=("$dir/$(library_of "$stage")"); done
    docker/base/build-base.sh "$base" "${elves[@]}"
fi

for stage in "${stages[@]}"; do
    lib=$(library_of "$stage")
    info=$("$dir/modelstage" inspect "$dir/$lib") || {
        echo "ci/docker-build.sh: $dir/$lib is not a usable stage (see above)" >&2
        exit 1
    }
    # `stage:      featurizer 0.1.0` and `abi:        1.0 (this modelstage: 1.0)`
    stage_name=$(awk '$1 == "stage:" { print $2 }' <<<"$info")
    stage_version=$(awk '$1 == "stage:" { print $3 }' <<<"$info")
    abi_version=$(awk '$1 == "abi:" { print $2 }' <<<"$info")

    context="$work/$stage"
    mkdir -p "$context"
    stage_file "$dir/modelstage" "$context/modelstage"
    stage_file "$dir/$lib" "$context/$lib"

    image=modelstage/$stage:latest
    echo "== $image ($stage_name $stage_version, ABI $abi_version, $profile, base $base)"
    docker build -q -f docker/stage.Dockerfile \
        --build-arg "BASE=$base" \
        --build-arg "STAGE=$lib" \
        --build-arg "STAGE_NAME=$stage_name" \
        --build-arg "STAGE_VERSION=$stage_version" \
        --build-arg "ABI_VERSION=$abi_version" \
        --build-arg "PROFILE=$profile" \
        -t "$image" "$context" >/dev/null 2>"$work/build.log" || {
        # The classic builder's deprecation notice is noise; the rest is the reason.
        grep -v -e DEPRECATED -e 'legacy builder' -e BuildKit -e 'environment-variable' "$work/build.log" >&2
        echo "ci/docker-build.sh: docker build of $image failed" >&2
        exit 1
    }
    if ! check=$(docker run --rm --network none "$image" inspect /opt/modelstage/stage.so 2>&1); then
        echo "ci/docker-build.sh: $image is built but cannot load its stage:" >&2
        echo "$check" >&2
        exit 1
    fi
    rm -rf "$context"
done

echo
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' |
    awk 'NR == 1 || $1 ~ /^modelstage\//'
