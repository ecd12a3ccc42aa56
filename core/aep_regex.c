/* aep.regex: PCRE2 (8-bit, UTF mode) for JSON-schema "pattern" keywords.
 *
 * regex.compile(pattern [, flags]) -> Regex | nil, message, "BAD_PATTERN"
 *   flags: any of "i" (caseless), "m" (multiline), "s" (dotall), "x" (extended).
 *   Newlines are PCRE2_NEWLINE_ANY, so "." and "$" treat \n, \r, \r\n, U+0085, U+2028 and U+2029
 *   as line terminators, as java.util.regex does. \d \w \s stay ASCII (no PCRE2_UCP), also as Java.
 * re:find(subject) -> true | false | nil, message, "MATCH_LIMIT" | "BAD_UTF8" | "MATCH"
 *   An unanchored search (Java's Matcher.find()), bounded by a match limit so a catastrophic
 *   pattern gives up instead of hanging.
 * re:exec(subject [, init]) -> start, stop, groups | false | nil, message, code
 *   The first match at or after byte init (1-based): its bounds as string.find gives them and
 *   every capture group's text (false when the group took no part), for extraction and splitting.
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

static int regex_is_open(const void *re) { return ((const Regex *)re)->code != NULL; }

static Regex *check_regex(lua_State *L) {
  return aep_check_handle(L, 1, REGEX_MT, regex_is_open, "regex: attempt to use a closed Regex");
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

/* Push what a failed pcre2_match means: false (no match) or nil, message, code. */
static int match_failed(lua_State *L, Regex *re, int rc) {
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
  return match_failed(L, re, rc);
}

/* re:exec(subject [, init]) -> start, stop, groups | false | nil, message, code */
static int regex_exec(lua_State *L) {
  Regex *re = check_regex(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, init >= 1 && (size_t)(init - 1) <= len, 3, "initial position out of range");
  int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, (PCRE2_SIZE)(init - 1), 0, re->md, re->mctx);
  if (rc < 0) return match_failed(L, re, rc);
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
  uint32_t ncap = 0;
  pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &ncap);
  lua_pushinteger(L, (lua_Integer)ov[0] + 1);
  lua_pushinteger(L, (lua_Integer)ov[1]);
  lua_createtable(L, (int)ncap, 0);
  for (uint32_t i = 1; i <= ncap; i++) {
    if ((int)i < rc && ov[2 * i] != PCRE2_UNSET)
      lua_pushlstring(L, s + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  return 3;
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
    {"find", regex_find}, {"exec", regex_exec}, {"close", regex_close}, {NULL, NULL}};

static const luaL_Reg regex_funcs[] = {{"compile", regex_compile}, {NULL, NULL}};

int luaopen_aep_regex(lua_State *L) {
  aep_new_type(L, REGEX_MT, regex_methods, regex_close, regex_tostring);
  luaL_newlib(L, regex_funcs);
  lua_pushinteger(L, REGEX_MATCH_LIMIT);
  lua_setfield(L, -2, "match_limit");
  return 1;
}
