# The command channel of a sandbox: one per sandbox and user, started by the orchestrator as
#   docker exec -i --user USER CONTAINER bash -c "<this file>" matrx-channel USER
# and kept for the life of the sandbox. It is not part of the image: the orchestrator sends it,
# and it needs nothing but bash (4.4 or later) and coreutils.
#
# Requests come on stdin, fields ended by a NUL byte; answers go to stdout in the order of the
# requests. Stderr carries events: a command run with `X` ends with an `E` event that holds its
# result. Everything runs as the channel's user, so the container's permissions apply as they do
# to a plain engine exec.
#
# State lives in the sandbox, under /run/matrx (made by the orchestrator, mode 1777):
#   u/<uid>/        this user's channel: x<tag>.* for running commands, cwd, tick
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

# The command's own shell records where it ended (printf FORMAT and a redirection), and with a
# third argument then signals that process (the channel), into the variable `prefix`; a command
# that replaces its shell (exec) or sets its own EXIT trap leaves no record. On the command's first
# line, so line numbers hold.
cwd_trap() {
  local notify=''
  [[ -n ${3-} ]] && notify="; builtin kill -USR1 $3 2>/dev/null"
  printf -v prefix "trap 'builtin printf %s \"\$PWD\" %s%s' EXIT; " "$1" "$2" "$notify"
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

# Without a channel (it could not start), each command is a plain engine exec of this file:
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

readonly PROTOCOL=1
readonly channel_pid=$$
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

# Bytes that may hold NULs travel as a count and the pieces between the NULs.
read_pieces() {
  local -n into=$1
  local count piece i
  field count
  into=()
  for ((i = 0; i < count; i++)); do
    field piece
    into+=("$piece")
  done
}

write_pieces() {
  printf '%s' "$1"
  shift
  (($# == 0)) || printf '\0%s' "$@"
}

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

# --- X: run a command -------------------------------------------------------------------------
# The channel forks the command's bash itself (the one process a command costs) and follows it: a
# command's shell signals the channel (USR1) as it ends, and a ticker signals it every 50 ms while
# commands run, for those that end without a word (exec, a signal) and to read their output files
# as they grow. It keeps up to the cap of each stream (past it, the file is emptied again and
# again, so output cannot fill the disk), and on the command's end writes an event on stderr:
#   E slot exit-code cwd stdout-cut stderr-cut, then each stream as a count and its NUL-split pieces.
# Per running command, keyed by slot: its pid, tag, files, deadline, whether it said it ends and
# whether where it ended is kept from the sandbox (the service's own operations);
# per stream (keyed by out<slot> or err<slot>) the open file, bytes kept, and whether bytes were cut.
declare -A cmd_pid=() cmd_tag=() cmd_files=() cmd_deadline=() cmd_ending=() cmd_keep=()
drained=0
declare -A stream_fd=() stream_kept=() stream_cut=() stream_limit=()
garbage=()

on_exec() {
  local slot tag cwd implicit backstop limit command pieces
  local -a env stdin
  field slot
  field tag
  field cwd
  field implicit
  field backstop
  field limit
  read_env env
  read_pieces stdin
  field command
  local files=$state/x$tag
  local input=/dev/null
  if ((${#stdin[@]} > 0)); then
    input=$files.in
    write_pieces "${stdin[@]}" >"$input"
  fi
  : >"$files.out"
  : >"$files.err"
  : >"$files.cwd"
  ((${#cmd_pid[@]} == 0)) && ticker_mode busy
  if [[ -n $spare_fd ]] && ! needs_fresh_shell "$command"; then
    printf '%s\0' "$files" "$input" "$cwd" "$implicit" "$channel_pid" "${env[@]}" "$command" \
      >"$files.x"
    printf '%s' "$spare_tag" >"$files.alias"
    printf '%s\0' "$files.x" >&"$spare_fd"
    exec {spare_fd}>&-
    spare_fd=''
    cmd_pid[$slot]=$spare_pid
    cmd_tag[$slot]=$spare_tag
  else
    (
      exec {tick}>&- {wake}>&- {events}>&- <"$input" >"$files.out" 2>"$files.err"
      close_private
      enter "$cwd" "$implicit" || exit 1
      umask "$command_umask"
      command_environment "$tag" "${env[@]}"
      cwd_trap %s ">$files.cwd" "$channel_pid"
      exec bash -c "$prefix$command"
    ) &
    cmd_pid[$slot]=$!
    cmd_tag[$slot]=$tag
  fi
  last_exec=${EPOCHREALTIME/[.,]/}
  [[ $implicit == 2 ]] && cmd_keep[$slot]=1
  cmd_files[$slot]=$files
  cmd_deadline[$slot]=$((${EPOCHREALTIME/[.,]/} + backstop * 1000000))
  local stream fd
  for stream in out err; do
    exec {fd}<"$files.$stream"
    stream_fd[$stream$slot]=$fd
    stream_kept[$stream$slot]=0
    stream_cut[$stream$slot]=0
    stream_limit[$stream$slot]=$limit
    declare -g -a "pieces_$stream$slot=('')"
  done
}

# The output files other commands are read from, and the spare's input, are not this command's.
close_private() {
  local fd
  for fd in "${stream_fd[@]}"; do [[ -n $fd ]] && exec {fd}<&-; done
  [[ -z $spare_fd ]] || exec {spare_fd}>&-
}

# --- spares ---------------------------------------------------------------------------------------
# A command's shell is started ahead (a spare): the fork and `exec` of a bash are the cost of a
# command, and a spare takes them off its way. The spare waits on a pipe for the path of a file
# that holds the command (files, stdin, cwd, implicit, the channel's pid, env entries, command),
# then does what the forked path does (streams, cwd, env, the EXIT trap on the command's line) and
# runs the command with `eval` on its first line, so line numbers and messages are those of
# `bash -c`; a command bash cannot parse takes a plain `bash -c` itself, for its exact message
# (and, as its first line never runs, no record of its cwd: the ticker sees its end). Its tag
# was set when it started: the command's own tag names it in `x<tag>.alias`. bash 5.1 or later
# (it waits for any process substitution); older ones fork every command.
spare_fd='' spare_pid='' spare_tag='' spare_count=0 last_exec=0
spares=0
((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) && spares=1
# One line: the line numbers of the command are counted from it.
printf -v spare_boot '%s' \
  'IFS= read -r -d "" __m_f || exit 0; mapfile -d "" -t __m_a <"$__m_f"; ' \
  'exec <"${__m_a[1]}" >"${__m_a[0]}.out" 2>"${__m_a[0]}.err"; __m_c=${__m_a[-1]}; ' \
  'if ! cd -- "${__m_a[2]}" 2>/dev/null; then if [[ ${__m_a[3]} != 0 ]]; then ' \
  "cd -- $fallback_cwd 2>/dev/null || cd /; else __m_w='Permission denied'; " \
  "if [[ ! -e \${__m_a[2]} ]]; then __m_w='No such file or directory'; " \
  "elif [[ ! -d \${__m_a[2]} ]]; then __m_w='Not a directory'; fi; " \
  "printf 'bash: cd: %s: %s\\n' \"\${__m_a[2]}\" \"\$__m_w\" >&2; exit 1; fi; fi; " \
  'unset OLDPWD; export OLDPWD; for __m_e in "${__m_a[@]:5:${#__m_a[@]}-6}"; do export "$__m_e"; done; ' \
  "printf -v __m_t \"trap 'builtin printf %%s \\\"\\\$PWD\\\" >%s.cwd; builtin kill -USR1 %s 2>/dev/null' EXIT; \" " \
  '"${__m_a[0]}" "${__m_a[4]}"; ' \
  'if ! eval $'"'"'__m_p() {\n'"'"'"$__m_c"$'"'"'\n}'"'"' 2>/dev/null; then exec bash -c "$__m_c"; fi; ' \
  'unset -f __m_p; eval "unset -v __m_f __m_a __m_c __m_w __m_e __m_t; $__m_t$__m_c"'
readonly spare_boot

make_spare() {
  ((spares)) && [[ -z $spare_fd ]] || return 0
  spare_count=$((spare_count + 1))
  spare_tag=s$channel_pid.$spare_count
  exec {spare_fd}> >(
    exec {tick}>&- {wake}>&- {events}>&- >/dev/null 2>/dev/null
    close_private
    umask "$command_umask"
    command_environment "$spare_tag"
    # Made from a signal's trap in the middle of `IFS= read`, whose IFS is exported meanwhile; the
    # new bash sets its own.
    unset IFS
    exec bash -c "$spare_boot" bash
  )
  spare_pid=$!
}

# Commands that look at how their shell was started, or trace it, get a fresh `bash -c`: in a
# spare they would see its start (the execution string, /proc) and one more level of trace.
needs_fresh_shell() {
  [[ $1 == *BASH_EXECUTION_STRING* || $1 == *xtrace* || $1 == */proc/* || $1 == *BASH_COMMAND* ||
    $1 == *PS4* || $1 == *SHELLOPTS* || $1 == *BASH_XTRACEFD* ||
    $1 =~ (^|[^[:alnum:]_])set[[:space:]]+[-+][[:alpha:]]*x ]]
}

# Reads what a stream's file gained since the last look: NUL-split pieces, the last one open.
drain() {
  local key=$1 fd=${stream_fd[$1]} piece status room
  if [[ -z $fd ]]; then
    # Cut: what comes now is never read, and never kept.
    : >"${cmd_files[${key:3}]}.${key:0:3}"
    return
  fi
  local -n pieces=pieces_$key
  while :; do
    IFS= read -r -d '' -u "$fd" piece
    status=$?
    ((status != 0)) && [[ -z $piece ]] && return
    room=$((stream_limit[$key] - stream_kept[$key]))
    if ((${#piece} + (status == 0 ? 1 : 0) > room)); then
      pieces[-1]+=${piece:0:room}
      stream_kept[$key]=${stream_limit[$key]}
      stream_cut[$key]=1
      exec {fd}<&-
      stream_fd[$key]=''
      return
    fi
    pieces[-1]+=$piece
    stream_kept[$key]=$((stream_kept[$key] + ${#piece}))
    ((status != 0)) && return
    pieces+=('')
    stream_kept[$key]=$((stream_kept[$key] + 1))
  done
}

# Follows the running commands: ends reported, deadlines (the backstop) enforced, and now and then
# their output read (what a cut stream writes is thrown away there).
follow() {
  local slot now=${EPOCHREALTIME/[.,]/} read_output=0
  if ((now - drained > 30000)); then
    read_output=1
    drained=$now
  fi
  for slot in "${!cmd_pid[@]}"; do
    if ! kill -0 "${cmd_pid[$slot]}" 2>/dev/null || ends "$slot"; then
      finish "$slot"
      continue
    fi
    if ((read_output)); then
      drain "out$slot"
      drain "err$slot"
    fi
    if ((now > cmd_deadline[$slot])); then
      cmd_deadline[$slot]=$((now + 1000000))
      sweep "${cmd_tag[$slot]}" KILL </dev/null >/dev/null 2>&1 {events}>&- &
    fi
  done
  ((${#cmd_pid[@]} > 0)) || ticker_mode idle
}

# True once a command that wrote where it ended (its last act) is gone, which takes moments. The
# file is the user's to write, so the wait is short and made once; the ticker sees the rest.
ends() {
  local slot=$1 i
  [[ -z ${cmd_ending[$slot]-} && -s ${cmd_files[$slot]}.cwd ]] || return 1
  cmd_ending[$slot]=1
  for ((i = 0; i < 20; i++)); do
    kill -0 "${cmd_pid[$slot]}" 2>/dev/null || return 0
    read -r -t 0.001 -u "$tick"
  done
  return 1
}

finish() {
  local slot=$1 rc reaped ended_in='' stream
  # A signal (USR1) interrupts `wait` with a status over 128; the status of a reaped child stays
  # with bash until it is asked again.
  while :; do
    wait "${cmd_pid[$slot]}" 2>/dev/null
    rc=$?
    kill -0 "${cmd_pid[$slot]}" 2>/dev/null || break
  done
  if ((rc > 128)); then
    wait "${cmd_pid[$slot]}" 2>/dev/null
    reaped=$?
    ((reaped != 127)) && rc=$reaped
  fi
  drain "out$slot"
  drain "err$slot"
  [[ -n ${cmd_keep[$slot]-} ]] || IFS= read -r -d '' ended_in <"${cmd_files[$slot]}.cwd"
  [[ -n $ended_in ]] && printf '%s\0' "$ended_in" >"$state/cwd"
  printf 'E\0%s\0%s\0%s\0%s\0%s\0' "$slot" "$rc" "$ended_in" "${stream_cut[out$slot]}" \
    "${stream_cut[err$slot]}" >&"$events"
  for stream in out err; do
    local -n pieces=pieces_$stream$slot
    printf '%s\0' "${#pieces[@]}" "${pieces[@]}" >&"$events"
    unset -n pieces
    unset "pieces_$stream$slot"
    local fd=${stream_fd[$stream$slot]}
    [[ -n $fd ]] && exec {fd}<&-
    unset "stream_fd[$stream$slot]" "stream_kept[$stream$slot]" "stream_cut[$stream$slot]" \
      "stream_limit[$stream$slot]"
  done
  garbage+=("${cmd_files[$slot]}".*)
  unset "cmd_pid[$slot]" "cmd_tag[$slot]" "cmd_files[$slot]" "cmd_deadline[$slot]" \
    "cmd_ending[$slot]" "cmd_keep[$slot]"
  # One process removes the files of many commands.
  if ((${#garbage[@]} >= 64)); then
    rm -f -- "${garbage[@]}" </dev/null >/dev/null 2>&1 {events}>&- &
    garbage=()
  fi
}

# The ticker: a process of its own (`matrx-ticker` in a process list) that signals the channel
# (pid $1) every 50 ms while it is told `busy`, and waits without a sound while `idle`. It ends
# with the channel (its input closes).
ticker() {
  local channel_pid=$1 mode=idle line status
  while :; do
    if [[ $mode == busy ]]; then
      IFS= read -r -t 0.05 line
    else
      IFS= read -r line
    fi
    status=$?
    if ((status == 0)); then
      [[ $line == busy || $line == idle ]] && mode=$line
    elif ((status <= 128)); then
      return
    fi
    [[ $mode == idle ]] || kill -USR1 "$channel_pid" 2>/dev/null || return
  done
}

ticker_mode() {
  [[ $1 == "$ticking" ]] && return
  ticking=$1
  # A ticker killed from inside the sandbox would make this write a SIGPIPE, fatal to the channel.
  kill -0 "$ticker_pid" 2>/dev/null && printf '%s\n' "$1" >&"$wake"
}

# --- K: kill a running command's tree ------------------------------------------------------------

on_kill() {
  local tag signal
  field tag
  field signal
  [[ -f $state/x$tag.alias ]] && IFS= read -r tag <"$state/x$tag.alias"
  sweep "$tag" "$signal" </dev/null >/dev/null 2>&1 {events}>&- &
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
    close_private
    run_process
  ) </dev/null >/dev/null 2>&1 {wake}>&- {events}>&- &
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

# A signal (USR1) says a command ended or a tick passed. Its trap runs as soon as it comes, even in
# the middle of reading a request; while the loop handles one (`quiet`), the trap only notes it.
quiet=0 woke=0
on_wake() {
  if ((quiet)); then
    woke=1
    return
  fi
  quiet=1
  woke=1
  while ((woke)); do
    woke=0
    follow
  done
  # Not while a command just sent may be about to end: its answer would wait for the fork.
  if [[ -z $spare_fd ]] && ((${#cmd_pid[@]} == 0 || ${EPOCHREALTIME/[.,]/} - last_exec > 20000)); then
    make_spare
  fi
  quiet=0
}
trap on_wake USR1
exec {wake}> >(exec bash -c "$(declare -f ticker); ticker \"\$1\"" matrx-ticker "$channel_pid" \
  >/dev/null 2>&1 {events}>&- {tick}>&-)
ticker_pid=$!
ticking=idle
make_spare

while IFS= read -r -d '' op; do
  quiet=1
  case $op in
    X) on_exec ;;
    K) on_kill ;;
    P) on_process_start ;;
    L) on_list ;;
    G) on_get ;;
    O) on_output ;;
    I) on_stdin ;;
    T) on_terminate ;;
    N) printf 'ok\0' ;;
    *) fail "unknown request $op" ;;
  esac
  quiet=0
  on_wake
done

# The orchestrator is gone: nothing it started waits for an answer no one reads.
for slot in "${!cmd_tag[@]}"; do sweep "${cmd_tag[$slot]}" KILL; done
