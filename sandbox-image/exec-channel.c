/*
 * The compiled command channel of a sandbox: one per sandbox and user, started by the orchestrator
 * as `docker exec -i --user USER CONTAINER /run/matrx/bin/matrx-channel USER` and kept for the life
 * of the sandbox. The orchestrator builds it (a static binary, so any image with bash runs it) and
 * puts it into the container itself; sandbox-image/channel.sh does the same work in bash where it
 * cannot (it also serves background processes).
 *
 * It speaks the requests of channel.sh that run commands: on stdin, fields ended by a NUL byte,
 *   X slot tag cwd implicit backstop limit env-count (name value)... stdin-count piece... command
 *   K tag signal      (kills the tree of a command: every process whose environment holds its tag)
 *   N                 (answers `ok`)
 *   E                 (kills every process of the user but this one: the sandbox is ending)
 *   O R D C M         (files opened, written, closed and put in place for the orchestrator; see
 *                      their section)
 * and answers on stdout; a command's end is an event on stderr:
 *   E slot exit-code cwd stdout-cut stderr-cut, then each stream as a count and its NUL-split pieces.
 *
 * A command is `bash -c` as the channel's user, forked by this process, its output read from pipes
 * (the first `limit` bytes of each stream kept, the rest read and dropped, so output never blocks a
 * command nor fills a disk). The next command's bash is started ahead (a spare), as in channel.sh.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL "3"
#define FALLBACK_CWD "/home/agent"
#define BASE "/run/matrx"
/* A spare is made once no command runs, or this long after the last one started. */
#define SPARE_DELAY_US 20000LL
#define SWEEP_PASSES 8

/*
 * The spare's script, on one line (the command's line numbers count from it): it waits for a byte
 * on stdin, then reads the command's fields (files, stdin, cwd, implicit, unused, env entries,
 * command) from fd 3, an in-memory file the channel wrote them to (a file, not a pipe: bash reads
 * a pipe a byte at a time), does what the forked path does and runs the command with `eval`, so
 * that line numbers and messages are those of `bash -c`. Its stdout and stderr are the command's
 * pipes.
 */
static const char spare_boot[] =
    "IFS= read -r -n 1 __m_f || exit 0; mapfile -d \"\" -t -u 3 __m_a; "
    "exec <\"${__m_a[1]}\" 3<&-; __m_c=${__m_a[-1]}; "
    "if ! cd -- \"${__m_a[2]}\" 2>/dev/null; then if [[ ${__m_a[3]} != 0 ]]; then "
    "cd -- " FALLBACK_CWD " 2>/dev/null || cd /; else __m_w='Permission denied'; "
    "if [[ ! -e ${__m_a[2]} ]]; then __m_w='No such file or directory'; "
    "elif [[ ! -d ${__m_a[2]} ]]; then __m_w='Not a directory'; fi; "
    "printf 'bash: cd: %s: %s\\n' \"${__m_a[2]}\" \"$__m_w\" >&2; exit 1; fi; fi; "
    "unset OLDPWD; export OLDPWD; for __m_e in \"${__m_a[@]:5:${#__m_a[@]}-6}\"; do export "
    "\"$__m_e\"; done; "
    "printf -v __m_t \"trap 'builtin printf %%s \\\"\\$PWD\\\" >%s.cwd' EXIT; \" \"${__m_a[0]}\"; "
    "if ! eval $'__m_p() {\\n'\"$__m_c\"$'\\n}' 2>/dev/null; then exec bash -c \"$__m_c\"; fi; "
    "unset -f __m_p; eval \"unset -v __m_f __m_a __m_c __m_w __m_e __m_t; $__m_t$__m_c\"";

typedef struct {
  char *data;
  size_t len, cap;
} buffer;

struct stream {
  int fd; /* -1 once it reached its end */
  buffer kept;
  size_t seen;
};

struct command {
  char *slot, *tag, *sweep_tag, *files;
  pid_t pid;
  int status, keep_cwd;
  size_t limit;
  long long deadline;
  struct stream out, err;
};

static struct command **commands;
static size_t command_count;
/* Pipes of ended commands that something they started still holds: read and dropped until closed. */
static int *leftovers;
static size_t leftover_count;

static struct {
  pid_t pid;
  int control, request, out, err;
  char tag[64];
} spare = {0, -1, -1, -1, -1, ""};
static int spares_enabled;
static unsigned spare_serial;
static long long last_exec;

static int events_fd = -1;
static int answers_fd = 1;
/*
 * Pipes the orchestrator may open through /proc (when it runs in the host's process namespace,
 * as root): requests in, answers and events out, without the engine's copying of the exec's
 * stdio in between. Its first bytes on `requests` move the answers and events to them.
 */
