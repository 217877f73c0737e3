# The process channel of a sandbox: one per sandbox and user, started by the orchestrator on the
# user's first background process as
#   docker exec -i --user USER CONTAINER bash -c "<this file>" matrx-channel USER
# and kept for the life of the sandbox. It is not part of the image: the orchestrator sends it,
# and it needs nothing but bash (4.4 or later) and coreutils. Commands take the compiled channel
# (exec-channel.c), or where it cannot start a plain engine exec of this file (`--once`, below).
#
# Requests come on stdin, fields ended by a NUL byte; answers go to stdout in the order of the
# requests. Stderr carries events (`F`: why the channel stops). Everything runs as the channel's
# user, so the container's permissions apply as they do to a plain engine exec.
#
# State lives in the sandbox, under /run/matrx (made by the orchestrator, mode 1777):
#   u/<uid>/        this user's: cwd (where its last command ended), tick
#   p/<process_id>/ a background process: meta and status (readable by the sandbox's other
#                   channels), out.<n> and err.<n> (its output in segments), stdin (a FIFO), pid
# so that background processes and their output outlive the channel and the orchestrator.
set -u
shopt -s nullglob

readonly fallback_cwd=/home/agent

# Enters the directory a command starts in. An implicit one (1: the sandbox's last cwd; 2: the
# same, for a command whose end must not move it) that has gone is replaced; an explicit one (0)
# that cannot be entered fails the command, as a shell would.
enter() {
  local dir=$1 implicit=$2
  cd -- "$dir" 2>/dev/null && return 0
  if [[ $implicit != 0 ]]; then
    cd -- "$fallback_cwd" 2>/dev/null || cd /
    return 0
  fi
  local why='Permission denied'
  if [[ ! -e $dir ]]; then why='No such file or directory'; elif [[ ! -d $dir ]]; then why='Not a directory'; fi
  printf 'bash: cd: %s: %s\n' "$dir" "$why" >&2
  return 1
}

# The command's own shell records where it ended (printf FORMAT and a redirection), into the
# variable `prefix`; a command that replaces its shell (exec) or sets its own EXIT trap leaves no
# record. On the command's first line, so line numbers hold.
cwd_trap() {
  printf -v prefix "trap 'builtin printf %s \"\$PWD\" %s' EXIT; " "$1" "$2"
}

# What a command's process sees, set just before it starts; anything started before this (the
# output writers, a watchdog) does not carry the tag, so a sweep leaves it alone.
command_environment() {
  local tag=$1 entry
  shift
  for entry in "$@"; do export "${entry?}"; done
  export MATRX_EXEC_ID=$tag
  # A plain engine exec starts bash at level 1; so does this.
  export SHLVL=0
  unset OLDPWD
  if [[ -v locale_set ]]; then
    if [[ -v saved_lc_all ]]; then export LC_ALL=$saved_lc_all; else unset LC_ALL; fi
  fi
}

# Sends SIGNAL (0 only tests) once to every process whose environment holds MATRX_EXEC_ID=TAG,
# which reaches what left the process group (setsid, nohup). True when it found one.
signal_tagged() {
  local tag="MATRX_EXEC_ID=$1" signal=$2 environ pid entry found=1
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    while IFS= read -r -d '' entry; do
      if [[ $entry == "$tag" ]]; then
        kill -s "$signal" "$pid" 2>/dev/null && found=0
        break
      fi
    done <"$environ" 2>/dev/null
  done
  return $found
}

# Signals the tagged processes again while it finds some, for those forked meanwhile.
sweep() {
  local pass
  for pass in 1 2 3 4 5 6 7 8; do
    signal_tagged "$1" "$2" || return 0
  done
}

# Without the command channel (it could not start), each command is a plain engine exec of this file:
#   bash -c "<this file>" matrx-channel --once CWD IMPLICIT BACKSTOP COMMAND
# with the same start directory, environment and backstop; the cwd it ended in comes last on
# stderr, after a NUL. And a command past its timeout is ended with
#   bash -c "<this file>" matrx-channel --kill TAG
case ${1-} in
  --once)
    enter "$2" "$3" || exit 1
    command_environment "${MATRX_EXEC_ID-}"
    cwd_trap '"\0%s"' '>&2'
    exec timeout -s KILL "$4" bash -c "$prefix$5"
    ;;
  --kill)
    sweep "$2" KILL
    exit 0
    ;;
