/* The helpers core/aep.h declares, shared by every native module. */
#include <time.h>

#include "aep.h"

int aep_fail(lua_State *L, const char *message, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

/* Raise "bad argument #idx to 'fn' ('k' must be <kind>)" for field k of the options at idx. */
static int bad_field(lua_State *L, int idx, const char *k, const char *kind) {
  return luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be %s", k, kind));
}

lua_Integer aep_opt_int_field(lua_State *L, int idx, const char *k, lua_Integer d) {
  lua_Integer v = d;
  int ok = 1;
  if (lua_getfield(L, idx, k) != LUA_TNIL) v = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  if (!ok) bad_field(L, idx, k, "an integer");
  return v;
}

int aep_opt_bool_field(lua_State *L, int idx, const char *k, int d) {
  int v = d;
  if (lua_getfield(L, idx, k) != LUA_TNIL) v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *aep_opt_string_field(lua_State *L, int idx, const char *k, const char *d) {
  const char *v = d;
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL && t != LUA_TSTRING) bad_field(L, idx, k, "a string");
  if (t == LUA_TSTRING) v = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays alive in the options table */
  return v;
}

double aep_opt_seconds_field(lua_State *L, int idx, const char *k, double d) {
  double v = d;
  if (lua_getfield(L, idx, k) != LUA_TNIL) {
    if (!lua_isnumber(L, -1)) bad_field(L, idx, k, "a number");
    v = lua_tonumber(L, -1);
    if (!(v > 0)) bad_field(L, idx, k, "positive");
    if (v > 1e9) v = 1e9; /* its milliseconds must fit a long (1e300 was undefined) */
  }
  lua_pop(L, 1);
  return v;
}

int aep_opt_millis(lua_State *L, int arg, double def_s) {
  double s = luaL_optnumber(L, arg, def_s);
  if (!(s > 0)) s = 0; /* NaN too: converting it to int was undefined */
  if (s > 86400) s = 86400;
  return (int)(s * 1000.0 + 0.5);
}

void aep_new_type(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction release,
                  lua_CFunction tostring) {
  luaL_newmetatable(L, mt);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  if (release) {
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__close");
  }
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

void *aep_check_handle(lua_State *L, int idx, const char *mt, int (*is_open)(const void *handle),
                       const char *closed_message) {
  void *h = luaL_checkudata(L, idx, mt);
  if (!is_open(h)) luaL_error(L, "%s", closed_message);
  return h;
}

double aep_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