static struct {
  int requests[2], answers[2], events[2];
  int taken;
} direct = {{-1, -1}, {-1, -1}, {-1, -1}, 0};
static mode_t command_umask;
static char state[256];
/* What the state's cwd file holds: where the last command that moved it ended. */
static char *stored_cwd;
/* bash's path for spares (whose PATH is the channel's), looked up once rather than at each. */
static char *bash_path;
static buffer input;
static sigset_t blocked;
/* Commands run with a higher OOM score adjustment than the channel's (by COMMAND_OOM_BIAS, a tenth
 * of the memory limit): a static binary maps more pages than a small bash, and without it a fork
 * bomb that fills the memory limit would have the kernel kill the channel first. */
#define COMMAND_OOM_BIAS 100
static char command_oom_score_adj[16];

static void *checked(void *pointer) {
  if (!pointer) _exit(70);
  return pointer;
}

static void append(buffer *b, const void *bytes, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->data = checked(realloc(b->data, b->cap));
  }
  memcpy(b->data + b->len, bytes, n);
  b->len += n;
}

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void write_all(int fd, const void *bytes, size_t n) {
  const char *p = bytes;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Writes each string with its NUL. */
static void fields(int fd, const char *first, ...) {
  buffer b = {0};
  va_list args;
  va_start(args, first);
  for (const char *f = first; f; f = va_arg(args, const char *)) append(&b, f, strlen(f) + 1);
  va_end(args);
  write_all(fd, b.data, b.len);
  free(b.data);
}

static void fail(const char *why) {
  fields(events_fd, "F", why, NULL);
  exit(3);
}

static char *format(const char *pattern, ...) {
  char *out;
  va_list args;
  va_start(args, pattern);
  if (vasprintf(&out, pattern, args) < 0) _exit(70);
  va_end(args);
  return out;
}

/* --- sweeps --------------------------------------------------------------------------------- */

/* Sends SIGNAL (0 only tests) once to every process whose environment holds MATRX_EXEC_ID=TAG,
 * which reaches what left the process group (setsid, nohup). True when it found one. */
static int signal_tagged(const char *tag, int signal) {
  char *wanted = format("MATRX_EXEC_ID=%s", tag);
  size_t wanted_len = strlen(wanted) + 1;
  int found = 0;
  DIR *proc = opendir("/proc");
  struct dirent *entry;
  static char environ_bytes[1 << 16];
  while (proc && (entry = readdir(proc))) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/environ", entry->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, environ_bytes, sizeof environ_bytes);
    close(fd);
    for (ssize_t at = 0; at < n;) {
      size_t left = (size_t)(n - at);
      char *end = memchr(environ_bytes + at, 0, left);
      size_t length = end ? (size_t)(end - (environ_bytes + at)) + 1 : left;
      if (length == wanted_len && memcmp(environ_bytes + at, wanted, wanted_len) == 0) {
        if (kill(atoi(entry->d_name), signal) == 0) found = 1;
        break;
      }
      at += (ssize_t)length;
    }
  }
  if (proc) closedir(proc);
  free(wanted);
  return found;
}

/* Signals the tagged processes again while it finds some, for those forked meanwhile. */
static void sweep(const char *tag, int signal) {
  for (int pass = 0; pass < SWEEP_PASSES && signal_tagged(tag, signal); pass++) {
  }
}

static int signal_named(const char *name) {
  static const struct {
    const char *name;
    int number;
  } known[] = {{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"QUIT", SIGQUIT}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(known[i].name, name) == 0) return known[i].number;
  return SIGKILL;
}

/* --- starting a command ----------------------------------------------------------------------- */

/* In a child: the signals and mask of a plain engine exec, and the command's streams. */
static void child_basics(int in, int out, int err) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (in >= 0 && in != 0) dup2(in, 0);
  if (out != 1) dup2(out, 1);
  if (err != 2) dup2(err, 2);
  umask(command_umask);
  /* A command is its user's like any other process (its exec would make it so anyway; its own
   * /proc entries, oom_score_adj among them, are only its own once it is). Its descriptors are a
   * copy: what is done to them leaves the channel's as they are. */
  prctl(PR_SET_DUMPABLE, 1);
  if (command_oom_score_adj[0]) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd >= 0) {
      write_all(fd, command_oom_score_adj, strlen(command_oom_score_adj));
      close(fd);
    }
  }
}

/* What a command's process sees: the request's env over the channel's, and its tag. */
static void command_environment(const char *tag, char **entries, size_t entry_count) {
  for (size_t i = 0; i + 1 < entry_count * 2; i += 2) setenv(entries[i], entries[i + 1], 1);
  setenv("MATRX_EXEC_ID", tag, 1);
  /* A plain engine exec starts bash at level 1; so does this. */
  setenv("SHLVL", "0", 1);
  unsetenv("OLDPWD");
}

/* Enters the directory a command starts in, as channel.sh's `enter` does. */
static int enter(const char *dir, int implicit) {
  if (chdir(dir) == 0) {
    if (dir[0] == '/') setenv("PWD", dir, 1);
    return 0;
  }
  if (implicit) {
    if (chdir(FALLBACK_CWD) == 0)
      setenv("PWD", FALLBACK_CWD, 1);
    else if (chdir("/") == 0)
      setenv("PWD", "/", 1);
    return 0;
  }
  struct stat info;
  const char *why = "Permission denied";
  if (stat(dir, &info) != 0)
    why = "No such file or directory";
  else if (!S_ISDIR(info.st_mode))
    why = "Not a directory";
  dprintf(2, "bash: cd: %s: %s\n", dir, why);
  return -1;
}

