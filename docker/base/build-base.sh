#!/usr/bin/env bash
# Builds the runtime base image of every stage image without a registry:
# exactly the shared libraries that `ldd` lists for the given ELF files (the
# modelstage binary and the stage libraries), /etc/nsswitch.conf and an empty
# /tmp, packed into a tar and loaded with `docker import`.
#
#   docker/base/build-base.sh TAG ELF...
#
# Why each piece is there:
# - the dynamic loader, libc and libgcc_s (plus libm etc. when ldd lists them):
#   the binary and the stage libraries stay dynamically linked, because a
#   statically linked glibc binary that dlopen()s a Rust cdylib crashes;
# - /etc/nsswitch.conf with `hosts: files dns`: without it glibc asks DNS
#   before /etc/hosts, so container names in a compose network or Docker's
#   /etc/hosts entries resolve slowly or not at all;
# - /tmp with mode 1777: `modelstage serve` talks to its worker processes over
#   a Unix socket in $TMPDIR (default /tmp).
# The tar is built deterministically (sorted, fixed owner and mtime) and its
# hash is kept as a label, so an unchanged base is not imported again and
# Docker's build cache for the stage images stays valid.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 TAG ELF..." >&2
    exit 2
fi
tag=$1
shift

umask 022
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# mktemp makes its folder 0700; it becomes the image's `/`.
chmod 755 "$root"

# Every library ldd resolves, at the path it resolves to (the loader at the
# path written in the ELF interpreter field). A library ldd cannot find stops
# the build: the image would fail at start-up with a less helpful message.
libs=()
for elf in "$@"; do
    [ -f "$elf" ] || { echo "$0: $elf does not exist" >&2; exit 1; }
    if ! out=$(ldd "$elf" 2>&1); then
        echo "$0: ldd $elf failed: $out" >&2
        exit 1
    fi
    if grep -q 'not found' <<<"$out"; then
        echo "$0: $elf needs libraries this machine does not have:" >&2
        grep 'not found' <<<"$out" >&2
        exit 1
    fi
    while read -r lib; do
        libs+=("$lib")
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done
if [ ${#libs[@]} -eq 0 ]; then
    echo "$0: ldd listed no libraries for $*; a static binary cannot load stage libraries" >&2
    exit 1
fi

for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    # -L: the file the link points to, stored under the name the loader asks for.
    cp -L "$lib" "$root$lib"
done
mkdir -p "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

tarball="$root.tar"
trap 'rm -rf "$root" "$tarball"' EXIT
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00:00Z' \
    -C "$root" -cf "$tarball" .
hash=$(sha256sum "$tarball" | cut -c1-64)

current=$(docker image inspect -f '{{index .Config.Labels "com.modelstage.base.sha256"}}' "$tag" 2>/dev/null || true)
if [ "$current" = "$hash" ]; then
    echo "base image $tag is up to date ($(printf '%s\n' "${libs[@]}" | sort -u | tr '\n' ' '))"
    exit 0
fi
docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL com.modelstage.base.sha256=$hash" \
    --message "modelstage base: $(printf '%s\n' "${libs[@]}" | sort -u | tr '\n' ' ')" \
    "$tarball" "$tag" >/dev/null
echo "imported base image $tag: $(printf '%s\n' "${libs[@]}" | sort -u | tr '\n' ' ')"