esac

# The channel's own files are private; commands get the mask a plain engine exec has.
readonly command_umask=$(umask)
umask 077

readonly PROTOCOL=3
readonly user_name=$1
readonly base=/run/matrx
readonly state=$base/u/$UID
readonly procs=$base/p

# Stderr carries events, written on their own descriptor: bash's own notes (a job a signal ended)
# go to fd 2, which goes nowhere. What the channel starts must not hold the events open.
exec {events}>&2 2>/dev/null

# This event says why the channel stops.
fail() {
  printf 'F\0%s\0' "$1" >&"$events"
  exit 3
}

for tool in timeout head stat cat dd mkdir mkfifo rm stdbuf; do
  type -P "$tool" >/dev/null || fail "$tool is missing (coreutils)"
done
((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))) ||
  fail "bash $BASH_VERSION is too old (4.4 or later)"
[[ -d $base/u && -d $procs ]] || fail "$base is missing"
[[ -d $state ]] || mkdir -- "$state" 2>/dev/null
[[ -d $state && -O $state && ! -L $state ]] || fail "$state is not this user's"
[[ -p $state/tick ]] || mkfifo -- "$state/tick" || fail "cannot make $state/tick"
# Never written: reading it with -t is a sleep that costs no process.
exec {tick}<>"$state/tick"

field() { IFS= read -r -d '' "$1"; }

now_us() {
  if [[ -n ${EPOCHREALTIME-} ]]; then
    printf '%s' "${EPOCHREALTIME/[.,]/}"
  else
    date +%s%6N
  fi
}

# Reads `count` NAME and VALUE fields into the array named by $1 as NAME=VALUE.
read_env() {
  local -n into=$1
  local count name value i
  field count
  into=()
  for ((i = 0; i < count; i++)); do
    field name
    field value
    into+=("$name=$value")
  done
}

# --- background processes -------------------------------------------------------------------------

# id, command, user, cwd, started (µs), status, exit code, ended (µs), gone (1 once killed and
# nothing of it is left, or ended).
emit_process() {
  local dir=$procs/$1
  local -a meta status
  mapfile -d '' -t meta <"$dir/meta" 2>/dev/null || return 1
  status=(running '' '')
  [[ -s $dir/status ]] && mapfile -d '' -t status <"$dir/status"
  local gone=0
  if [[ -e $dir/gone || (${status[0]} != running && ! -e $dir/killed) ]]; then gone=1; fi
  printf '%s\0' "${meta[@]:0:5}" "${status[@]:0:3}" "$gone"
}

on_process_start() {
  local id cwd implicit timeout segment keep command
  local -a env
  field id
  field cwd
  field implicit
  field timeout
  field segment
  field keep
  read_env env
  field command
  local dir=$procs/$id
  if ! mkdir -m 711 -- "$dir" 2>/dev/null; then
    printf 'exists\0'
    return
  fi
  if [[ $implicit == 1 && ! -d $cwd ]]; then cwd=$fallback_cwd; fi
  umask 022
  printf '%s\0' "$id" "$command" "$user_name" "$cwd" "$(now_us)" "$segment" >"$dir/meta"
  umask 077
  mkfifo -- "$dir/stdin"
  (
    run_process
  ) </dev/null >/dev/null 2>&1 {events}>&- &
  printf 'ok\0'
  emit_process "$id"
}

# Writes a stream into FILE.0, FILE.1... of SEGMENT bytes each, and keeps the last KEEP of them.
# Unbuffered: head would keep what it writes to a file until its buffer fills, and output must
# show as soon as it comes.
segments() {
  local file=$1 segment=$2 keep=$3 n=0 size
  while :; do
    stdbuf -o0 head -c "$segment" >"$file.$n"
    size=$(stat -c %s -- "$file.$n")
    ((size < segment)) && return
    # The next segment counts too: never more than KEEP of them, the one being written included.
    ((n + 1 >= keep)) && rm -f -- "$file.$((n + 1 - keep))"
    n=$((n + 1))
  done
}

