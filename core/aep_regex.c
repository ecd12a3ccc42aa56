/* aep.regex: PCRE2 (8-bit, UTF mode) for JSON-schema "pattern" keywords.
 *
 * regex.compile(pattern [, flags]) -> Regex | nil, message, "BAD_PATTERN"
 *   flags: any of "i" (caseless), "m" (multiline), "s" (dotall), "x" (extended).
 *   Newlines are PCRE2_NEWLINE_ANY, so "." and "$" treat \n, \r, \r\n, U+0085, U+2028 and U+2029
 *   as line terminators, as java.util.regex does. \d \w \s stay ASCII (no PCRE2_UCP), also as Java.
 * re:find(subject) -> true | false | nil, message, "MATCH_LIMIT" | "BAD_UTF8" | "MATCH"
 *   An unanchored search (Java's Matcher.find()), bounded by a match limit so a catastrophic
 *   pattern gives up instead of hanging.
 * re:close(); handles are aep.regex.Regex. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdio.h>
#include <pcre2.h>
#include <string.h>

#include "aep.h"

#define REGEX_MT "aep.regex.Regex"
#define REGEX_MATCH_LIMIT 1000000 /* backtracking steps per find (PCRE2's default is 10M) */
#define REGEX_DEPTH_LIMIT 100000

typedef struct {
  pcre2_code *code;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
} Regex;

static Regex *check_regex(lua_State *L) {
  Regex *re = (Regex *)luaL_checkudata(L, 1, REGEX_MT);
  if (!re->code) luaL_error(L, "regex: attempt to use a closed Regex");
  return re;
}

static void regex_release(Regex *re) {
  if (re->md) pcre2_match_data_free(re->md);
  if (re->mctx) pcre2_match_context_free(re->mctx);
  if (re->code) pcre2_code_free(re->code);
  re->md = NULL;
  re->mctx = NULL;
  re->code = NULL;
}

static uint32_t parse_flags(lua_State *L, int idx) {
  const char *f = luaL_optstring(L, idx, "");
  uint32_t opts = 0;
  for (; *f; f++) {
    switch (*f) {
    case 'i': opts |= PCRE2_CASELESS; break;
    case 'm': opts |= PCRE2_MULTILINE; break;
    case 's': opts |= PCRE2_DOTALL; break;
    case 'x': opts |= PCRE2_EXTENDED; break;
    default: luaL_argerror(L, idx, lua_pushfstring(L, "unknown flag '%c' (use i, m, s, x)", *f));
    }
  }
  return opts;
}

/* regex.compile(pattern [, flags]) -> Regex | nil, message, "BAD_PATTERN" */
static int regex_compile(lua_State *L) {
  size_t len;
  const char *pat = luaL_checklstring(L, 1, &len);
  uint32_t opts = parse_flags(L, 2) | PCRE2_UTF;
  Regex *re = (Regex *)lua_newuserdatauv(L, sizeof(Regex), 0);
  memset(re, 0, sizeof *re);
  luaL_setmetatable(L, REGEX_MT); /* from here __gc frees whatever has been built */

  pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
  if (!cctx) return luaL_error(L, "regex: out of memory");
  pcre2_set_newline(cctx, PCRE2_NEWLINE_ANY);
  int errcode;
  PCRE2_SIZE erroff;
  re->code = pcre2_compile((PCRE2_SPTR)pat, len, opts, &errcode, &erroff, cctx);
  pcre2_compile_context_free(cctx);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "unknown error");
    lua_pushnil(L);
    lua_pushfstring(L, "%s at offset %d", (const char *)msg, (int)erroff);
    lua_pushstring(L, "BAD_PATTERN");
    return 3;
  }
  re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
  re->mctx = pcre2_match_context_create(NULL);
  if (!re->md || !re->mctx) {
    regex_release(re);
    return luaL_error(L, "regex: out of memory");
  }
  pcre2_set_match_limit(re->mctx, REGEX_MATCH_LIMIT);
  pcre2_set_depth_limit(re->mctx, REGEX_DEPTH_LIMIT);
  return 1;
}

/* re:find(subject) -> boolean | nil, message, code */
static int regex_find(lua_State *L) {
  Regex *re = check_regex(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, re->md, re->mctx);
  if (rc >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == PCRE2_ERROR_NOMATCH) {
    lua_pushboolean(L, 0);
    return 1;
  }
  PCRE2_UCHAR msg[256];
  if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "unknown error");
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
    return aep_fail(L, (const char *)msg, "MATCH_LIMIT");
  if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) {
    lua_pushnil(L);
    lua_pushfstring(L, "subject is not valid UTF-8: %s at offset %d", (const char *)msg,
                    (int)pcre2_get_startchar(re->md));
    lua_pushstring(L, "BAD_UTF8");
    return 3;
  }
  return aep_fail(L, (const char *)msg, "MATCH");
}

/* re:close() (also __gc and __close; idempotent) */
static int regex_close(lua_State *L) {
  regex_release((Regex *)luaL_checkudata(L, 1, REGEX_MT));
  return 0;
}

static int regex_tostring(lua_State *L) {
  Regex *re = (Regex *)luaL_checkudata(L, 1, REGEX_MT);
  lua_pushfstring(L, REGEX_MT " (%s)", re->code ? "open" : "closed");
  return 1;
}

static const luaL_Reg regex_methods[] = {
    {"find", regex_find}, {"close", regex_close}, {NULL, NULL}};

static const luaL_Reg regex_funcs[] = {{"compile", regex_compile}, {NULL, NULL}};

int luaopen_aep_regex(lua_State *L) {
  luaL_newmetatable(L, REGEX_MT);
  luaL_newlib(L, regex_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, regex_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, regex_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, regex_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, regex_funcs);
  lua_pushinteger(L, REGEX_MATCH_LIMIT);
  lua_setfield(L, -2, "match_limit");
  return 1;
}