static int output_pipe(int ends[2]) {
  if (pipe2(ends, O_CLOEXEC) != 0) return -1;
  fcntl(ends[0], F_SETFL, O_NONBLOCK);
  return 0;
}

static void close_spare(void) {
  close(spare.control);
  close(spare.request);
  close(spare.out);
  close(spare.err);
  spare.pid = 0;
}

static void make_spare(void) {
  if (!spares_enabled || spare.pid > 0) return;
  int control[2], out[2], err[2];
  /* Out of descriptors is passing: like a failed pipe or fork, tried again later. */
  int request = memfd_create("matrx-request", MFD_CLOEXEC);
  if (request < 0) return;
  if (pipe2(control, O_CLOEXEC) != 0) {
    close(request);
    return;
  }
  if (output_pipe(out) != 0 || output_pipe(err) != 0) {
    close(control[0]);
    close(control[1]);
    close(request);
    return;
  }
  snprintf(spare.tag, sizeof spare.tag, "s%d.%u", (int)getpid(), ++spare_serial);
  pid_t pid = fork();
  if (pid == 0) {
    child_basics(control[0], out[1], err[1]);
    dup2(request, 3);
    command_environment(spare.tag, NULL, 0);
    if (bash_path) execl(bash_path, "bash", "-c", spare_boot, "bash", (char *)NULL);
    execlp("bash", "bash", "-c", spare_boot, "bash", (char *)NULL);
    _exit(127);
  }
  close(control[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(control[1]);
    close(request);
    close(out[0]);
    close(err[0]);
    return;
  }
  spare.pid = pid;
  spare.control = control[1];
  spare.request = request;
  spare.out = out[0];
  spare.err = err[0];
}

/* Commands that look at how their shell was started, or trace it, get a fresh `bash -c`: in a
 * spare they would see its start (the execution string, /proc) and one more level of trace. */
static int needs_fresh_shell(const char *command) {
  static const char *words[] = {"BASH_EXECUTION_STRING", "xtrace", "/proc/", "BASH_COMMAND",
                                "PS4", "SHELLOPTS", "BASH_XTRACEFD"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strstr(command, words[i])) return 1;
  static regex_t set_x;
  static int compiled;
  if (!compiled) {
    regcomp(&set_x, "(^|[^[:alnum:]_])set[[:space:]]+[-+][[:alpha:]]*x", REG_EXTENDED | REG_NOSUB);
    compiled = 1;
  }
  return regexec(&set_x, command, 0, NULL, 0) == 0;
}

static int write_file(const char *path, const void *bytes, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -1;
  write_all(fd, bytes, n);
  close(fd);
  return 0;
}

/* Hands the command to the spare: its fields in the spare's request file, then a byte to go. */
static int run_in_spare(struct command *c, const char *in_path, const char *cwd, const char *implicit,
                        char **env, size_t env_count, const char *command) {
  buffer request = {0};
  const char *head[] = {c->files, in_path, cwd, implicit, "0"};
  for (size_t i = 0; i < 5; i++) append(&request, head[i], strlen(head[i]) + 1);
  for (size_t i = 0; i < env_count; i++) {
    append(&request, env[2 * i], strlen(env[2 * i]));
    append(&request, "=", 1);
    append(&request, env[2 * i + 1], strlen(env[2 * i + 1]) + 1);
  }
  append(&request, command, strlen(command) + 1);
  int ok = pwrite(spare.request, request.data, request.len, 0) == (ssize_t)request.len &&
           write(spare.control, "x", 1) == 1;
  free(request.data);
  if (!ok) {
    kill(spare.pid, SIGKILL);
    close_spare();
    return -1;
  }
  close(spare.control);
  close(spare.request);
  c->pid = spare.pid;
  c->sweep_tag = checked(strdup(spare.tag));
  c->out.fd = spare.out;
  c->err.fd = spare.err;
  spare.pid = 0;
  /* While the spare starts the command: a kill from a later channel finds the spare by it. */
  char *alias_path = format("%s.alias", c->files);
  write_file(alias_path, c->sweep_tag, strlen(c->sweep_tag));
  free(alias_path);
  return 0;
}

static int run_forked(struct command *c, const char *in_path, const char *cwd, int implicit,
                      char **env, size_t env_count, const char *command) {
  int out[2], err[2];
  if (output_pipe(out) != 0) return -1;
  if (output_pipe(err) != 0) {
    close(out[0]);
    close(out[1]);
    return -1;
  }
  char *script = format("trap 'builtin printf %%s \"$PWD\" >%s.cwd' EXIT; %s", c->files, command);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path, O_RDONLY);
    if (in < 0) _exit(126);
    child_basics(in, out[1], err[1]);
    if (in > 2) close(in);
    if (enter(cwd, implicit) != 0) _exit(1);
    command_environment(c->tag, env, env_count);
    execlp("bash", "bash", "-c", script, (char *)NULL);
    dprintf(2, "bash: %s\n", strerror(errno));
    _exit(127);
  }
  free(script);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return -1;
  }
  c->pid = pid;
  c->sweep_tag = checked(strdup(c->tag));
  c->out.fd = out[0];
  c->err.fd = err[0];
  return 0;
}

