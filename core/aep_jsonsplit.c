/* aep.jsonsplit: cut a JSON batch into texts, so that a caller decodes only what it needs and can
 * keep one member of each element as the very text the client sent (the emulator stores each
 * streamed xdmEntity as sent instead of decoding and re-encoding it, and decodes an envelope that
 * 500 messages share once).
 *
 * This is a scanner, not a parser: it follows strings and escapes, nesting, colons and commas, but
 * leaves string contents and scalars to the caller's decoder (cjson), which sees every byte of
 * the batch in the texts returned (except the outer object and array punctuation, checked here).
 * Whenever the text is not of the expected shape, or anything looks unusual (a NUL byte, deep
 * nesting), it answers nil and the caller decodes the whole text the ordinary way, so errors and
 * edge cases stay the decoder's. */
#include <string.h>

#include "aep.h"

#define MAX_DEPTH 200 /* nesting below which we scan; cjson allows 1000 over the whole text */
#define MAX_PATH 8
#define MAX_TEMPLATES 8 /* distinct templates compared against (the most recent ones) */

typedef struct {
  const char *k[MAX_PATH];
  size_t klen[MAX_PATH];
  int n;
} path_t;

typedef struct {
  const char *s, *e;   /* the element */
  const char *vs, *ve; /* the value at the path, or NULL: not split */
  int tmpl;            /* template number (1-based) */
} elem_t;

/* Byte classes: whitespace, what ends a string scan ('"', '\\', NUL), what ends a scalar. */
enum { C_WS = 1, C_STR = 2, C_DELIM = 4 };
static const unsigned char cls[256] = {
  [0] = C_STR | C_DELIM,  [' '] = C_WS | C_DELIM, ['\t'] = C_WS | C_DELIM, ['\n'] = C_WS | C_DELIM,
  ['\r'] = C_WS | C_DELIM, ['"'] = C_STR | C_DELIM, ['\\'] = C_STR,     [','] = C_DELIM,
  [':'] = C_DELIM,        ['{'] = C_DELIM,        ['}'] = C_DELIM,        ['['] = C_DELIM,
  [']'] = C_DELIM,
};

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && (cls[(unsigned char)*p] & C_WS)) p++;
  return p;
}

