/* aep.sqlite: a small SQLite binding, the emulator's durable store.
 *
 * Db and Stmt are full userdata. A Db keeps an intrusive list of its open statements so that
 * db:close() can finalize them first; a Stmt keeps its Db alive (user value 1), so a database is
 * never collected under a statement. Release is idempotent and shared by __gc, __close and
 * :close(); using a closed handle raises.
 *
 * Errors: open failures return nil, msg, "SQLITE"; everything else (SQL errors, constraint
 * violations, misuse) raises "sqlite: <message>". */
#include <string.h>

#include <sqlite3.h>

#include "aep.h"

#define DB_MT "aep.sqlite.Db"
#define STMT_MT "aep.sqlite.Stmt"
#define CURSOR_MT "aep.sqlite.Cursor"

typedef struct Stmt Stmt;

typedef struct Db {
  sqlite3 *db;
  Stmt *stmts; /* open statements, most recent first */
} Db;

struct Stmt {
  sqlite3_stmt *stmt;
  Db *db;
  Stmt *prev, *next;
};

/* --- release ------------------------------------------------------------------------------- */

static void stmt_release(Stmt *s) {
  if (!s->stmt) return;
  sqlite3_finalize(s->stmt);
  s->stmt = NULL;
  if (s->prev) s->prev->next = s->next;
  else if (s->db) s->db->stmts = s->next;
  if (s->next) s->next->prev = s->prev;
  s->db = NULL;
  s->prev = s->next = NULL;
}

static void db_release(Db *d) {
  while (d->stmts) stmt_release(d->stmts);
  if (d->db) {
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
}

/* --- checks and errors --------------------------------------------------------------------- */

static int db_is_open(const void *d) { return ((const Db *)d)->db != NULL; }
static int stmt_is_open(const void *s) { return ((const Stmt *)s)->stmt != NULL; }

static Db *check_db(lua_State *L, int idx) {
  return aep_check_handle(L, idx, DB_MT, db_is_open, "sqlite: attempt to use a closed database");
}

static Stmt *check_stmt(lua_State *L, int idx) {
  return aep_check_handle(L, idx, STMT_MT, stmt_is_open, "sqlite: attempt to use a closed statement");
}

/* Raise "sqlite: <message>" for the connection's last error, after resetting st (if any) so that
 * the statement is reusable. */
static int raise_sqlite(lua_State *L, sqlite3 *db, sqlite3_stmt *st) {
  lua_pushfstring(L, "sqlite: %s", sqlite3_errmsg(db));
  if (st) sqlite3_reset(st);
  return lua_error(L);
}

/* --- rows and binding ---------------------------------------------------------------------- */

/* Push the current row as {v1, v2, ..., n = column count}; NULL columns are holes. */
static void push_row(lua_State *L, sqlite3_stmt *st) {
  int i, n = sqlite3_data_count(st);
  lua_createtable(L, n, 1);
  for (i = 0; i < n; i++) {
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i));
      break;
    case SQLITE_FLOAT:
      lua_pushnumber(L, (lua_Number)sqlite3_column_double(st, i));
      break;
    case SQLITE_TEXT: {
      const char *p = (const char *)sqlite3_column_text(st, i);
      lua_pushlstring(L, p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0);
      break;
    }
    case SQLITE_BLOB: {
      const char *p = (const char *)sqlite3_column_blob(st, i);
      lua_pushlstring(L, p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0);
      break;
    }
    default: /* SQLITE_NULL */
      continue;
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
}

/* Bind the Lua values first..top to parameters 1..; parameters beyond them are set to NULL so a
 * reused statement never sees stale values. Strings are copied (SQLITE_TRANSIENT) unless
 * `borrow`: then SQLite reads them in place, and the caller must clear the bindings before the
 * values leave the stack (stmt:run does: its arguments stay on the stack while it steps). */
static void bind_args_mode(lua_State *L, Stmt *s, int first, int borrow) {
  sqlite3_stmt *st = s->stmt;
  int nparams = sqlite3_bind_parameter_count(st);
  int nargs = lua_gettop(L) - first + 1, i, rc = SQLITE_OK;
  if (nargs > nparams)
    luaL_error(L, "sqlite: %d values for %d parameters", nargs, nparams);
  for (i = 1; i <= nparams && rc == SQLITE_OK; i++) {
    int idx = first + i - 1;
    switch (i > nargs ? LUA_TNIL : lua_type(L, idx)) {
    case LUA_TNIL:
      rc = sqlite3_bind_null(st, i);
      break;
    case LUA_TBOOLEAN:
      rc = sqlite3_bind_int(st, i, lua_toboolean(L, idx));
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        rc = sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, idx));
      else
        rc = sqlite3_bind_double(st, i, (double)lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *p = lua_tolstring(L, idx, &len);
      rc = sqlite3_bind_text64(st, i, p, (sqlite3_uint64)len, borrow ? SQLITE_STATIC : SQLITE_TRANSIENT,
                               SQLITE_UTF8);
      break;
    }
    default:
      if (borrow) sqlite3_clear_bindings(st);
      luaL_argerror(L, idx, lua_pushfstring(L, "cannot bind a %s", luaL_typename(L, idx)));
    }
  }
  if (rc != SQLITE_OK) {
    if (borrow) sqlite3_clear_bindings(st);
    raise_sqlite(L, s->db->db, NULL);
  }
}