/* --- reading requests ----------------------------------------------------------------------- */

/* The next NUL-ended field of the request being read, or NULL while it is not all here. */
static char *field(size_t *at, size_t *length) {
  if (*at > input.len) return NULL;
  char *start = input.data + *at;
  char *end = memchr(start, 0, input.len - *at);
  if (!end) return NULL;
  if (length) *length = (size_t)(end - start);
  *at += (size_t)(end - start) + 1;
  return start;
}

static void finish_failed_start(struct command *c, const char *why);

/* X: returns 0 when the request is not all here yet, else how many bytes it took. */
static size_t on_exec(void) {
  size_t at = 2;
  char *slot, *tag, *cwd, *implicit, *backstop, *limit, *count, *command;
  if (!(slot = field(&at, NULL)) || !(tag = field(&at, NULL)) || !(cwd = field(&at, NULL)) ||
      !(implicit = field(&at, NULL)) || !(backstop = field(&at, NULL)) ||
      !(limit = field(&at, NULL)) || !(count = field(&at, NULL)))
    return 0;
  size_t env_count = strtoul(count, NULL, 10);
  char **env = checked(calloc(env_count * 2 + 1, sizeof *env));
  for (size_t i = 0; i < env_count * 2; i++)
    if (!(env[i] = field(&at, NULL))) {
      free(env);
      return 0;
    }
  char *piece_count = field(&at, NULL);
  if (!piece_count) {
    free(env);
    return 0;
  }
  size_t pieces = strtoul(piece_count, NULL, 10);
  size_t stdin_start = at, stdin_length = 0, piece_length;
  for (size_t i = 0; i < pieces; i++) {
    if (!field(&at, &piece_length)) {
      free(env);
      return 0;
    }
    stdin_length += piece_length + (i + 1 < pieces ? 1 : 0);
  }
  if (!(command = field(&at, NULL))) {
    free(env);
    return 0;
  }

  struct command *c = checked(calloc(1, sizeof *c));
  c->slot = checked(strdup(slot));
  c->tag = checked(strdup(tag));
  c->files = format("%s/x%s", state, tag);
  c->keep_cwd = strcmp(implicit, "2") == 0;
  c->limit = strtoul(limit, NULL, 10);
  c->out.fd = c->err.fd = -1;
  c->deadline = now_us() + strtoll(backstop, NULL, 10) * 1000000LL;
  commands = checked(realloc(commands, (command_count + 1) * sizeof *commands));
  commands[command_count++] = c;

  char *in_path = checked(strdup("/dev/null"));
  if (pieces > 0) {
    free(in_path);
    in_path = format("%s.in", c->files);
    if (write_file(in_path, input.data + stdin_start, stdin_length) != 0) {
      finish_failed_start(c, "cannot write the command's stdin");
      free(in_path);
      free(env);
      return at;
    }
  }
  int started = -1;
  if (spare.pid > 0 && !needs_fresh_shell(command))
    started = run_in_spare(c, in_path, cwd, implicit, env, env_count, command);
  if (started != 0)
    started = run_forked(c, in_path, cwd, strcmp(implicit, "0") != 0, env, env_count, command);
  if (started != 0) finish_failed_start(c, strerror(errno));
  last_exec = now_us();
  free(in_path);
  free(env);
  return at;
}

