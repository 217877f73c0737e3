# Sourced by the image build scripts (sandbox-image/build.sh, scripts/build-orchestrator-image.sh)
# after they define say(), die() and image; they then call parse_flags, then require_docker.

# --if-missing sets if_missing; --help prints the lines $1 (a sed range) of the script's header;
# each flag named in $2 (space-separated, such as --local-base) sets the variable of its name.
if_missing=0
parse_flags() {
  local help_lines="$1" extra="$2" arg name
  shift 2
  for arg in "$@"; do
    case "$arg" in
      --if-missing) if_missing=1 ;;
      -h | --help)
        sed -n "${help_lines}s/^# \{0,1\}//p" "$0"
        exit 0
        ;;
      *)
        [[ " $extra " == *" $arg "* ]] || die "unknown argument: $arg (try --help)"
        name="${arg#--}"
        printf -v "${name//-/_}" 1
        ;;
    esac
  done
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Docker CLI and engine are there, and with --if-missing an existing image ends the script.
require_docker() {
  command -v docker >/dev/null || die "the docker CLI is not installed"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "the Docker engine does not answer (is dockerd running, and may this user use it?)"

  if ((if_missing)) && image_exists "$image"; then
    say "$image already exists; nothing to do"
    exit 0
  fi
}
