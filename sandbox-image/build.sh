#!/usr/bin/env bash
# Builds a sandbox image from one variant of this directory's recipe: the workbench (the default,
# matrx-sandbox:latest) or another package list of packages/ (--variant=slim:
# matrx-sandbox-slim:latest). MATRX_SANDBOX_IMAGE names the image instead.
#
#   build.sh                  build (or rebuild) the image
#   build.sh --if-missing     build only when the image is missing or stale (its recipe differs)
#   build.sh --variant=NAME   the variant packages/NAME: workbench (default) or slim
#   build.sh --print-recipe   print the variant's recipe and stop (needs no Docker)
#
# The recipe is the sha256 of the files that make the image (Dockerfile, install-packages,
# sandbox-entrypoint, the variant's package list); the image carries it as label matrx.recipe.
# Base image, first that applies:
#   1. MATRX_SANDBOX_BASE_IMAGE, when set;
#   2. debian:bookworm-slim, when it is here or can be pulled;
#      on these two, apt-get installs the packages during the build, on the network
#      MATRX_BUILD_NETWORK (default `default`; `host` on an engine without a bridge);
#   3. matrx-debian-base:bookworm-<variant>, made here (again when its packages change) with
#      debootstrap from this machine's own Debian mirror, read at run time from its apt
#      configuration, then the variant's packages installed into it with apt-get in a chroot. It
#      holds everything the image needs, so the image build then runs with --network none.
# Progress goes to stderr. Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
public_base="debian:bookworm-slim"
suite="bookworm"

say() { echo "sandbox-image: $*" >&2; }
die() { say "error: $*"; exit 1; }

variant=workbench
print_recipe=0
# shellcheck source=docker-common.sh
source "$here/docker-common.sh"
parse_flags 2,22 "--variant= --print-recipe" "$@"
[[ "$variant" =~ ^[a-z0-9][a-z0-9-]*$ && -f "$here/packages/$variant" ]] ||
  die "no variant $variant: packages/ holds $(ls "$here/packages" | xargs)"
if [[ "$variant" == workbench ]]; then
  image="${MATRX_SANDBOX_IMAGE:-matrx-sandbox:latest}"
else
  image="${MATRX_SANDBOX_IMAGE:-matrx-sandbox-$variant:latest}"
fi
local_base="matrx-debian-base:$suite-$variant"

# One sha256 over files of this directory (names and contents): the recipe of the image, and of the
# local base (what debootstrap and apt-get put in it).
recipe_of() { (cd "$here" && sha256sum "$@") | sha256sum | cut -d' ' -f1; }
recipe="$(recipe_of Dockerfile install-packages sandbox-entrypoint "packages/$variant")"
if ((print_recipe)); then
  echo "$recipe"
  exit 0
fi

require_docker
exit_if_current "$image" matrx.recipe "$recipe"

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