static void sweep_command(const char *tag, int signal) {
  for (size_t i = 0; i < command_count; i++)
    if (strcmp(commands[i]->tag, tag) == 0) {
      sweep(commands[i]->sweep_tag, signal);
      return;
    }
  /* A command of an earlier channel: one a spare ran carries the spare's tag. */
  char *alias_path = format("%s/x%s.alias", state, tag);
  char alias[64] = "";
  int fd = open(alias_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  free(alias_path);
  if (fd >= 0) {
    ssize_t n = read(fd, alias, sizeof alias - 1);
    close(fd);
    alias[n > 0 ? n : 0] = 0;
  }
  sweep(alias[0] ? alias : tag, signal);
}

/* --- files through the channel ---------------------------------------------------------------
 * A large file is opened here, as this user, and its descriptor kept under an id until a close:
 *   O id path mode    opens a new file for writing (never one that exists, nor through a symlink)
 *   R id path         opens a regular file for reading
 * each answering `ok`, the descriptor, its inode and the file's size, or why not. The orchestrator
 * opens that descriptor itself through /proc where it can (root on the host), then closes this
 * side's; elsewhere a written file's bytes come as requests of their own, a piece at a time, so
 * that other requests pass between them:
 *   D id length bytes (no answer: a failure is kept for the close)
 *   C id              closes the file, answering ok or the first failure. */
#define MAX_OPEN_FILES 64
static struct open_file {
  char id[32];
  int fd;
  int failure; /* errno of the first failed write, 0 when none */
} open_files[MAX_OPEN_FILES];
static size_t open_file_count;

static struct open_file *open_file_named(const char *id) {
  for (size_t i = 0; i < open_file_count; i++)
    if (strcmp(open_files[i].id, id) == 0) return &open_files[i];
  return NULL;
}

/* Opens `path` as O or R asks (`mode` is NULL for R) and answers. */
static void open_named_file(const char *id, const char *path, const char *mode) {
  if (open_file_count == MAX_OPEN_FILES || strlen(id) >= sizeof open_files[0].id ||
      open_file_named(id)) {
    fields(answers_fd, "busy", NULL);
    return;
  }
  /* O_NONBLOCK: a FIFO at the path would otherwise hold the channel until a writer came. */
  int fd = mode ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)
                : open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat info;
  const char *why = NULL;
  if (fd < 0 || fstat(fd, &info) != 0)
    why = strerror(errno);
  else if (!S_ISREG(info.st_mode))
    why = "not a regular file";
  else if (mode && fchmod(fd, (mode_t)strtoul(mode, NULL, 8) & 07777) != 0)
    why = strerror(errno);
  if (why) {
    fields(answers_fd, why, NULL);
    if (fd >= 0) close(fd);
    return;
  }
  struct open_file *f = &open_files[open_file_count++];
  snprintf(f->id, sizeof f->id, "%s", id);
  f->fd = fd;
  f->failure = 0;
  char number[24], inode[24], size[24];
  snprintf(number, sizeof number, "%d", fd);
  snprintf(inode, sizeof inode, "%lu", (unsigned long)info.st_ino);
  snprintf(size, sizeof size, "%lld", (long long)info.st_size);
  fields(answers_fd, "ok", number, inode, size, NULL);
}

static size_t on_open_file(int for_writing) {
  size_t at = 2;
  char *id, *path, *mode = NULL;
  if (!(id = field(&at, NULL)) || !(path = field(&at, NULL))) return 0;
  if (for_writing && !(mode = field(&at, NULL))) return 0;
  open_named_file(id, path, mode);
  return at;
}

static size_t on_file_piece(void) {
  size_t at = 2;
  char *id, *length;
  if (!(id = field(&at, NULL)) || !(length = field(&at, NULL))) return 0;
  size_t n = strtoul(length, NULL, 10);
  if (input.len - at < n) return 0;
  struct open_file *f = open_file_named(id);
  if (f && !f->failure) {
    const char *bytes = input.data + at;
    size_t left = n;
    while (left > 0) {
      ssize_t wrote = write(f->fd, bytes, left);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) {
        f->failure = wrote < 0 ? errno : EIO;
        break;
      }
      bytes += wrote;
      left -= (size_t)wrote;
    }
  }
  return at + n;
}

static size_t on_close_file(void) {
  size_t at = 2;
  char *id;
  if (!(id = field(&at, NULL))) return 0;
  struct open_file *f = open_file_named(id);
  if (!f) {
    fields(answers_fd, "unknown", NULL);
    return at;
  }
  int failure = f->failure;
  if (close(f->fd) != 0 && !failure) failure = errno;
  *f = open_files[--open_file_count];
  fields(answers_fd, failure ? strerror(failure) : "ok", NULL);
  return at;
}

/*
 *   M staged target   puts a written file in place with one rename, when nothing needs
 *                     sandbox-image/files.sh's `commit`: the target's folder is there, on the
 *                     staged file's file system, the target is no folder, and the user may put a
 *                     file there as a shell's `>` may. Answers `ok` and the target's entry (the
 *                     fields of files.sh's `entry`), or `script` for the script's commit, which
 *                     also says why not; the staged file is then as it was.
 */
static int may_write(const char *path, int flags) {
  return faccessat(AT_FDCWD, path, W_OK | flags, AT_EACCESS) == 0;
}

static void answer_entry(const char *path, const struct stat *info) {
  char size[24], mode[16], mtime[40];
  snprintf(size, sizeof size, "%lld", (long long)info->st_size);
  snprintf(mode, sizeof mode, "%o", (unsigned)(info->st_mode & 07777));
  snprintf(mtime, sizeof mtime, "%lld.%09ld", (long long)info->st_mtim.tv_sec,
           info->st_mtim.tv_nsec);
  fields(answers_fd, "ok", "f", size, mode, mtime, "", path, NULL);
}

