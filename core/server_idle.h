/* The serve loop's idle hook (srv:serve's idle argument), kept apart from aep_server.c. */
#ifndef AEP_SERVER_IDLE_H
#define AEP_SERVER_IDLE_H

#include <stdio.h>
#include <lua.h>

/* Between iterations: idle() -> true while it has more work (the next wait is then 0 s), a number
 * of seconds until it next has work (the wait is at most that), or false/nil (wait for requests
 * only). Long work done in slices never keeps requests waiting longer than one slice; timed work
 * (a window that closes) runs without a request to wake the loop. An error stops the hook.
 * Returns the wait bound in seconds, <0: none. */
static double run_idle(lua_State *L, int idx) {
  double wait = -1;
  if (lua_isnil(L, idx)) return -1;
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "aep.server: idle: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_replace(L, idx);
    return -1;
  }
  if (lua_type(L, -1) == LUA_TNUMBER) {
    wait = lua_tonumber(L, -1);
    if (!(wait >= 0)) wait = 0; /* NaN too */
  } else if (lua_toboolean(L, -1)) {
    wait = 0;
  }
  lua_pop(L, 1);
  return wait;
}

#endif
