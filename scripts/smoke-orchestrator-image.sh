#!/usr/bin/env bash
# Smoke test of the orchestrator image on this machine's Docker engine: builds the image when it is
# missing, runs the API from it on free loopback ports with the engine's socket (read-only mount,
# the socket's group), no capabilities and a read-only root with only /tmp and the user's home
# writable, waits for GET /health and runs the image's own HEALTHCHECK, then stops it with SIGTERM
# and expects a clean exit.
#
#   smoke-orchestrator-image.sh [--local-base]   (passed to build-orchestrator-image.sh)
#
# Needs the sandbox image (npm run image). The image's command is `npm run serve` (production
# mode: no S3 configured here, so homes are not kept). Sends traffic to 127.0.0.1 only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${MATRX_ORCHESTRATOR_IMAGE:-matrx-orchestrator:latest}"
name="matrx-orchestrator-smoke-$$"
socket="/var/run/docker.sock"
[[ "${DOCKER_HOST:-}" != unix://* ]] || socket="${DOCKER_HOST#unix://}"

say() { echo "smoke: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

bash "$root/scripts/build-orchestrator-image.sh" --if-missing "$@"
[[ -S "$socket" ]] || die "no Docker socket at $socket"

free_port() {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });"
}
port="$(free_port)"
lambda_port="$(free_port)"

say "starting $image as $name on 127.0.0.1:$port"
docker run -d --name "$name" --network host \
  --cap-drop ALL --security-opt no-new-privileges:true \
  --read-only --tmpfs /tmp --tmpfs /home/matrx:uid=10001,gid=10001 \
  -v "$socket:/var/run/docker.sock:ro" --group-add "$(stat -c %g "$socket")" \
  -e MATRX_HOST=127.0.0.1 -e MATRX_PORT="$port" -e MATRX_LAMBDA_PORT="$lambda_port" \
  -e MATRX_DOCKER_NETWORK=none -e MATRX_LOG_FORMAT=text \
  "$image" >/dev/null

url="http://127.0.0.1:$port/health"
start=$SECONDS
until body="$(curl -fsS --max-time 5 "$url" 2>/dev/null)"; do
  if [[ "$(docker inspect --format '{{.State.Running}}' "$name")" != true ]]; then
    docker logs "$name" 2>&1 | tail -40 >&2
    die "the container exited before /health answered"
  fi
  ((SECONDS - start < 120)) || { docker logs "$name" 2>&1 | tail -40 >&2; die "no /health within 120 s"; }
  sleep 1
done
say "GET /health after $((SECONDS - start)) s: $body"
[[ "$body" == *'"status":"healthy"'* ]] || die "not healthy: $body"

# The image's own HEALTHCHECK command, run now rather than after its first interval.
mapfile -t check < <(docker inspect --format \
  '{{range $i, $a := .Config.Healthcheck.Test}}{{if $i}}{{println $a}}{{end}}{{end}}' "$name")
docker exec "$name" "${check[@]}" || die "the image's HEALTHCHECK command failed"
say "HEALTHCHECK command: ok"

stop_start=$SECONDS
docker stop --time 30 "$name" >/dev/null
code="$(docker inspect --format '{{.State.ExitCode}}' "$name")"
say "stopped with SIGTERM in $((SECONDS - stop_start)) s, exit code $code"
[[ "$code" == 0 ]] || { docker logs "$name" 2>&1 | tail -20 >&2; die "exit code $code after SIGTERM"; }
say "passed"