static void move_into_place(const char *staged, const char *target) {
  const char *slash = strrchr(target, '/');
  if (target[0] != '/' || !slash || slash[1] == 0) {
    fields(answers_fd, "script", NULL);
    return;
  }
  char *parent = slash == target ? strdup("/") : strndup(target, (size_t)(slash - target));
  struct stat staged_info, parent_info, target_info;
  int placeable = parent && lstat(staged, &staged_info) == 0 && S_ISREG(staged_info.st_mode) &&
                  stat(parent, &parent_info) == 0 && S_ISDIR(parent_info.st_mode) &&
                  parent_info.st_dev == staged_info.st_dev && may_write(parent, X_OK);
  /* As the script's [[ -d ]] and [[ -w ]]: through a symlink. */
  int exists = placeable && stat(target, &target_info) == 0;
  if (exists && (S_ISDIR(target_info.st_mode) || !may_write(target, 0))) placeable = 0;
  free(parent);
  if (!placeable) {
    fields(answers_fd, "script", NULL);
    return;
  }
  /* The old file's pages are freed as its last name goes, tens of milliseconds for a large one:
   * a second name keeps it until after the answer, and a process of its own removes it. */
  char *old = format("%s.old", staged);
  struct stat old_info;
  int kept = lstat(target, &old_info) == 0 && S_ISREG(old_info.st_mode) && link(target, old) == 0;
  if (rename(staged, target) != 0) {
    if (kept) unlink(old);
    free(old);
    fields(answers_fd, "script", NULL);
    return;
  }
  struct stat placed;
  answer_entry(target, lstat(target, &placed) == 0 ? &placed : &staged_info);
  if (kept) {
    pid_t pid = fork();
    if (pid == 0) _exit(unlink(old) == 0 ? 0 : 1);
    if (pid < 0) unlink(old);
  }
  free(old);
}

static size_t on_move_into_place(void) {
  size_t at = 2;
  char *staged, *target;
  if (!(staged = field(&at, NULL)) || !(target = field(&at, NULL))) return 0;
  move_into_place(staged, target);
  return at;
}

static size_t on_kill(void) {
  size_t at = 2;
  char *tag, *signal_name;
  if (!(tag = field(&at, NULL)) || !(signal_name = field(&at, NULL))) return 0;
  sweep_command(tag, signal_named(signal_name));
  return at;
}

/* Handles every whole request read so far; a partial one waits for the rest. */
static void handle_requests(void) {
  while (input.len >= 2) {
    if (input.data[1] != 0) fail("malformed request");
    size_t took = 0;
    switch (input.data[0]) {
      case 'X':
        took = on_exec();
        break;
      case 'K':
        took = on_kill();
        break;
      case 'O':
        took = on_open_file(1);
        break;
      case 'R':
        took = on_open_file(0);
        break;
      case 'D':
        took = on_file_piece();
        break;
      case 'C':
        took = on_close_file();
        break;
      case 'M':
        took = on_move_into_place();
        break;
      case 'N':
        fields(answers_fd, "ok", NULL);
        took = 2;
        break;
      case 'E':
        /* The sandbox ends: every process of this user but the channel, at once. A fork bomb
         * that fills the memory limit keeps the engine's kill of the init from taking effect. */
        kill(-1, SIGKILL);
        fields(answers_fd, "ok", NULL);
        took = 2;
        break;
      default: {
        char why[64];
        snprintf(why, sizeof why, "unknown request %c", input.data[0]);
        fail(why);
      }
    }
    if (took == 0) return;
    memmove(input.data, input.data + took, input.len - took);
    input.len -= took;
  }
}

/* --- following commands --------------------------------------------------------------------- */

/* Reads what a stream has now: kept up to the limit, the rest dropped. */
static void drain(struct stream *s, size_t limit) {
  char chunk[65536];
  while (s->fd >= 0) {
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: nothing more for now */
    if (n == 0) {
      close(s->fd);
      s->fd = -1;
      return;
    }
    if (s->kept.len < limit) {
      size_t room = limit - s->kept.len;
      append(&s->kept, chunk, (size_t)n < room ? (size_t)n : room);
    }
    s->seen += (size_t)n;
  }
}

static void send_stream(buffer *b, const struct stream *s) {
  size_t pieces = 1;
  for (size_t i = 0; i < s->kept.len; i++)
    if (s->kept.data[i] == 0) pieces++;
  char count[32];
  snprintf(count, sizeof count, "%zu", pieces);
  append(b, count, strlen(count) + 1);
  if (s->kept.len) append(b, s->kept.data, s->kept.len);
  append(b, "", 1);
}

static char *read_small_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return NULL;
  buffer b = {0};
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0 && b.len < 65536) append(&b, chunk, (size_t)n);
  close(fd);
  append(&b, "", 1);
  return b.data;
}

static void remove_files(const char *files) {
  static const char *suffixes[] = {".cwd", ".in", ".alias"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char *path = format("%s%s", files, suffixes[i]);
    unlink(path);
    free(path);
  }
}

static void forget(struct command *c) {
  for (size_t i = 0; i < command_count; i++)
    if (commands[i] == c) {
      commands[i] = commands[--command_count];
      break;
    }
  free(c->slot);
  free(c->tag);
  free(c->sweep_tag);
  free(c->files);
  free(c->out.kept.data);
  free(c->err.kept.data);
  free(c);
}