/* p at '"' -> just past the closing quote, or NULL. *esc is set when the string has escapes. */
static const char *string_end(const char *p, const char *e, int *esc) {
  for (p++;;) {
    while (p < e && !(cls[(unsigned char)*p] & C_STR)) p++;
    if (p >= e || *p == '\0') return NULL;
    if (*p == '"') return p + 1;
    *esc = 1; /* a backslash: skip what it escapes */
    if (++p >= e || *p == '\0') return NULL;
    p++;
  }
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A scalar cjson decodes and re-encodes to the same value: true, false, null or a plain JSON
 * number of at most 200 characters with at most two exponent digits (so never infinite). */
static int plain_scalar(const char *p, size_t n) {
  const char *e = p + n;
  if ((n == 4 && memcmp(p, "true", 4) == 0) || (n == 5 && memcmp(p, "false", 5) == 0) ||
      (n == 4 && memcmp(p, "null", 4) == 0))
    return 1;
  if (n > 200) return 0;
  if (p < e && *p == '-') p++;
  if (p >= e) return 0;
  if (*p == '0') p++;
  else if (is_digit(*p)) while (p < e && is_digit(*p)) p++;
  else return 0;
  if (p < e && *p == '.') {
    if (++p >= e || !is_digit(*p)) return 0;
    while (p < e && is_digit(*p)) p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    const char *d;
    if (++p < e && (*p == '+' || *p == '-')) p++;
    d = p;
    while (p < e && is_digit(*p)) p++;
    if (p == d || p - d > 2) return 0;
  }
  return p == e;
}

static const char *value_end(const char *p, const char *e, int depth, int *odd);

/* p at '{' or '[' -> just past its close, or NULL */
static const char *container_end(const char *p, const char *e, int depth, int *odd) {
  int obj = *p == '{';
  char close = obj ? '}' : ']';
  if (depth >= MAX_DEPTH) return NULL;
  p = skip_ws(p + 1, e);
  if (p < e && *p == close) return p + 1;
  for (;;) {
    if (obj) {
      int esc = 0;
      if (p >= e || *p != '"' || (p = string_end(p, e, &esc)) == NULL) return NULL;
      p = skip_ws(p, e);
      if (p >= e || *p != ':') return NULL;
      p = skip_ws(p + 1, e);
    }
    if ((p = value_end(p, e, depth + 1, odd)) == NULL) return NULL;
    p = skip_ws(p, e);
    if (p >= e) return NULL;
    if (*p == close) return p + 1;
    if (*p != ',') return NULL;
    p = skip_ws(p + 1, e);
  }
}

/* One value at p (no leading whitespace) -> just past it, or NULL. *odd is set by a scalar that
 * is not plain_scalar. */
static const char *value_end(const char *p, const char *e, int depth, int *odd) {
  const char *s = p;
  int esc = 0;
  if (p >= e) return NULL;
  if (*p == '"') return string_end(p, e, &esc);
  if (*p == '{' || *p == '[') return container_end(p, e, depth, odd);
  while (p < e && !(cls[(unsigned char)*p] & C_DELIM)) p++;
  if (p == s || (p < e && *p == '\0')) return NULL;
  if (!plain_scalar(s, (size_t)(p - s))) *odd = 1;
  return p;
}

/* An element at p: -> just past it, or NULL. Sets *vs, *ve to the value found by following the
 * path (each object on the way has that key exactly once, and no escaped key that could be it)
 * when that value is an object of plain scalars; else leaves them NULL. */
static const char *element_end(const char *p, const char *e, const path_t *path, int at, int depth,
                               const char **vs, const char **ve) {
  int found = 0, esc_key = 0;
  const char *fs = NULL, *fe = NULL;
  if (at == path->n) {
    int odd = 0;
    const char *end = value_end(p, e, depth, &odd);
    if (end && *p == '{' && !odd) {
      *vs = p;
      *ve = end;
    }
    return end;
  }
  if (p >= e || *p != '{') {
    int odd = 0;
    return value_end(p, e, depth, &odd);
  }
  if (depth >= MAX_DEPTH) return NULL;
  p = skip_ws(p + 1, e);
  if (p < e && *p == '}') return p + 1;
  for (;;) {
    const char *ks = p, *ke;
    int esc = 0;
    if (p >= e || *p != '"' || (ke = string_end(p, e, &esc)) == NULL) return NULL;
    if (esc) esc_key = 1;
    p = skip_ws(ke, e);
    if (p >= e || *p != ':') return NULL;
    p = skip_ws(p + 1, e);
    if ((size_t)(ke - ks - 2) == path->klen[at] && memcmp(ks + 1, path->k[at], path->klen[at]) == 0) {
      found++;
      fs = fe = NULL;
      p = element_end(p, e, path, at + 1, depth + 1, &fs, &fe);
    } else {
      int odd = 0;
      p = value_end(p, e, depth + 1, &odd);
    }
    if (p == NULL) return NULL;
    p = skip_ws(p, e);
    if (p >= e) return NULL;
    if (*p == '}') break;
    if (*p != ',') return NULL;
    p = skip_ws(p + 1, e);
  }
  if (found == 1 && !esc_key && fs) {
    *vs = fs;
    *ve = fe;
  }
  return p + 1;
}

/* Two elements give the same template text (both split, or both whole). */
static int same_template(const elem_t *a, const elem_t *b) {
  if ((a->vs == NULL) != (b->vs == NULL)) return 0;
  if (a->vs == NULL) return a->e - a->s == b->e - b->s && memcmp(a->s, b->s, (size_t)(a->e - a->s)) == 0;
  return a->vs - a->s == b->vs - b->s && a->e - a->ve == b->e - b->ve &&
         memcmp(a->s, b->s, (size_t)(a->vs - a->s)) == 0 &&
         memcmp(a->ve, b->ve, (size_t)(a->e - a->ve)) == 0;
}

/* jsonsplit.split(text, array_key, key1 [, key2 ...]) -> templates, index, values | nil
 * text must be {"<array_key>": [e1, e2, ...]} (that one member, a non-empty array). For each
 * element ei, values[i] is the text of the object at ei.key1.key2... (the keys unique on the way)
 * and its template is ei's text with that value replaced by null; when there is no such object,
 * values[i] is false and the template is ei's whole text. Equal templates are returned once:
 * templates = {text, ...}, index[i] = the number of ei's template. nil: not of that shape, or not
 * well-formed (decode the whole text instead). Scalars and string contents are not checked. */
static int jsonsplit_split(lua_State *L) {
  size_t len, alen, cap = 512, n = 0, i;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *akey = luaL_checklstring(L, 2, &alen);
  const char *p = text, *e = text + len, *ke;
  int ntmpl = 0, recent[MAX_TEMPLATES], nrecent = 0, esc = 0, k;
  path_t path;
  elem_t *el;
  path.n = lua_gettop(L) - 2;
  if (path.n < 1 || path.n > MAX_PATH) return luaL_error(L, "jsonsplit.split: 1 to %d path keys", MAX_PATH);
  for (k = 0; k < path.n; k++) path.k[k] = luaL_checklstring(L, k + 3, &path.klen[k]);
  el = lua_newuserdatauv(L, cap * sizeof *el, 0);

  p = skip_ws(p, e);
  if (p >= e || *p != '{') goto no;
  p = skip_ws(p + 1, e);
  if (p >= e || *p != '"' || (ke = string_end(p, e, &esc)) == NULL || esc) goto no;
  if ((size_t)(ke - p - 2) != alen || memcmp(p + 1, akey, alen) != 0) goto no;
  p = skip_ws(ke, e);
  if (p >= e || *p != ':') goto no;
  p = skip_ws(p + 1, e);
  if (p >= e || *p != '[') goto no;
  p = skip_ws(p + 1, e);
  if (p < e && *p == ']') goto no; /* empty: the caller's ordinary path answers it */
  for (;;) {
    elem_t x;
    x.s = p;
    x.vs = x.ve = NULL;
    if ((p = element_end(p, e, &path, 0, 3, &x.vs, &x.ve)) == NULL) goto no;
    x.e = p;
    x.tmpl = 0;
    for (k = nrecent - 1; k >= 0; k--) {
      if (same_template(&el[recent[k]], &x)) {
        x.tmpl = el[recent[k]].tmpl;
        break;
      }
    }
    if (x.tmpl == 0) {
      x.tmpl = ++ntmpl;
      if (nrecent == MAX_TEMPLATES) {
        memmove(recent, recent + 1, (MAX_TEMPLATES - 1) * sizeof recent[0]);
        nrecent--;
      }
      recent[nrecent++] = (int)n;
    }
    if (n == cap) {
      elem_t *bigger = lua_newuserdatauv(L, 2 * cap * sizeof *el, 0);
      memcpy(bigger, el, cap * sizeof *el);
      lua_replace(L, -2);
      el = bigger;
      cap *= 2;
    }
    el[n++] = x;
    p = skip_ws(p, e);
    if (p >= e) goto no;
    if (*p == ']') break;
    if (*p != ',') goto no;
    p = skip_ws(p + 1, e);
  }
  p = skip_ws(p + 1, e);
  if (p >= e || *p != '}') goto no;
  if (skip_ws(p + 1, e) != e) goto no;

  lua_createtable(L, ntmpl, 0); /* templates */
  lua_createtable(L, (int)n, 0); /* index */
  lua_createtable(L, (int)n, 0); /* values */
  for (i = 0, k = 0; i < n; i++) {
    const elem_t *x = &el[i];
    if (x->tmpl > k) { /* first use of a template: they are numbered in order of appearance */
      k = x->tmpl;
      if (x->vs) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, x->s, (size_t)(x->vs - x->s));
        luaL_addstring(&b, "null");
        luaL_addlstring(&b, x->ve, (size_t)(x->e - x->ve));
        luaL_pushresult(&b);
      } else {
        lua_pushlstring(L, x->s, (size_t)(x->e - x->s));
      }
      lua_rawseti(L, -4, k);
    }
    lua_pushinteger(L, x->tmpl);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    if (x->vs) lua_pushlstring(L, x->vs, (size_t)(x->ve - x->vs));
    else lua_pushboolean(L, 0);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 3;
no:
  lua_pushnil(L);
  return 1;
}

static const luaL_Reg jsonsplit_funcs[] = {{"split", jsonsplit_split}, {NULL, NULL}};

int luaopen_aep_jsonsplit(lua_State *L) {
  luaL_newlib(L, jsonsplit_funcs);
  return 1;
}
