#!/usr/bin/env bash
# Build the Dockerfiles' base image from Debian packages alone (mmdebstrap + docker import): no Docker Hub needed.
#   bash scripts/build-base-image.sh [--suite bookworm|trixie] [--with-node] [--tag NAME]
# then: docker build --build-arg BASE_IMAGE=<the printed tag> -t community-bot .
# bookworm ships Python 3.11, trixie 3.13; both are supported. --with-node adds nodejs and npm (for gateway/Dockerfile).
# Needs root (or fakeroot/unshare modes of mmdebstrap), `apt-get install mmdebstrap`, and a reachable Debian mirror
# (MIRROR, default: this machine's first apt source, else http://deb.debian.org/debian).
set -euo pipefail

suite=bookworm
with_node=0
tag=""
while [ $# -gt 0 ]; do
    case "$1" in
        --suite) suite=$2; shift 2 ;;
        --with-node) with_node=1; shift ;;
        --tag) tag=$2; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed: apt-get install mmdebstrap" >&2; exit 1; }
command -v docker >/dev/null || { echo "docker is not installed: apt-get install docker.io" >&2; exit 1; }

if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
             | grep -v security | head -n1 | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?([^ ]+).*/\2/') || true
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
packages=python3,python3-venv,ca-certificates,tzdata,passwd
suffix=""
if [ "$with_node" = 1 ]; then packages+=,nodejs,npm; suffix=-node; fi
tag=${tag:-community-bot-base:$suite$suffix}

out=$(mktemp --suffix=.tar)
trap 'rm -f "$out"' EXIT
# minbase: essential packages + apt; the documentation and apt lists are dropped to keep the image small
mmdebstrap --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$out" "$MIRROR"
docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$out" "$tag" >/dev/null
echo "$tag"