static void report(struct command *c, int rc, const char *ended_in) {
  char code[16];
  snprintf(code, sizeof code, "%d", rc);
  buffer event = {0};
  const char *head[] = {"E", c->slot, code, ended_in, c->out.seen > c->limit ? "1" : "0",
                        c->err.seen > c->limit ? "1" : "0"};
  for (size_t i = 0; i < 6; i++) append(&event, head[i], strlen(head[i]) + 1);
  send_stream(&event, &c->out);
  send_stream(&event, &c->err);
  write_all(events_fd, event.data, event.len);
  free(event.data);
}

static void finish_failed_start(struct command *c, const char *why) {
  c->err.kept.len = 0;
  append(&c->err.kept, "matrx-channel: ", 15);
  append(&c->err.kept, why, strlen(why));
  c->err.seen = c->err.kept.len;
  report(c, 126, "");
  remove_files(c->files);
  forget(c);
}

static void keep_draining(int fd) {
  if (fd < 0) return;
  leftovers = checked(realloc(leftovers, (leftover_count + 1) * sizeof *leftovers));
  leftovers[leftover_count++] = fd;
}

static void finish(struct command *c) {
  drain(&c->out, c->limit);
  drain(&c->err, c->limit);
  keep_draining(c->out.fd);
  keep_draining(c->err.fd);
  int rc = WIFSIGNALED(c->status) ? 128 + WTERMSIG(c->status) : WEXITSTATUS(c->status);
  char *ended_in = NULL;
  if (!c->keep_cwd) {
    char *cwd_path = format("%s.cwd", c->files);
    ended_in = read_small_file(cwd_path);
    free(cwd_path);
  }
  report(c, rc, ended_in ? ended_in : "");
  /* After the answer: the stored cwd is for the next channel, and rarely moves. */
  if (ended_in && ended_in[0] && strcmp(ended_in, stored_cwd) != 0) {
    char *stored = format("%s/cwd", state);
    if (write_file(stored, ended_in, strlen(ended_in) + 1) == 0) {
      free(stored_cwd);
      stored_cwd = checked(strdup(ended_in));
    }
    free(stored);
  }
  free(ended_in);
  remove_files(c->files);
  forget(c);
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == spare.pid) {
      /* A spare that ended unused (killed from inside, or it cannot run here). */
      close_spare();
      if (WIFEXITED(status) && WEXITSTATUS(status) != 0) spares_enabled = 0;
      continue;
    }
    for (size_t i = 0; i < command_count; i++)
      if (commands[i]->pid == pid) {
        commands[i]->status = status;
        finish(commands[i]);
        break;
      }
  }
}

/* Past its backstop a command's tree is killed, and again every second while it runs. */
static void enforce_deadlines(long long now) {
  for (size_t i = 0; i < command_count; i++)
    if (now > commands[i]->deadline) {
      commands[i]->deadline = now + 1000000;
      sweep(commands[i]->sweep_tag, SIGKILL);
    }
}

