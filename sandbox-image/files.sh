# The file operations of the Files API, run as the requesting user through that user's command
# channel (a command like any other), so the kernel checks every permission as it would for the
# user's own shell. The orchestrator sends this file with each operation, followed by
#   matrx_files OP ARGS...
# It answers on stdout, fields ended by NUL: a status (ok, missing, denied, isdir, notdir, exists,
# notempty, other, invalid), then the operation's fields. A small file's bytes pass through here
# as base64 (put and get: one command instead of an engine archive call, which costs the engine a
# mount of the container's file system); larger ones come in through the user's compiled channel
# (or the engine's putArchive) and go out with the engine's getArchive, through the user's own
# staging folder /run/matrx/f/<uid>/ (its parent is root's, 0711, so no one else can reach or
# replace it).
set -u
export LC_ALL=C
umask 022

answer() { printf '%s\0' "$@"; }

# Why PATH cannot be reached: the first ancestor that exists says whether it is missing or hidden.
unreachable() {
  local dir=${1%/*}
  while [[ -n $dir && ! -e $dir ]]; do dir=${dir%/*}; done
  if [[ -n $dir && ! -x $dir ]]; then answer denied; else answer missing; fi
}

# A failed tool's message, as a status.
classify() {
  case $1 in
    *'Permission denied'* | *'Operation not permitted'* | *'Read-only file system'*) answer denied ;;
    *'No such file'*) answer missing ;;
    *'Directory not empty'*) answer notempty ;;
    *'Is a directory'*) answer isdir ;;
    *'Not a directory'* | *'File exists'*) answer notdir ;;
    *) answer other "$1" ;;
  esac
}

# Runs a tool; on failure answers its status and returns 1.
run() {
  local err
  if ! err=$("$@" 2>&1 >/dev/null); then
    classify "$err"
    return 1
  fi
}

# type, size, mode, mtime (seconds), symlink target, path; symlinks are not followed.
ENTRY_FORMAT='%y\0%s\0%m\0%T@\0%l\0%p\0'

entry() { find "$1" -maxdepth 0 -printf "$ENTRY_FORMAT"; }

# Makes the parents of PATH (as the user), answering why not when they cannot be.
parents() {
  local parent=${1%/*}
  [[ -z $parent || -d $parent ]] && return 0
  run mkdir -p -- "$parent"
}

op_stat() {
  [[ -e $1 || -L $1 ]] || { unreachable "$1"; return; }
  answer ok
  entry "$1"
}

op_list() {
  local path=$1 depth=$2
  [[ -e $path ]] || { unreachable "$path"; return; }
  [[ -d $path ]] || { answer notdir; return; }
  [[ -r $path && -x $path ]] || { answer denied; return; }
  answer ok
  find "$path" -mindepth 1 -maxdepth "$depth" -printf "$ENTRY_FORMAT" 2>/dev/null
}

# Whether PATH is a regular file the user can read; answers why not and fails otherwise.
readable_file() {
  [[ -e $1 ]] || { unreachable "$1"; return 1; }
  [[ -d $1 ]] && { answer isdir; return 1; }
  [[ -r $1 ]] || { answer denied; return 1; }
  [[ -f $1 ]] || { answer other 'Not a regular file'; return 1; }
  return 0
}

# A regular file the user can read: its real path, for the engine to read it from.
op_check_read() {
  readable_file "$1" || return
  answer ok "$(realpath -e -- "$1")"
}

# Makes the parents of TARGET and checks that the user may put a file there, as a shell's `>`
# needs (its folder writable and searchable, an existing file writable); sets the caller's
# `parent`. Answers why not and fails otherwise.
writable_target() {
  parents "$1" || return
  parent=${1%/*}
  parent=${parent:-/}
  [[ -d $1 ]] && { answer isdir; return 1; }
  [[ -w $parent && -x $parent ]] || { answer denied; return 1; }
  [[ -e $1 && ! -w $1 ]] && { answer denied; return 1; }
  return 0
}

# Moves a staged file into place with one rename, so a reader sees the old or the new file; the
# staged file goes on any failure, and the old file stays.
op_commit() {
  local stage=$1 target=$2 mode=$3 parent
  staged=$stage
  writable_target "$target" || return
  local devices
  devices=$(stat -c %d -- "$stage" "$parent") || { answer other 'stat failed'; return; }
  if [[ ${devices%$'\n'*} == "${devices#*$'\n'}" ]]; then
    # The old file's pages are freed as its last name goes, tens of milliseconds for a large
    # one: a second name keeps it until after the answer, and a process of its own removes it.
    local old="$stage.old"
    [[ -f $target && ! -L $target ]] && ln -- "$target" "$old" 2>/dev/null || old=
    run mv -T -f -- "$stage" "$target" || { [[ -n $old ]] && rm -f -- "$old"; return; }
    [[ -n $old ]] && { rm -f -- "$old" </dev/null >/dev/null 2>&1 & }
  else
    # Another file system: a copy beside the target first, still one rename into place.
    local copy="$parent/.${target##*/}.matrx-${stage##*/}"
    if ! run cp -T -- "$stage" "$copy" || ! run chmod "$mode" -- "$copy"; then
      rm -f -- "$copy"
      return
    fi
    run mv -T -f -- "$copy" "$target" || { rm -f -- "$copy"; return; }
  fi
  answer ok
  entry "$target"
}

# A small file, as base64 on stdin: written beside the target (the same file system), then put
# in place with one rename, so a reader sees the old or the new file; on any failure the old file
# stays and the new bytes go.
op_put() {
  local target=$1 mode=$2 parent
  writable_target "$target" || return
  staged="$parent/.${target##*/}.matrx-$$-$RANDOM"
  if ! base64 -d >"$staged"; then
    answer other 'The file could not be written (is the disk full?)'
    return
  fi
  if [[ $mode != 644 ]]; then run chmod "$mode" -- "$staged" || return; fi
  run mv -T -f -- "$staged" "$target" || return
  answer ok
  entry "$target"
}

# A regular file the user can read: up to LIMIT bytes as base64 (ok), or a longer one's real path
# (large), for the engine to read it from.
op_get() {
  local path=$1 limit=$2 size
  readable_file "$path" || return
  size=$(stat -L -c %s -- "$path") || { answer other 'stat failed'; return; }
  if ((size > limit)); then
    answer large "$(realpath -e -- "$path")"
    return
  fi
  answer ok
  # One byte more than the bound: a file that grew meanwhile is seen as large.
  head -c "$((limit + 1))" -- "$path" | base64 -w 0
}

op_mkdir() {
  local path=$1
  if [[ ! -d $path ]]; then
    [[ -e $path ]] && { answer notdir; return; }
    run mkdir -p -- "$path" || return
  fi
  answer ok
  entry "$path"
}

op_delete() {
  local path=$1 recursive=$2
  [[ -e $path || -L $path ]] || { unreachable "$path"; return; }
  if [[ -d $path && ! -L $path ]]; then
    if [[ $recursive == 1 ]]; then run rm -rf -- "$path" || return; else run rmdir -- "$path" || return; fi
  else
    run rm -f -- "$path" || return
  fi
  answer ok
}

op_move() {
  local from=$1 to=$2 overwrite=$3
  [[ -e $from || -L $from ]] || { unreachable "$from"; return; }
  if [[ -e $to || -L $to ]]; then
    [[ $overwrite == 1 ]] || { answer exists; return; }
  fi
  parents "$to" || return
  run mv -T -f -- "$from" "$to" || return
  answer ok
  entry "$to"
}

# The directory's tree as the user reads it, into a tar file in the user's staging folder.
op_pack() {
  local path=$1 out=$2
  [[ -e $path ]] || { unreachable "$path"; return; }
  [[ -d $path ]] || { answer notdir; return; }
  [[ -r $path && -x $path ]] || { answer denied; return; }
  if ! run tar -C "$path" -cf "$out" .; then
    rm -f -- "$out"
    return
  fi
  answer ok
}

op_unpack() {
  local stage=$1 path=$2
  staged=$stage
  if [[ ! -d $path ]]; then
    [[ -e $path ]] && { answer notdir; return; }
    run mkdir -p -- "$path" || return
  fi
  [[ -w $path && -x $path ]] || { answer denied; return; }
  run tar -C "$path" -xf "$stage" --no-same-owner || return
  answer ok
}

op_remove() { rm -f -- "$@"; }

# Matches as path NUL line:text lines, the files in byte order of their paths and the lines in
# order, at most MAX+1 of them: ripgrep where the image has it, grep otherwise. Both get the same
# files (find's, sorted), both match PCRE on bytes and read binary files as text, so the two answer
# the same.
op_search() {
  local root=$1 glob=$2 ignore_case=$3 max=$4 pattern=$5
  [[ -e $root ]] || { unreachable "$root"; return; }
  [[ -r $root ]] || { answer denied; return; }
  local problem
  problem=$(grep -P -e "$pattern" </dev/null 2>&1)
  (($? == 2)) && { answer invalid "${problem#grep: }"; return; }
  local -a select=() flags=()
  if [[ -n $glob ]]; then
    if [[ $glob == */* ]]; then select=(-path "${root%/}/$glob"); else select=(-name "$glob"); fi
  fi
  [[ $ignore_case == 1 ]] && flags=(-i)
  local -a search=(grep -P -a -Z -n -H "${flags[@]}" -e "$pattern" --)
  local engine=grep
  # MATRX_SEARCH_ENGINE=grep (in the sandbox's env) takes the fallback where rg is there too.
  if [[ ${MATRX_SEARCH_ENGINE-} != grep ]] && type -P rg >/dev/null; then
    engine=rg
    search=(rg -P --no-unicode -a -j1 --no-config --null -n -H --no-heading --color never
      "${flags[@]}" -e "$pattern" --)
  fi
  answer ok "$engine"
  find "$root" -type f "${select[@]}" -print0 2>/dev/null | sort -z |
    xargs -0 -r "${search[@]}" 2>/dev/null | head -n "$((max + 1))"
}

# The command's EXIT trap is the channel's (it tells the channel the command ended), so a staged
# file is removed here, after the operation, whatever its outcome (a command killed on its timeout
# leaves it in the user's staging folder, which only the user and root can read).
matrx_files() {
  local op=$1 staged=''
  shift
  "op_$op" "$@"
  local status=$?
  [[ -n $staged && -e $staged ]] && rm -f -- "$staged"
  return $status
}
