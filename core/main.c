/* aep: the host. Creates the Lua state, preloads the native modules, and runs a protected pmain
 * that behaves like the `lua` interpreter (script + arg, -e, -l, -i, -v, -E, stdin) plus
 * `aep COMMAND ...`, dispatched to lua/aep/cmd/<command>.lua by lua/aep/cmd/init.lua. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "aep.h"
#include "embed.h"

volatile sig_atomic_t aep_interrupted = 0;

static const char *progname = "aep";
static lua_State *global_L = NULL;
static int show_traceback = 0;

/* --- SIGINT: as lua.c, a hook raises "interrupted" at the next Lua instruction. ------------- */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  aep_interrupted = 0;
  luaL_error(L, "interrupted");
}

static void laction(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL); /* a second Ctrl-C kills at once */
  aep_interrupted = 1;
  lua_sethook(global_L, lstop, flag, 1);
}

/* Re-arm the SIGINT handler (the REPL calls this after each interrupted line). */
static void arm_sigint(void) { signal(SIGINT, laction); }

static void l_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

static int is_interrupt(const char *msg) {
  size_t n = msg ? strlen(msg) : 0;
  return n >= 11 && strcmp(msg + n - 11, "interrupted") == 0;
}

static int exit_code_for_interrupt = 0;

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    if (is_interrupt(msg)) exit_code_for_interrupt = 1;
    l_message(progname, msg);
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: turn error objects into strings (via __tostring), add a traceback only
 * under --verbose / AEP_DEBUG=1, and strip the "file:line:" prefix of plain errors otherwise so
 * users see a short message. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  }
  if (show_traceback) {
    luaL_traceback(L, L, msg, 1);
  } else {
    lua_pushstring(L, msg);
  }
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  arm_sigint();
  int status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  return status;
}

/* libcurl's and OpenSSL's versions come from the plugins that link them (core/native_plugin.c). */
static void print_version(void) {
  char err[1024];
  printf("aep %s\n%s\n", AEP_VERSION, LUA_RELEASE);
  const char *curl = aep_curl_version(err, sizeof err);
  printf("libcurl %s\n", curl ? curl : err);
  const char *openssl = aep_openssl_version(err, sizeof err);
  printf("%s\n", openssl ? openssl : err);
  fflush(stdout);
}

/* Build the global 'arg' exactly as lua.c does: script at index 0, its arguments 1..n, the
 * interpreter and options at negative indices. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  if (script == argc) script = 0;
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL) {
    modname = globname;
    globname = strrchr(modname, '.') ? strrchr(modname, '.') + 1 : modname;
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return report(L, status);
}

static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  int i;
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

/* Run a Lua function of the dispatcher lua/aep/cmd/init.lua: cmd.<fn>(args...) where args = argv[first..argc-1].
 * Its integer result is the exit status. */
static int call_cli(lua_State *L, const char *fn, char **argv, int first, int argc, int *exit_status) {
  lua_getglobal(L, "require");
  lua_pushstring(L, "aep.cmd");
  int status = docall(L, 1, 1);
  if (status != LUA_OK) return report(L, status);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_createtable(L, argc - first, 0);
  for (int i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  status = docall(L, 1, 1);
  if (status == LUA_OK) {
    *exit_status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
  }
  return report(L, status);
}

/* Is argv word a command (a name with no '/' or '.') rather than a script file? */
static int looks_like_command(const char *w) {
  if (!w[0] || w[0] == '-') return 0;
  if (strchr(w, '/') || strchr(w, '.')) return 0;
  return access(w, F_OK) != 0; /* an existing file of that name is a script, as with lua */
}

#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8
#define has_E 16
#define has_help 32

/* Scan options as lua.c does; returns the flags and sets *first to the script's index. */
static int collectargs(char **argv, int *first) {
  int args = 0;
  int i;
  if (argv[0] == NULL) {
    *first = 0;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    if (strcmp(argv[i], "--verbose") == 0) continue;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return has_help;
    if (strcmp(argv[i], "--version") == 0) {
      args |= has_v;
      continue;
    }
    switch (argv[i][1]) {
      case '-':
        if (argv[i][2] != '\0') return has_error;
        *first = i + 1;
        return args;
      case '\0':
        return args;
      case 'E':
        if (argv[i][2] != '\0') return has_error;
        args |= has_E;
        break;
      case 'i':
        if (argv[i][2] != '\0') return has_error;
        args |= has_i | has_v;
        break;
      case 'v':
      case 'V': /* -V as most tools spell it */
        if (argv[i][2] != '\0') return has_error;
        args |= has_v;
        break;
      case 'e':
        args |= has_e; /* FALLTHROUGH */
      case 'l':
        if (argv[i][2] == '\0') {
          i++;
          if (argv[i] == NULL || argv[i][0] == '-') return has_error;
        }
        break;
      default:
        return has_error;
    }
  }
  *first = i;
  return args;
}

static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    if (option != 'e' && option != 'l') continue;
    const char *extra = argv[i] + 2;
    if (*extra == '\0') extra = argv[++i];
    int status = (option == 'e') ? dostring(L, extra, "=(command line)")
                                 : dolibrary(L, (char *)extra);
    if (status != LUA_OK) return 0;
  }
  return 1;
}