/* bash 5.1 or later for spares (it waits for any process substitution), as in channel.sh. */
static int bash_takes_spares(void) {
  pid_t pid = fork();
  if (pid == 0) {
    child_basics(-1, open("/dev/null", O_WRONLY), open("/dev/null", O_WRONLY));
    execlp("bash", "bash", "-c",
           "((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1)))",
           (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) fail("bash is missing");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void find_bash(void) {
  const char *path = getenv("PATH");
  if (!path) return;
  char *dirs = checked(strdup(path)), *rest = dirs, *dir;
  while (!bash_path && (dir = strsep(&rest, ":"))) {
    if (dir[0] != '/') continue;
    char *candidate = format("%s/bash", dir);
    if (access(candidate, X_OK) == 0)
      bash_path = candidate;
    else
      free(candidate);
  }
  free(dirs);
}

static void prepare_state(void) {
  struct stat info;
  if (stat(BASE "/u", &info) != 0 || stat(BASE "/p", &info) != 0) fail(BASE " is missing");
  snprintf(state, sizeof state, BASE "/u/%d", (int)getuid());
  mkdir(state, 0700);
  if (lstat(state, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != getuid()) {
    char why[300];
    snprintf(why, sizeof why, "%s is not this user's", state);
    fail(why);
  }
}

/* Reads requests from `fd` and handles those that are whole; 0 once it has ended. */
static int read_requests(int fd) {
  char chunk[65536];
  ssize_t got = read(fd, chunk, sizeof chunk);
  if (got > 0) {
    append(&input, chunk, (size_t)got);
    handle_requests();
    return 1;
  }
  return got < 0 && (errno == EINTR || errno == EAGAIN);
}

/* The orchestrator opened the direct pipes: answers and events go there, and the ends it holds
 * are closed here, so that either side sees the other's end. */
static void take_direct_pipes(void) {
  direct.taken = 1;
  close(direct.requests[1]);
  close(direct.answers[0]);
  close(direct.events[0]);
  answers_fd = direct.answers[1];
  dup3(direct.events[1], events_fd, O_CLOEXEC);
  close(direct.events[1]);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  /* Stderr carries events; anything else written there goes nowhere. */
  events_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, 2);
  close(null);
  command_umask = umask(077);
  /* No other process of the user may trace this one, or reach its descriptors through /proc: the
   * orchestrator trusts that a descriptor it opens there is the file this process opened. Its
   * commands are traceable again once they exec. */
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGCHLD);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  int children = signalfd(-1, &blocked, SFD_CLOEXEC | SFD_NONBLOCK);
  if (children < 0) fail("signalfd failed");

  char *adj = read_small_file("/proc/self/oom_score_adj");
  if (adj && adj[0]) {
    int biased = atoi(adj) + COMMAND_OOM_BIAS;
    snprintf(command_oom_score_adj, sizeof command_oom_score_adj, "%d", biased > 1000 ? 1000 : biased);
  }
  free(adj);
  prepare_state();
  spares_enabled = bash_takes_spares();
  find_bash();
  char *stored_path = format("%s/cwd", state);
  stored_cwd = read_small_file(stored_path);
  free(stored_path);
  if (!stored_cwd) stored_cwd = checked(strdup(""));
  char offer[128] = "";
  if (pipe2(direct.requests, O_CLOEXEC) == 0 && pipe2(direct.answers, O_CLOEXEC) == 0 &&
      pipe2(direct.events, O_CLOEXEC) == 0) {
    /* An upload's pieces are 1 MiB: a pipe that holds one wakes each side once per piece, not
     * once per 64 KiB (the system's limit may allow less; the default then serves). */
    fcntl(direct.requests[1], F_SETPIPE_SZ, 1 << 20);
    struct stat requests, answers, events;
    fstat(direct.requests[1], &requests);
    fstat(direct.answers[0], &answers);
    fstat(direct.events[0], &events);
    snprintf(offer, sizeof offer, "%d:%lu %d:%lu %d:%lu", direct.requests[1],
             (unsigned long)requests.st_ino, direct.answers[0], (unsigned long)answers.st_ino,
             direct.events[0], (unsigned long)events.st_ino);
  }
  fields(1, "matrx-channel", PROTOCOL, stored_cwd, offer, NULL);
  make_spare();

  struct pollfd *polled = NULL;
  int stdin_open = 1;
  while (stdin_open) {
    size_t capacity = 3 + command_count * 2 + leftover_count;
    polled = checked(realloc(polled, capacity * sizeof *polled));
    size_t n = 0;
    polled[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
    polled[n++] = (struct pollfd){.fd = children, .events = POLLIN};
    polled[n++] = (struct pollfd){.fd = direct.requests[0], .events = POLLIN};
    for (size_t i = 0; i < command_count; i++) {
      polled[n++] = (struct pollfd){.fd = commands[i]->out.fd, .events = POLLIN};
      polled[n++] = (struct pollfd){.fd = commands[i]->err.fd, .events = POLLIN};
    }
    for (size_t i = 0; i < leftover_count; i++)
      polled[n++] = (struct pollfd){.fd = leftovers[i], .events = POLLIN};

    long long now = now_us(), wake = -1;
    for (size_t i = 0; i < command_count; i++)
      if (wake < 0 || commands[i]->deadline < wake) wake = commands[i]->deadline;
    int spare_due = spares_enabled && spare.pid == 0;
    if (spare_due && command_count > 0 && (wake < 0 || last_exec + SPARE_DELAY_US < wake))
      wake = last_exec + SPARE_DELAY_US;
    int timeout = wake < 0 ? -1 : (int)((wake > now ? wake - now : 0) / 1000 + 1);
    /* A spare that could not be made (out of processes or descriptors) is tried again later. */
    if (spare_due && timeout < 0) timeout = 1000;

    if (poll(polled, n, timeout) < 0 && errno != EINTR) fail("poll failed");

    if (polled[0].revents && !read_requests(0)) stdin_open = 0;
    if (polled[2].revents) {
      if (!direct.taken) take_direct_pipes();
      if (!read_requests(direct.requests[0])) stdin_open = 0;
    }
    for (size_t i = 0; i < command_count; i++) {
      drain(&commands[i]->out, commands[i]->limit);
      drain(&commands[i]->err, commands[i]->limit);
    }
    for (size_t i = 0; i < leftover_count;) {
      struct stream left = {.fd = leftovers[i]};
      drain(&left, 0);
      if (left.fd < 0)
        leftovers[i] = leftovers[--leftover_count];
      else
        i++;
    }
    if (polled[1].revents) {
      struct signalfd_siginfo info;
      while (read(children, &info, sizeof info) == sizeof info) {
      }
      reap();
    }
    now = now_us();
    enforce_deadlines(now);
    if (spares_enabled && spare.pid == 0 &&
        (command_count == 0 || now - last_exec > SPARE_DELAY_US))
      make_spare();
  }
  /* The orchestrator is gone: nothing it started waits for an answer no one reads. */
  for (size_t i = 0; i < command_count; i++) sweep(commands[i]->sweep_tag, SIGKILL);
  if (spare.pid > 0) kill(spare.pid, SIGKILL);
  return 0;
}
