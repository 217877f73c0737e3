#!/usr/bin/env bash
# Builds the sandbox image (MATRX_SANDBOX_IMAGE, default matrx-sandbox:latest).
#   --if-missing   do nothing when the image already exists
# Base image: MATRX_SANDBOX_BASE_IMAGE if set; else debian:bookworm-slim if it is here or can be
# pulled; else a local base made with debootstrap from this machine's own Debian mirror.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${MATRX_SANDBOX_IMAGE:-matrx-sandbox:latest}"
public_base="debian:bookworm-slim"
local_base="matrx-debian-base:bookworm"

say() { echo "sandbox-image: $*" >&2; }

if [[ "${1:-}" == "--if-missing" ]] && docker image inspect "$image" >/dev/null 2>&1; then
  say "$image already exists"
  exit 0
fi

apt_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1 || true)"
  if [[ -z "$uri" ]]; then
    uri="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n 1 || true)"
  fi
  [[ -n "$uri" ]] || { say "no Debian mirror found in /etc/apt"; return 1; }
  echo "$uri"
}

build_local_base() {
  if docker image inspect "$local_base" >/dev/null 2>&1; then
    say "using existing $local_base"
    return
  fi
  command -v debootstrap >/dev/null || { say "debootstrap is needed (apt-get install debootstrap)"; exit 1; }
  local rootfs mirror
  mirror="$(apt_mirror)"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  say "making $local_base with debootstrap (about half a minute)"
  debootstrap --variant=minbase --include=tini,procps bookworm "$rootfs" "$mirror" >&2
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import - "$local_base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
}

network=default
if [[ -n "${MATRX_SANDBOX_BASE_IMAGE:-}" ]]; then
  base="$MATRX_SANDBOX_BASE_IMAGE"
elif docker image inspect "$public_base" >/dev/null 2>&1 ||
  timeout 60 docker pull "$public_base" >/dev/null 2>&1; then
  base="$public_base"
else
  say "cannot pull $public_base: building a local base instead"
  build_local_base
  base="$local_base"
  network=none
fi

say "building $image from $base"
docker build --network "$network" --build-arg "BASE_IMAGE=$base" -t "$image" "$here" >&2
say "built $image"
