/* The searcher for Lua modules compiled into the binary. It sits after Lua's own path searcher,
 * so a file on AEP_LUA_PATH overrides the embedded copy without a rebuild. */
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "embed.h"

const aep_embedded_file *aep_embedded_find(const char *path) {
  for (const aep_embedded_file *f = aep_embedded_files; f->path; f++)
    if (strcmp(f->path, path) == 0) return f;
  return NULL;
}

/* "aep.xdm" -> "lua/aep/xdm.lua", then "lua/aep/xdm/init.lua". */
static const aep_embedded_file *find_module(lua_State *L, const char *name) {
  const char *forms[] = {"lua/%s.lua", "lua/%s/init.lua"};
  const char *slashed = luaL_gsub(L, name, ".", "/");
  for (int i = 0; i < 2; i++) {
    const char *candidate = lua_pushfstring(L, forms[i], slashed);
    const aep_embedded_file *f = aep_embedded_find(candidate);
    lua_pop(L, 1);
    if (f) {
      lua_pop(L, 1);
      return f;
    }
  }
  lua_pop(L, 1);
  return NULL;
}

static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const aep_embedded_file *f = find_module(L, name);
  if (!f) {
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
  }
  lua_pushfstring(L, "@%s", f->path);
  const char *chunkname = lua_tostring(L, -1);
  if (luaL_loadbufferx(L, (const char *)f->data, f->size, chunkname, "t") != LUA_OK)
    return luaL_error(L, "error loading embedded module '%s':\n\t%s", name, lua_tostring(L, -1));
  lua_pushstring(L, f->path); /* second value passed to the loader, as Lua's searchers do */
  return 2;
}

void aep_embed_install(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const aep_native_module *m = aep_native_modules; m->name; m++) {
    if (m->open) {
      lua_pushcfunction(L, m->open);
    } else {
      lua_pushlightuserdata(L, (void *)m);
      lua_pushcclosure(L, aep_plugin_loader, 1);
    }
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);

  /* package.searchers: preload, Lua path, [embedded], C path, C root. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = n; i >= 3; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 3);
  lua_pop(L, 2);
}
