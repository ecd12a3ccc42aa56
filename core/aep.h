/* Helpers shared by aep's C files. Each native module is core/aep_<name>.c and exports only
 * luaopen_aep_<name>; everything else in it is static. */
#ifndef AEP_H
#define AEP_H

#include <signal.h>
#include <lua.h>
#include <lauxlib.h>

/* Set to 1 by the host's SIGINT handler (core/main.c), cleared when the "interrupted" error has
 * been raised. Blocking native calls (curl transfers, pool waits, server loops) poll it so that
 * Ctrl-C ends them promptly; they return nil, "interrupted", "INTERRUPTED" and the host's Lua hook
 * then raises "interrupted" in the calling script. */
extern volatile sig_atomic_t aep_interrupted;

/* Version string of aep itself (set by CMake). */
#ifndef AEP_VERSION
#define AEP_VERSION "0.0.0-dev"
#endif

/* Push the conventional run-time failure triple: nil, message, code. Returns 3. */
static inline int aep_fail(lua_State *L, const char *message, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

/* Read an optional field of the options table at idx. */
static inline lua_Integer aep_opt_int_field(lua_State *L, int idx, const char *k, lua_Integer d) {
  lua_Integer v;
  lua_getfield(L, idx, k);
  v = lua_isnil(L, -1) ? d : luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  return v;
}
static inline lua_Number aep_opt_num_field(lua_State *L, int idx, const char *k, lua_Number d) {
  lua_Number v;
  lua_getfield(L, idx, k);
  v = lua_isnil(L, -1) ? d : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}
static inline int aep_opt_bool_field(lua_State *L, int idx, const char *k, int d) {
  int v;
  lua_getfield(L, idx, k);
  v = lua_isnil(L, -1) ? d : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

#endif