/* AEP_LUA_PATH (';;' = the default path) sets package.path, unless -E. */
static void setup_paths(lua_State *L, int ignore_env) {
  if (ignore_env) return;
  const char *p = getenv("AEP_LUA_PATH");
  if (!p) return;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *def = lua_tostring(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *dd = strstr(p, ";;");
  if (dd) {
    luaL_addlstring(&b, p, (size_t)(dd - p));
    luaL_addchar(&b, ';');
    luaL_addstring(&b, def);
    luaL_addchar(&b, ';');
    luaL_addstring(&b, dd + 2);
  } else {
    luaL_addstring(&b, p);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: %s [options] [script [args]]  |  %s COMMAND [args]\n"
          "Options:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -v, -V    show version information\n"
          "  -E        ignore environment variables (AEP_LUA_PATH, LUA_INIT)\n"
          "  --verbose show tracebacks with errors (also AEP_DEBUG=1)\n"
          "  --version show aep's, Lua's, libcurl's and OpenSSL's versions\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "Run '%s help' for the commands.\n",
          progname, progname, progname);
}

struct main_args {
  int argc;
  char **argv;
  int exit_status;
};

static int pmain(lua_State *L) {
  struct main_args *ma = (struct main_args *)lua_touserdata(L, 1);
  int argc = ma->argc;
  char **argv = ma->argv;
  int script = 0;
  int args = collectargs(argv, &script);
  ma->exit_status = 1;
  luaL_checkversion(L);
  if (args == has_error) {
    l_message(progname, argv[script] ? lua_pushfstring(L, "unrecognized option '%s'", argv[script])
                                     : "option needs an argument");
    usage(stderr);
    return 0;
  }
  if (args == has_help) {
    usage(stdout);
    ma->exit_status = 0;
    return 0;
  }
  if (args & has_E) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  aep_embed_install(L);
  setup_paths(L, args & has_E);
  createargtable(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (args & has_v) print_version();
  if ((args & has_v) && !(args & has_i) && script == argc && !(args & has_e)) {
    ma->exit_status = 0;
    return 0;
  }
  if (!(args & has_E)) {
    const char *init = getenv("LUA_INIT_5_4");
    if (!init) init = getenv("LUA_INIT");
    if (init) {
      int st = (init[0] == '@') ? dochunk(L, luaL_loadfile(L, init + 1)) : dostring(L, init, "=LUA_INIT");
      if (st != LUA_OK) return 0;
    }
  }
  if (!runargs(L, argv, script)) return 0;

  if (script < argc && looks_like_command(argv[script])) {
    int status = call_cli(L, "dispatch", argv, script, argc, &ma->exit_status);
    if (status != LUA_OK) ma->exit_status = 1;
    return 0;
  }
  if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
  if (args & has_i) {
    if (call_cli(L, "repl", argv, argc, argc, &ma->exit_status) != LUA_OK) return 0;
  } else if (script == argc && !(args & (has_e | has_v))) {
    if (isatty(0)) {
      if (call_cli(L, "repl", argv, argc, argc, &ma->exit_status) != LUA_OK) return 0;
      return 0;
    }
    char *dash[] = {"-", "-", NULL};
    if (handle_script(L, dash + 1) != LUA_OK) return 0;
  }
  ma->exit_status = 0;
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--verbose") == 0) show_traceback = 1;
  const char *dbg = getenv("AEP_DEBUG");
  if (dbg && dbg[0] && strcmp(dbg, "0") != 0) show_traceback = 1;

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    l_message(progname, "cannot create state: not enough memory");
    return 1;
  }
  global_L = L;
  struct main_args ma = {argc, argv, 1};
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &ma);
  int status = lua_pcall(L, 1, 1, 0);
  report(L, status);
  lua_close(L);
  if (exit_code_for_interrupt) return 130;
  return status == LUA_OK ? ma.exit_status : 1;
}