run_process() {
  local hold out err watchdog='' child rc status=exited
  printf '%s' "$BASHPID" >"$dir/pid"
  exec {out}> >(segments "$dir/out" "$segment" "$keep")
  exec {err}> >(segments "$dir/err" "$segment" "$keep")
  if [[ -n $timeout ]]; then
    (
      exec {out}>&- {err}>&-
      read -r -t "$timeout" -u "$tick"
      : >"$dir/timedout"
      sweep "$id" KILL
    ) &
    watchdog=$!
  fi
  # Opened last, so that this shell holds the FIFO's only writer besides the `I` requests: when
  # it lets go (a USR1 from an `I` request with eof), the process reads the end of its input.
  exec {hold}<>"$dir/stdin"
  trap 'exec {hold}>&-; : >"$dir/eof"' USR1
  if enter "$cwd" 0 2>&$err; then
    umask "$command_umask"
    command_environment "$id" "${env[@]}"
    bash -c "$command" <"$dir/stdin" >&$out 2>&$err {out}>&- {err}>&- {hold}>&- {tick}>&- &
    child=$!
    exec {out}>&- {err}>&-
    # A trap (USR1) interrupts `wait`, with a status over 128 while the child still runs.
    while :; do
      wait "$child"
      rc=$?
      kill -0 "$child" 2>/dev/null || break
    done
    if ((rc > 128)); then
      local reaped
      wait "$child" 2>/dev/null
      reaped=$?
      ((reaped != 127)) && rc=$reaped
    fi
  else
    exec {out}>&- {err}>&-
  fi
  [[ -n $watchdog ]] && kill "$watchdog" 2>/dev/null
  if [[ -e $dir/killed ]]; then
    status=killed
  elif [[ -e $dir/timedout ]]; then
    status=timed_out
    rc=124
  fi
  umask 022
  printf '%s\0' "$status" "$rc" "$(now_us)" >"$dir/status"
}

process_exists() { [[ -r $procs/$1/meta ]]; }