static void bind_args(lua_State *L, Stmt *s, int first) { bind_args_mode(L, s, first, 0); }

/* Step once: 1 with the row pushed, 0 when done; raises on error. */
static int step_row(lua_State *L, Stmt *s) {
  int rc = sqlite3_step(s->stmt);
  if (rc == SQLITE_ROW) {
    push_row(L, s->stmt);
    return 1;
  }
  if (rc == SQLITE_DONE) return 0;
  return raise_sqlite(L, s->db->db, s->stmt);
}

/* --- Stmt ---------------------------------------------------------------------------------- */

/* stmt:bind(...) -> stmt   (1-based positional: nil, boolean (0/1), integer, float, string) */
static int stmt_bind(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  sqlite3_reset(s->stmt);
  bind_args(L, s, 2);
  lua_settop(L, 1);
  return 1;
}

/* stmt:step() -> row | nil when done */
static int stmt_step(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  if (!step_row(L, s)) lua_pushnil(L);
  return 1;
}

/* stmt:reset() -> stmt   (bindings are kept) */
static int stmt_reset(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  sqlite3_reset(s->stmt);
  lua_settop(L, 1);
  return 1;
}

/* stmt:run(...) -> number of rows changed   (reset, bind, step to the end, reset). The strings
 * are bound in place, not copied (the hot path of the emulator's store); the bindings are cleared
 * before returning, as the arguments go with the call. */
static int stmt_run(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  int rc;
  sqlite3_reset(s->stmt);
  bind_args_mode(L, s, 2, 1);
  while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {}
  if (rc != SQLITE_DONE) {
    lua_pushfstring(L, "sqlite: %s", sqlite3_errmsg(s->db->db));
    sqlite3_reset(s->stmt);
    sqlite3_clear_bindings(s->stmt);
    return lua_error(L);
  }
  sqlite3_reset(s->stmt);
  sqlite3_clear_bindings(s->stmt);
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(s->db->db));
  return 1;
}

/* stmt:first(...) -> first row | nil   (reset, bind, one step, reset) */
static int stmt_first(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  int got;
  sqlite3_reset(s->stmt);
  bind_args(L, s, 2);
  got = step_row(L, s);
  sqlite3_reset(s->stmt);
  if (!got) lua_pushnil(L);
  return 1;
}

/* The cursor is the generic-for state and closing value of stmt:rows(): it resets the statement
 * when the loop ends, breaks or raises, so no read stays open. One per statement, cached. */
static int cursor_next(lua_State *L) {
  Stmt *s;
  luaL_checkudata(L, 1, CURSOR_MT);
  lua_getiuservalue(L, 1, 1);
  s = check_stmt(L, -1);
  if (!step_row(L, s)) {
    sqlite3_reset(s->stmt);
    lua_pushnil(L);
  }
  return 1;
}

static int cursor_close(lua_State *L) {
  Stmt *s;
  luaL_checkudata(L, 1, CURSOR_MT);
  lua_getiuservalue(L, 1, 1);
  s = (Stmt *)luaL_checkudata(L, -1, STMT_MT);
  if (s->stmt) sqlite3_reset(s->stmt);
  return 0;
}

/* stmt:rows(...) -> iterator of rows   (for row in stmt:rows(a, b) do ... end) */
static int stmt_rows(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  sqlite3_reset(s->stmt);
  bind_args(L, s, 2);
  lua_settop(L, 1);
  if (lua_getiuservalue(L, 1, 2) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 1);
    luaL_setmetatable(L, CURSOR_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 2);
  }
  lua_pushcfunction(L, cursor_next);
  lua_insert(L, -2);
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4; /* iterator, state, control, closing value */
}