# Prints a tool's output but counts its per-package lines (fetching, unpacking and setting up
# hundreds of packages, and the man pages the slim rules leave out) instead of printing them: one
# line every 250. apt-get's lists of package names are left out (its summary line follows them).
# Errors and all else pass through.
condensed() {
  awk -v what="$1" '
    { gsub(/\033\[[0-9;]*m/, "") } # the colour docker build gives what a step writes to stderr
    /^(The following .*packages will be|Suggested packages:|Recommended packages:)/ {
      listing = 1
      next
    }
    listing && /^  / { next }
    { listing = 0 }
    /^(I: (Retrieving|Validating|Extracting|Unpacking|Configuring) |Get:[0-9]+ |Selecting previously unselected |Preparing to unpack |Unpacking |Setting up |Processing triggers |\(Reading database|update-alternatives: warning: skip creation of )/ {
      if (++steps % 250 == 0) { print "sandbox-image: " what ": " steps " lines on packages"; fflush() }
      next
    }
    { print; fflush() }
    END { if (steps) print "sandbox-image: " what ": " steps " lines on packages in all" }
  '
}

rootfs=""
cleanup_rootfs() {
  [[ -n "$rootfs" && -d "$rootfs" ]] || return 0
  # A failed debootstrap or apt-get can leave /proc (or a file: mirror) mounted inside: unmount
  # before deleting.
  local mounts m
  mounts="$(awk -v root="$rootfs" 'index($2, root "/") == 1 { print $2 }' /proc/self/mounts | sort -r)"
  for m in $mounts; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$rootfs"
  rootfs=""
}

# The variant's packages, installed in the rootfs by the same script as in the image build, with
# the sources debootstrap wrote. A file: mirror is mounted read-only where those sources expect it.
install_in_rootfs() {
  local mirror="$1" path
  if [[ "$mirror" == file:* ]]; then
    path="/${mirror#file:}"
    path="/${path##*//}"
    mkdir -p "$rootfs$path"
    mount --bind "$path" "$rootfs$path"
    mount -o remount,bind,ro "$rootfs$path"
  fi
  mkdir -p "$rootfs/tmp/matrx-build"
  cp "$here/install-packages" "$here/packages/$variant" "$rootfs/tmp/matrx-build/"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" bash /tmp/matrx-build/install-packages "/tmp/matrx-build/$variant" 2>&1 |
    condensed apt-get >&2 || die "installing the $variant packages failed (see above)"
  umount "$rootfs/proc"
  [[ -z "${path:-}" ]] || umount "$rootfs$path"
  rm -rf "$rootfs/tmp/matrx-build"
}

build_local_base() {
  local wanted
  wanted="$(recipe_of install-packages "packages/$variant")"
  if [[ "$(image_label "$local_base" matrx.base-recipe)" == "$wanted" ]]; then
    say "using the existing local base $local_base"
    return
  fi
  ! image_exists "$local_base" || say "$local_base was made from other packages: making it again"
  [[ $EUID -eq 0 ]] || die "debootstrap needs root to make $local_base (or set MATRX_SANDBOX_BASE_IMAGE)"
  command -v debootstrap >/dev/null ||
    die "debootstrap is not installed (apt-get install debootstrap), or set MATRX_SANDBOX_BASE_IMAGE"
  [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] ||
    die "Debian's archive keyring is missing (apt-get install debian-archive-keyring)"
  local mirror
  mirror="$(apt_mirror)"
  [[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d/}; set MATRX_SANDBOX_BASE_IMAGE"

  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/matrx-rootfs.XXXXXX")"
  # It becomes the image's /, which apt's own user must be able to enter.
  chmod 755 "$rootfs"
  trap cleanup_rootfs EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "making $local_base: debootstrap from the mirror in /etc/apt, then the $variant packages" \
    "with apt-get in a chroot"
  local start=$SECONDS
  debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$rootfs" "$mirror" 2>&1 | condensed debootstrap >&2 ||
    die "debootstrap failed (see above)"
  say "debootstrap done in $((SECONDS - start)) s; installing the $variant packages"

  # Packages install as lean as in debian:*-slim, and what debootstrap put there is trimmed.
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
    "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/locale/*
  install_in_rootfs "$mirror"
  say "$variant packages installed in $((SECONDS - start)) s since the start"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
    "$rootfs"/debootstrap
  # Nothing of this machine goes into the image: not its mirror (a build that wants apt adds its
  # own sources), nor the resolver and host name debootstrap copied (Docker provides both).
  : >"$rootfs/etc/apt/sources.list"
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"

  say "importing $local_base"
  tar --numeric-owner -C "$rootfs" -c . |
    docker import --change "LABEL matrx.base-recipe=$wanted" \
      --message "debootstrap --variant=minbase $suite + packages/$variant" - "$local_base" >/dev/null
  cleanup_rootfs
  trap - EXIT INT TERM
  say "made $local_base in $((SECONDS - start)) s"
}

network="${MATRX_BUILD_NETWORK:-default}"
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

say "building $image ($variant) from $base (network: $network)"
start=$SECONDS
docker build --network "$network" --build-arg "BASE_IMAGE=$base" --build-arg "VARIANT=$variant" \
  --label "matrx.recipe=$recipe" -t "$image" "$here" 2>&1 | condensed "docker build" >&2
say "built $image in $((SECONDS - start)) s"
