/* aep.host: facts about the running host and small OS primitives that plain Lua lacks:
 * the executable's path, versions, files embedded at build time, clocks, sleep, signals to
 * child processes, file modes, a SIGTERM trap for commands that must stop cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "aep.h"
#include "embed.h"

/* host.executable() -> absolute path of the running aep binary */
static int host_executable(lua_State *L) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return aep_fail(L, strerror(errno), "OS");
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* host.versions() -> {aep=, lua=, curl=, openssl=}; libcurl's and OpenSSL's are what the
 * plugins aep.http and aep.crypto run on (loading them; their error when they cannot load). */
static int host_versions(lua_State *L) {
  char err[1024];
  const char *curl = aep_curl_version(err, sizeof err);
  if (!curl) return luaL_error(L, "%s", err);
  const char *openssl = aep_openssl_version(err, sizeof err);
  if (!openssl) return luaL_error(L, "%s", err);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, AEP_VERSION);
  lua_setfield(L, -2, "aep");
  lua_pushstring(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_pushstring(L, curl);
  lua_setfield(L, -2, "curl");
  lua_pushstring(L, openssl);
  lua_setfield(L, -2, "openssl");
  return 1;
}

/* host.embedded(path) -> contents | nil  (path relative to the source root, e.g. "data/x.json") */
static int host_embedded(lua_State *L) {
  const aep_embedded_file *f = aep_embedded_find(luaL_checkstring(L, 1));
  if (!f) return 0;
  lua_pushlstring(L, (const char *)f->data, f->size);
  return 1;
}

/* host.embedded_list([prefix]) -> sorted array of embedded paths starting with prefix */
static int host_embedded_list(lua_State *L) {
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 1, "", &plen);
  lua_newtable(L);
  lua_Integer n = 0;
  for (const aep_embedded_file *f = aep_embedded_files; f->path; f++) {
    if (strncmp(f->path, prefix, plen) == 0) {
      lua_pushstring(L, f->path);
      lua_rawseti(L, -2, ++n);
    }
  }
  return 1;
}

/* host.isatty(fd) -> boolean */
static int host_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* host.now() -> wall-clock seconds since the epoch, with sub-second precision */
static int host_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* host.monotonic() -> seconds on a clock that never jumps */
static int host_monotonic(lua_State *L) {
  lua_pushnumber(L, aep_monotonic());
  return 1;
}

/* host.sleep(seconds): returns early (false) when Ctrl-C arrives */
static int host_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (!(s > 0)) s = 0;       /* negative or NaN */
  if (s > 1e9) s = 1e9;      /* ~31 years; converting more (or NaN) to time_t was undefined */
  struct timespec req = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  struct timespec rem;
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) {
    if (aep_interrupted) {
      lua_pushboolean(L, 0);
      return 1;
    }
    req = rem;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* host.getpid() -> pid */
static int host_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static const struct {
  const char *name;
  int sig;
} signals[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP},
               {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"0", 0}, {NULL, 0}};

/* host.kill(pid, "TERM"|"KILL"|"INT"|"HUP"|"STOP"|"CONT"|"0") -> true | nil, msg, code */
static int host_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  const char *name = luaL_optstring(L, 2, "TERM");
  int i;
  for (i = 0; signals[i].name; i++)
    if (strcmp(signals[i].name, name) == 0) break;
  if (!signals[i].name) return luaL_argerror(L, 2, "unknown signal name");
  if (pid <= 0) return luaL_argerror(L, 1, "pid must be positive");
  if (kill(pid, signals[i].sig) != 0) return aep_fail(L, strerror(errno), errno == ESRCH ? "NO_PROCESS" : "OS");
  lua_pushboolean(L, 1);
  return 1;
}

/* host.chmod(path, mode) -> true | nil, msg, code   (mode as a number, e.g. tonumber("600", 8)) */
static int host_chmod(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (chmod(path, (mode_t)luaL_checkinteger(L, 2)) != 0) return aep_fail(L, strerror(errno), "OS");
  lua_pushboolean(L, 1);
  return 1;
}

