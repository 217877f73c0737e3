# Sourced by the image build scripts (sandbox-image/build.sh, scripts/build-orchestrator-image.sh)
# after they define say() and die(); they then call parse_flags, require_docker and
# exit_if_current.

# --if-missing sets if_missing; --help prints the lines $1 (a sed range) of the script's header;
# each flag named in $2 (space-separated) sets the variable of its name: `--local-base` to 1,
# `--variant=` (named with its `=`) to the value given after the `=`.
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
      --*=*)
        name="${arg%%=*}"
        [[ " $extra " == *" $name= "* ]] || die "unknown argument: $arg (try --help)"
        name="${name#--}"
        printf -v "${name//-/_}" '%s' "${arg#*=}"
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

# The value of label $2 of image $1; empty when the image or the label is missing.
image_label() {
  docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# The Docker CLI and engine are there.
require_docker() {
  command -v docker >/dev/null || die "the docker CLI is not installed"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "the Docker engine does not answer (is dockerd running, and may this user use it?)"
}

# With --if-missing, ends the script when image $1 exists and, when a label $2 and a value $3 are
# given, carries that value: otherwise the image is stale, and the script goes on to rebuild it.
exit_if_current() {
  ((if_missing)) && image_exists "$1" || return 0
  if (($# == 1)); then
    say "$1 already exists; nothing to do"
    exit 0
  fi
  local found
  found="$(image_label "$1" "$2")"
  if [[ "$found" == "$3" ]]; then
    say "$1 is up to date ($2 ${3:0:12}); nothing to do"
    exit 0
  fi
  if [[ -n "$found" ]]; then found="recipe ${found:0:12}"; else found="no recorded recipe"; fi
  say "$1 is stale: built from $found, the recipe here is ${3:0:12}; rebuilding it"
}
