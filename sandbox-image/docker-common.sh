# Sourced by the image build scripts (sandbox-image/build.sh, scripts/build-orchestrator-image.sh)
# after they define say() and die() and parse --if-missing into if_missing.

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "the Docker engine does not answer (is dockerd running, and may this user use it?)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ((if_missing)) && image_exists "$image"; then
  say "$image already exists; nothing to do"
  exit 0
fi
