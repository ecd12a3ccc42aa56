/* aep.readline: GNU readline for the REPL: line editing, history, Ctrl-C that cancels the line
 * being typed, and completion answered by a Lua function.
 * readline keeps its state in globals, so this module does too (one REPL per process). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <readline/history.h>
#include <readline/readline.h>
#include "aep.h"

static volatile sig_atomic_t line_cancelled = 0;
static lua_State *completion_L = NULL; /* the state whose completer is registered */
static int completer_ref = LUA_NOREF;

static void on_sigint(int sig) {
  (void)sig;
  line_cancelled = 1;
}

/* readline's input function. Ctrl-C interrupts read() (no SA_RESTART); we then end the line
 * with a newline so readline returns at once, and rl_readline discards what was typed. Letting
 * readline handle the signal itself would swallow the next keys typed after Ctrl-C. */
static int getc_cancellable(FILE *stream) {
  for (;;) {
    if (line_cancelled) return '\n';
    unsigned char c;
    ssize_t n = read(fileno(stream), &c, 1);
    if (n == 1) return c;
    if (n == 0) return EOF;
    if (errno != EINTR) return EOF;
  }
}

/* readline(prompt) -> line | nil (end of input) | false (Ctrl-C cancelled the line) */
static int rl_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  line_cancelled = 0;
  char *line = readline(prompt);
  sigaction(SIGINT, &old, NULL);
  if (line_cancelled) {
    free(line);
    line_cancelled = 0;
    aep_interrupted = 0;
    lua_pushboolean(L, 0);
    return 1;
  }
  if (line == NULL) return 0;
  lua_pushstring(L, line);
  free(line);
  return 1;
}

/* add_history(line) */
static int rl_add_history(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

/* read_history(path) -> true | nil, msg, code  (a missing file is not an error) */
static int rl_read_history(lua_State *L) {
  int e = read_history(luaL_checkstring(L, 1));
  if (e != 0 && e != 2 /* ENOENT */) return aep_fail(L, strerror(e), "OS");
  lua_pushboolean(L, 1);
  return 1;
}

/* write_history(path [, max_lines = 1000]) -> true | nil, msg, code */
static int rl_write_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  stifle_history((int)luaL_optinteger(L, 2, 1000));
  int e = write_history(path);
  if (e != 0) return aep_fail(L, strerror(e), "OS");
  lua_pushboolean(L, 1);
  return 1;
}

static char **candidates = NULL;
static size_t ncandidates = 0;

static void free_candidates(void) {
  for (size_t i = 0; i < ncandidates; i++) free(candidates[i]);
  free(candidates);
  candidates = NULL;
  ncandidates = 0;
}

static char *candidate_generator(const char *text, int state) {
  static size_t next;
  (void)text;
  if (state == 0) next = 0;
  if (next < ncandidates) {
    char *c = candidates[next];
    candidates[next++] = NULL;
    return c;
  }
  return NULL;
}

/* Ask the Lua completer for candidates; readline frees what we return. */
static char **attempted_completion(const char *text, int start, int end) {
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  free_candidates();
  lua_State *L = completion_L;
  if (!L || completer_ref == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushstring(L, text);
  lua_pushstring(L, rl_line_buffer);
  lua_pushinteger(L, start);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  size_t n = (size_t)lua_rawlen(L, -1);
  candidates = calloc(n + 1, sizeof *candidates);
  if (!candidates) {
    lua_pop(L, 1);
    return NULL;
  }
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i);
    const char *s = lua_tostring(L, -1);
    if (s) candidates[ncandidates++] = strdup(s);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (ncandidates == 0) return NULL;
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, candidate_generator);
}

/* set_completer(function(text, line, start) -> {candidates}) */
static int rl_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (completer_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushvalue(L, 1);
  completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  completion_L = L;
  rl_attempted_completion_function = attempted_completion;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{([,+-*/%^~#";
  return 0;
}

static const luaL_Reg readline_funcs[] = {{"readline", rl_readline},
                                          {"add_history", rl_add_history},
                                          {"read_history", rl_read_history},
                                          {"write_history", rl_write_history},
                                          {"set_completer", rl_set_completer},
                                          {NULL, NULL}};

int luaopen_aep_readline(lua_State *L) {
  rl_readline_name = "aep";
  rl_catch_signals = 0; /* Ctrl-C is ours: see getc_cancellable */
  rl_getc_function = getc_cancellable;
  luaL_newlib(L, readline_funcs);
  return 1;
}
