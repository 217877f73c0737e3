#!/usr/bin/env bash
# Builds the sandbox image: MATRX_SANDBOX_IMAGE, default matrx-sandbox:latest.
#
#   build.sh               build (or rebuild) the image
#   build.sh --if-missing  do nothing when the image already exists
#
# Base image, first that applies:
#   1. MATRX_SANDBOX_BASE_IMAGE, when set;
#   2. debian:bookworm-slim, when it is here or can be pulled;
#   3. matrx-debian-base:bookworm, made here (once) with debootstrap from this machine's own Debian
#      mirror, read at run time from its apt configuration. It already holds everything the image
#      needs, so the build then runs with --network none.
# Progress goes to stderr. Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${MATRX_SANDBOX_IMAGE:-matrx-sandbox:latest}"
public_base="debian:bookworm-slim"
local_base="matrx-debian-base:bookworm"
suite="bookworm"

say() { echo "sandbox-image: $*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck source=docker-common.sh
source "$here/docker-common.sh"
parse_flags 2,13 "" "$@"
require_docker

# The first plain http(s) or file mirror of a `deb` source that is not a security suite, from
# deb822 files (/etc/apt/sources.list.d/*.sources) or one-line ones (/etc/apt/sources.list{,.d/*.list}).
apt_mirror() {
  local files=() f
  for f in /etc/apt/sources.list.d/*.sources; do [[ -f "$f" ]] && files+=("$f"); done
  if ((${#files[@]})); then
    # One stanza stream: a blank line between files ends the last stanza of each (mawk has no ENDFILE).
    for f in "${files[@]}"; do cat "$f"; echo; done | awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && suites !~ /^ *$/ && suites !~ /^( *[^ ]*-security)+ *$/ &&
            enabled !~ /^ *no *$/ && uris != "" && found == "") found = uris
        types = ""; suites = ""; uris = ""; enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:"   { $1 = ""; types = $0 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { $1 = ""; enabled = $0 }
      tolower($1) == "uris:"    { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { uris = $i; break } }
      END { flush(); if (found != "") print found }
    ' | grep . && return
  fi
  files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [[ -f "$f" ]] && files+=("$f"); done
  ((${#files[@]})) || return 0
  awk '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($i ~ /^(https?|file):/ && $(i + 1) !~ /-security$/) { print $i; exit }
    }
  ' "${files[@]}"
}

rootfs=""
cleanup_rootfs() {
  [[ -n "$rootfs" && -d "$rootfs" ]] || return 0
  # A failed debootstrap can leave /proc or /sys mounted inside: unmount before deleting.
  local mounts m
  mounts="$(awk -v root="$rootfs" 'index($2, root "/") == 1 { print $2 }' /proc/self/mounts | sort -r)"
  for m in $mounts; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$rootfs"
  rootfs=""
}

build_local_base() {
  if image_exists "$local_base"; then
    say "using the existing local base $local_base"
    return
  fi
  [[ $EUID -eq 0 ]] || die "debootstrap needs root to make $local_base (or set MATRX_SANDBOX_BASE_IMAGE)"
  command -v debootstrap >/dev/null ||
    die "debootstrap is not installed (apt-get install debootstrap), or set MATRX_SANDBOX_BASE_IMAGE"
  [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] ||
    die "Debian's archive keyring is missing (apt-get install debian-archive-keyring)"
  local mirror
  mirror="$(apt_mirror)"
  [[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d/}; set MATRX_SANDBOX_BASE_IMAGE"

  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/matrx-rootfs.XXXXXX")"
  trap cleanup_rootfs EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "making $local_base with debootstrap from the mirror in /etc/apt (about half a minute)"
  local start=$SECONDS
  debootstrap --variant=minbase --include=tini,procps \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$rootfs" "$mirror" >&2 || die "debootstrap failed (see above)"
  say "debootstrap done in $((SECONDS - start)) s; trimming and importing"

  # Keep later package installs as lean as debian:*-slim does, and trim what is already there.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90-matrx-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/* \
    "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
    "$rootfs"/debootstrap
  # The image must not point at this machine's mirror; a build that wants apt adds its own sources.
  : >"$rootfs/etc/apt/sources.list"

  tar --numeric-owner -C "$rootfs" -c . |
    docker import --message "debootstrap --variant=minbase $suite" - "$local_base" >/dev/null
  cleanup_rootfs
  trap - EXIT INT TERM
  say "imported $local_base"
}

network=default
if [[ -n "${MATRX_SANDBOX_BASE_IMAGE:-}" ]]; then
  base="$MATRX_SANDBOX_BASE_IMAGE"
  say "base image from MATRX_SANDBOX_BASE_IMAGE: $base"
elif image_exists "$public_base"; then
  base="$public_base"
  say "base image: $public_base (present locally)"
elif say "trying to pull $public_base (up to 60 s)" &&
  timeout 60 docker pull --quiet "$public_base" >/dev/null 2>&1; then
  base="$public_base"
  say "base image: $public_base (pulled)"
else
  say "cannot pull $public_base; using a local base made with debootstrap"
  build_local_base
  base="$local_base"
  network=none
fi

say "building $image from $base (network: $network)"
start=$SECONDS
docker build --network "$network" --build-arg "BASE_IMAGE=$base" -t "$image" "$here" >&2
say "built $image in $((SECONDS - start)) s"