on_list() {
  local -a dirs=("$procs"/proc-*/)
  local -a listed=()
  local dir id
  for dir in "${dirs[@]}"; do
    id=${dir%/}
    id=${id##*/}
    process_exists "$id" && listed+=("$id")
  done
  printf 'ok\0%s\0' "${#listed[@]}"
  for id in "${listed[@]}"; do emit_process "$id"; done
}

on_get() {
  local id
  field id
  if ! process_exists "$id"; then
    printf 'missing\0'
    return
  fi
  printf 'ok\0'
  emit_process "$id"
}

# Sends up to LIMIT bytes of a stream from OFFSET on: the offset it starts from (later than the
# one asked when those bytes are gone), the length, then the bytes.
emit_stream() {
  local file=$1 offset=$2 limit=$3 segment=$4
  local -a files=("$file".*)
  local first=-1 last=-1 path n
  for path in "${files[@]}"; do
    n=${path##*.}
    [[ $n =~ ^[0-9]+$ ]] || continue
    ((first < 0 || n < first)) && first=$n
    ((n > last)) && last=$n
  done
  if ((last < 0)); then
    printf '%s\0%s\0' "$offset" 0
    return
  fi
  # Opened first: a segment removed meanwhile stays readable, so the length said is the length sent.
  # The writer removes the oldest ones, so one gone before it was opened moves the first on.
  local -a fds=()
  local fd
  for ((n = first; n <= last; n++)); do
    if exec {fd}<"$file.$n"; then
      fds+=("$fd")
    elif ((${#fds[@]} == 0)); then
      first=$((n + 1))
    else
      last=$((n - 1))
      break
    fi
  done 2>/dev/null
  if ((${#fds[@]} == 0)); then
    printf '%s\0%s\0' "$offset" 0
    return
  fi
  local size
  size=$(stat -L -c %s "/proc/self/fd/${fds[-1]}" 2>/dev/null || echo 0)
  local total=$((last * segment + size))
  ((offset < first * segment)) && offset=$((first * segment))
  ((offset > total)) && offset=$total
  local length=$((total - offset))
  ((length > limit)) && length=$limit
  printf '%s\0%s\0' "$offset" "$length"
  local at=$offset left=$length index skip take
  while ((left > 0)); do
    index=$((at / segment))
    skip=$((at - index * segment))
    take=$((segment - skip))
    ((take > left)) && take=$left
    fd=${fds[index - first]}
    dd bs=65536 iflag=skip_bytes,count_bytes skip="$skip" count="$take" status=none <&"$fd"
    at=$((at + take))
    left=$((left - take))
  done
  for fd in "${fds[@]}"; do ((fd >= 0)) && exec {fd}<&-; done
}

on_output() {
  local id out_offset err_offset limit
  field id
  field out_offset
  field err_offset
  field limit
  if ! process_exists "$id"; then
    printf 'missing\0'
    return
  fi
  local -a meta
  mapfile -d '' -t meta <"$procs/$id/meta"
  printf 'ok\0'
  emit_process "$id"
  emit_stream "$procs/$id/out" "$out_offset" "$limit" "${meta[5]}"
  emit_stream "$procs/$id/err" "$err_offset" "$limit" "${meta[5]}"
}

on_stdin() {
  local id eof length
  field id
  field eof
  field length
  ((length > 0)) && head -c "$length" >"$state/stdin"
  local dir=$procs/$id
  if ! process_exists "$id"; then
    printf 'missing\0'
  elif [[ -s $dir/status ]]; then
    printf 'ended\0'
  elif [[ -e $dir/eof ]]; then
    printf 'closed\0'
  elif ((length > 0)) && ! timeout 2 dd if="$state/stdin" of="$dir/stdin" bs=65536 status=none; then
    printf 'full\0'
  else
    if [[ $eof == 1 ]]; then
      local pid
      IFS= read -r pid <"$dir/pid"
      kill -USR1 "$pid" 2>/dev/null
      : >"$dir/eof"
    fi
    printf 'ok\0'
    emit_process "$id"
  fi
}

# TERM: the process and everything it started get TERM, and KILL after 5 s if any is left.
on_terminate() {
  local id signal
  field id
  field signal
  if ! process_exists "$id"; then
    printf 'missing\0'
    return
  fi
  local dir=$procs/$id
  if [[ ! -s $dir/status ]]; then
    : >"$dir/killed"
    (
      sweep "$id" "$signal"
      if [[ $signal != KILL ]]; then
        local deadline=$((${EPOCHREALTIME/[.,]/} + 5000000))
        while signal_tagged "$id" 0 && ((${EPOCHREALTIME/[.,]/} < deadline)); do
          read -r -t 0.05 -u "$tick"
        done
        sweep "$id" KILL
      fi
      : >"$dir/gone"
    ) </dev/null >/dev/null 2>&1 {events}>&- &
  fi
  printf 'ok\0'
  emit_process "$id"
}

# --- the loop ---------------------------------------------------------------------------------
# Bytes, not characters: lengths and cuts of output count bytes. Commands get the locale back.
if [[ -v LC_ALL ]]; then saved_lc_all=$LC_ALL; fi
LC_ALL=C
locale_set=1

stored_cwd=''
[[ -f $state/cwd ]] && IFS= read -r -d '' stored_cwd <"$state/cwd"
printf 'matrx-channel\0%s\0%s\0' "$PROTOCOL" "$stored_cwd"

while IFS= read -r -d '' op; do
  case $op in
    P) on_process_start ;;
    L) on_list ;;
    G) on_get ;;
    O) on_output ;;
    I) on_stdin ;;
    T) on_terminate ;;
    N) printf 'ok\0' ;;
    *) fail "unknown request $op" ;;
  esac
done