/* stmt:columns() -> {name1, name2, ...} */
static int stmt_columns(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  int i, n = sqlite3_column_count(s->stmt);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(s->stmt, i);
    if (!name) luaL_error(L, "sqlite: out of memory");
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* stmt:close()   (also __gc and __close; idempotent) */
static int stmt_close(lua_State *L) {
  stmt_release((Stmt *)luaL_checkudata(L, 1, STMT_MT));
  return 0;
}

static int stmt_tostring(lua_State *L) {
  Stmt *s = (Stmt *)luaL_checkudata(L, 1, STMT_MT);
  if (s->stmt) lua_pushfstring(L, STMT_MT " (%s)", sqlite3_sql(s->stmt));
  else lua_pushliteral(L, STMT_MT " (closed)");
  return 1;
}

/* --- Db ------------------------------------------------------------------------------------ */

/* db:exec(sql)   (one or more statements, no results) */
static int db_exec(lua_State *L) {
  Db *d = check_db(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  char *err = NULL;
  if (sqlite3_exec(d->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    lua_pushfstring(L, "sqlite: %s", err ? err : sqlite3_errmsg(d->db));
    sqlite3_free(err);
    return lua_error(L);
  }
  return 0;
}

/* db:prepare(sql) -> Stmt   (exactly one statement) */
static int db_prepare(lua_State *L) {
  Db *d = check_db(L, 1);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len), *tail = NULL;
  Stmt *s;
  luaL_argcheck(L, len < 0x7fffffff, 2, "SQL too long");
  s = (Stmt *)lua_newuserdatauv(L, sizeof(Stmt), 2);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, STMT_MT);
  if (sqlite3_prepare_v3(d->db, sql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &s->stmt, &tail) !=
      SQLITE_OK)
    return raise_sqlite(L, d->db, NULL);
  if (!s->stmt) luaL_error(L, "sqlite: prepare: no SQL statement in %s", sql);
  s->db = d;
  s->next = d->stmts;
  if (d->stmts) d->stmts->prev = s;
  d->stmts = s;
  /* Only whitespace, semicolons and comments may follow the statement. */
  while (tail && *tail) {
    sqlite3_stmt *extra = NULL;
    const char *next = NULL;
    int rc = sqlite3_prepare_v2(d->db, tail, -1, &extra, &next);
    sqlite3_finalize(extra);
    if (rc != SQLITE_OK || extra) {
      stmt_release(s);
      while (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r') tail++;
      luaL_error(L, "sqlite: prepare takes one statement; extra SQL: %s", tail);
    }
    if (!next || next == tail) break;
    tail = next;
  }
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the statement keeps its database alive */
  return 1;
}

/* db:last_insert_rowid() -> integer */
static int db_last_insert_rowid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(check_db(L, 1)->db));
  return 1;
}

/* db:changes() -> rows changed by the most recent INSERT/UPDATE/DELETE */
static int db_changes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(check_db(L, 1)->db));
  return 1;
}

/* db:busy_timeout(ms) -> db */
static int db_busy_timeout(lua_State *L) {
  Db *d = check_db(L, 1);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms >= 0 && ms <= 0x7fffffff, 2, "must be between 0 and 2^31-1");
  sqlite3_busy_timeout(d->db, (int)ms);
  lua_settop(L, 1);
  return 1;
}

/* db:close()   (finalizes its statements; also __gc and __close; idempotent) */
static int db_close(lua_State *L) {
  db_release((Db *)luaL_checkudata(L, 1, DB_MT));
  return 0;
}

static int db_tostring(lua_State *L) {
  Db *d = (Db *)luaL_checkudata(L, 1, DB_MT);
  const char *file = d->db ? sqlite3_db_filename(d->db, "main") : NULL;
  if (d->db) lua_pushfstring(L, DB_MT " (%s)", file && *file ? file : ":memory:");
  else lua_pushliteral(L, DB_MT " (closed)");
  return 1;
}

/* sqlite.open(path) -> Db | nil, msg, "SQLITE"   (created if missing; ":memory:" works) */
static int sqlite_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  Db *d = (Db *)lua_newuserdatauv(L, sizeof(Db), 0);
  int rc;
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DB_MT);
  /* One Lua state uses a connection at a time: no per-call mutex needed. */
  rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL);
  if (rc != SQLITE_OK) {
    lua_pushfstring(L, "sqlite: cannot open %s: %s", path,
                    d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
    db_release(d);
    return aep_fail(L, lua_tostring(L, -1), "SQLITE");
  }
  return 1;
}

static const luaL_Reg db_methods[] = {
  {"exec", db_exec},
  {"prepare", db_prepare},
  {"last_insert_rowid", db_last_insert_rowid},
  {"changes", db_changes},
  {"busy_timeout", db_busy_timeout},
  {"close", db_close},
  {NULL, NULL}
};

static const luaL_Reg stmt_methods[] = {
  {"bind", stmt_bind},
  {"step", stmt_step},
  {"reset", stmt_reset},
  {"run", stmt_run},
  {"rows", stmt_rows},
  {"first", stmt_first},
  {"columns", stmt_columns},
  {"close", stmt_close},
  {NULL, NULL}
};

static const luaL_Reg sqlite_funcs[] = {
  {"open", sqlite_open},
  {NULL, NULL}
};

int luaopen_aep_sqlite(lua_State *L) {
  aep_new_type(L, DB_MT, db_methods, db_close, db_tostring);
  aep_new_type(L, STMT_MT, stmt_methods, stmt_close, stmt_tostring);
  luaL_newmetatable(L, CURSOR_MT);
  lua_pushcfunction(L, cursor_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newlib(L, sqlite_funcs);
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "version");
  return 1;
}
