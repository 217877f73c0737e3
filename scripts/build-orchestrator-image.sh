#!/usr/bin/env bash
# Builds the orchestrator image (the Dockerfile at the top of the repository):
# MATRX_ORCHESTRATOR_IMAGE, default matrx-orchestrator:latest.
#
#   build-orchestrator-image.sh               build on BASE_IMAGE (default node:20-bookworm-slim)
#   build-orchestrator-image.sh --local-base  build where no container registry is reachable: on a
#                                             Node 20 base made here from a Debian base and this
#                                             machine's own node and npm
#   build-orchestrator-image.sh --if-missing  do nothing when the image already exists
#
# The Debian base for --local-base is matrx-debian-base:bookworm-slim (what
# `sandbox-image/build.sh --variant=slim` makes with debootstrap) or debian:bookworm-slim, whichever
# is here; with neither, that build runs first. `npm ci` inside the build still needs the npm
# registry: MATRX_BUILD_NETWORK is the build's network, default `host` with --local-base (such
# engines often run without a bridge).
# Progress goes to stderr. Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${MATRX_ORCHESTRATOR_IMAGE:-matrx-orchestrator:latest}"

say() { echo "orchestrator-image: $*" >&2; }
die() { say "error: $*"; exit 1; }

local_base=0
# shellcheck source=../sandbox-image/docker-common.sh
source "$root/sandbox-image/docker-common.sh"
parse_flags 2,16 "--local-base" "$@"
require_docker
exit_if_current "$image"

debian_base() {
  local candidate
  for candidate in matrx-debian-base:bookworm-slim debian:bookworm-slim; do
    if image_exists "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

ctx=""
cleanup() { [[ -z "$ctx" ]] || rm -rf "$ctx"; }
trap cleanup EXIT

# Sets `base` to a Node base tagged with the node version it holds, so a node upgrade here makes a
# new one.
make_node_base() {
  command -v node >/dev/null || die "--local-base needs node on this machine"
  command -v npm >/dev/null || die "--local-base needs npm on this machine"
  local version node_bin npm_dir cafile debian tag
  version="$(node --version)"
  [[ "$version" == v20.* ]] || die "--local-base needs Node 20 here, found $version"
  tag="matrx-orchestrator-base:node-$version"
  base="$tag"
  if image_exists "$tag"; then
    say "using the existing local base $tag"
    return
  fi
  node_bin="$(readlink -f "$(command -v node)")"
  npm_dir="$(npm root -g)/npm"
  [[ -f "$npm_dir/bin/npm-cli.js" ]] || die "npm not found at $npm_dir"
  debian="$(debian_base)" || {
    say "no Debian base here: building the slim sandbox image, which makes one"
    # Not --if-missing: the slim image may be here without its base.
    MATRX_SANDBOX_IMAGE="" bash "$root/sandbox-image/build.sh" --variant=slim
    debian="$(debian_base)" ||
      die "no Debian base; run sandbox-image/build.sh --variant=slim (as root) first"
  }

  ctx="$(mktemp -d "${TMPDIR:-/tmp}/matrx-orchestrator-base.XXXXXX")"
  cp "$node_bin" "$ctx/node"
  cp -a "$npm_dir" "$ctx/npm"
  # npm here may trust a CA that the base lacks (a proxy's): take the same bundle, nothing else of
  # npm's configuration (it can hold tokens).
  cafile="$(npm config get cafile 2>/dev/null || true)"
  if [[ -n "$cafile" && "$cafile" != null && -f "$cafile" ]]; then
    cp "$cafile" "$ctx/npm-ca.pem"
  else
    : >"$ctx/npm-ca.pem"
  fi
  cat >"$ctx/Dockerfile" <<'EOF'
ARG DEBIAN_BASE
FROM ${DEBIAN_BASE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY npm-ca.pem /usr/local/etc/npm-ca.pem
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && if [ -s /usr/local/etc/npm-ca.pem ]; then echo cafile=/usr/local/etc/npm-ca.pem >/usr/local/etc/npmrc; fi \
 && node --version && npm --version
EOF
  say "making $tag from $debian and this machine's node $version"
  docker build --network none --build-arg "DEBIAN_BASE=$debian" -t "$tag" "$ctx" >&2
  rm -rf "$ctx"
  ctx=""
}

build_args=()
network="${MATRX_BUILD_NETWORK:-default}"
if ((local_base)); then
  make_node_base
  build_args+=(--build-arg "BASE_IMAGE=$base")
  network="${MATRX_BUILD_NETWORK:-host}"
elif [[ -n "${BASE_IMAGE:-}" ]]; then
  base="$BASE_IMAGE"
  build_args+=(--build-arg "BASE_IMAGE=$base")
else
  base="node:20-bookworm-slim"
fi

say "building $image from $base (network: $network)"
start=$SECONDS
docker build --network "$network" "${build_args[@]}" -t "$image" "$root" >&2
say "built $image in $((SECONDS - start)) s"