/* host.stat(path) -> {mode=, size=, mtime=, type="file"|"directory"|"other"} | nil, msg, code */
static int host_stat(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0)
    return aep_fail(L, strerror(errno), errno == ENOENT ? "NOT_FOUND" : "OS");
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
  lua_setfield(L, -2, "type");
  return 1;
}

/* host.mkdir(path [, mode=0700]) -> true | nil, msg, code  (an existing directory is fine) */
static int host_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = (mode_t)luaL_optinteger(L, 2, 0700);
  if (mkdir(path, mode) != 0 && errno != EEXIST) return aep_fail(L, strerror(errno), "OS");
  lua_pushboolean(L, 1);
  return 1;
}

/* host.write_file(path, data [, mode=0644]) -> true | nil, msg, code
 * Writes to path.tmp, fsyncs and renames over path: readers see the old or the new file, never a
 * torn one, and the data survives a crash once this returns. New files get mode (0600 for
 * anything holding credentials). */
static int host_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  mode_t mode = (mode_t)luaL_optinteger(L, 3, 0644);
  const char *tmp = lua_pushfstring(L, "%s.tmp", path);
  /* A fresh file, never one that is there already: a path.tmp planted in a shared directory (a
   * symlink, or someone else's file) must not receive the data. A stale one of ours goes first. */
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return aep_fail(L, strerror(errno), "OS");
  fchmod(fd, mode);
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return aep_fail(L, strerror(e), "OS");
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp);
    return aep_fail(L, strerror(errno), "OS");
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return aep_fail(L, strerror(e), "OS");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* host.fsync(file) -> true | nil, msg, code : flush a Lua file handle to disk */
static int host_fsync(lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (s->closef == NULL) return luaL_argerror(L, 1, "file is closed");
  if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0) return aep_fail(L, strerror(errno), "OS");
  lua_pushboolean(L, 1);
  return 1;
}

/* The process-wide SIGTERM trap (declared in aep.h: native modules poll it). */
volatile sig_atomic_t aep_term_requested = 0;
/* Whether the trapped SIGTERM also interrupts blocking waits, as Ctrl-C does. */
static volatile sig_atomic_t term_interrupts = 1;

static void on_term(int sig) {
  aep_term_requested = 1;
  if (term_interrupts) aep_interrupted = 1; /* blocking waits (HTTP, sleep) return as for Ctrl-C */
  signal(sig, SIG_DFL);                     /* a second SIGTERM terminates as usual */
}

/* host.trap_term(["interrupt" | "drain"]): from now on the first SIGTERM does not kill the
 * process; it sets the flag read by host.term_requested(), so that a command can stop, settle
 * what is in flight and write its report (what service managers expect). "interrupt" (the
 * default) also interrupts blocking waits as Ctrl-C does; "drain" does not (HTTP answers still
 * arrive), it only makes kafka's poll_batch return early, so a consumer can drain, commit and
 * leave its group. A second SIGTERM terminates as usual. */
static int host_trap_term(lua_State *L) {
  static const char *const modes[] = {"interrupt", "drain", NULL};
  int drain = luaL_checkoption(L, 1, "interrupt", modes) == 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  term_interrupts = !drain;
  aep_term_requested = 0;
  sigaction(SIGTERM, &sa, NULL);
  return 0;
}

/* host.term_requested() -> boolean (a SIGTERM arrived since host.trap_term()) */
static int host_term_requested(lua_State *L) {
  lua_pushboolean(L, aep_term_requested);
  return 1;
}

static const luaL_Reg host_funcs[] = {
    {"trap_term", host_trap_term},   {"term_requested", host_term_requested},
    {"executable", host_executable}, {"versions", host_versions},
    {"embedded", host_embedded},     {"embedded_list", host_embedded_list},
    {"isatty", host_isatty},         {"now", host_now},
    {"monotonic", host_monotonic},   {"sleep", host_sleep},
    {"getpid", host_getpid},         {"kill", host_kill},
    {"chmod", host_chmod},           {"stat", host_stat},
    {"mkdir", host_mkdir},           {"write_file", host_write_file},
    {"fsync", host_fsync},           {NULL, NULL}};

int luaopen_aep_host(lua_State *L) {
  luaL_newlib(L, host_funcs);
  return 1;
}
