/* aep.lines' functions on numbers in record text (the reader is core/aep_lines.c). lua-cjson 2.1.0
 * writes 14 significant digits and reads every number as a double, so records whose numbers need
 * more are found here (has_long_number) and, for aep.json, made readable exactly
 * (quote_long_integers). */
#include <stddef.h>
#include <string.h>

#include "lines_numbers.h"

/* Number-sized digit runs --------------------------------------------------------------------- */

#define LONG_NUMBER_DIGITS 15

static int is_number_char(unsigned char c) { return (unsigned)(c - '0') < 10u || c == '.'; }

/* The rule on one run of digits and dots p[a, b): LONG_NUMBER_DIGITS digits with at most one '.'
 * among them (a second '.' starts a new count). */
static int run_is_long(const unsigned char *p, size_t a, size_t b) {
  int digits = 0, dot = 0;
  for (size_t i = a; i < b; i++) {
    if (p[i] != '.') {
      if (++digits >= LONG_NUMBER_DIGITS) return 1;
    } else if (dot) {
      digits = 0;
      dot = 0;
    } else {
      dot = 1;
    }
  }
  return 0;
}

/* Is there such a run anywhere in p[0, n)? Looks at one byte in LONG_NUMBER_DIGITS: a run long
 * enough covers every window of that width it lies in, so a byte that is neither digit nor dot
 * rules out every window through it (most records are read in about n / 15 steps). */
static int long_run_in_text(const unsigned char *p, size_t n) {
  size_t i = LONG_NUMBER_DIGITS - 1; /* every window ending before i is ruled out */
  while (i < n) {
    if (!is_number_char(p[i])) {
      i += LONG_NUMBER_DIGITS;
      continue;
    }
    size_t a = i, b = i + 1;
    while (a > 0 && is_number_char(p[a - 1])) a--;
    while (b < n && is_number_char(p[b])) b++;
    if (b - a >= LONG_NUMBER_DIGITS && run_is_long(p, a, b)) return 1;
    i = b + LONG_NUMBER_DIGITS;
  }
  return 0;
}

/* The same outside JSON strings (escapes followed), byte by byte. */
static int long_run_in_json(const unsigned char *p, size_t n) {
  size_t a = 0;
  int in_string = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (in_string) {
      if (c == '\\') {
        i++; /* the escaped character cannot end the string */
      } else if (c == '"') {
        in_string = 0;
        a = i + 1;
      }
      continue;
    }
    if (is_number_char(c)) continue;
    if (i - a >= LONG_NUMBER_DIGITS && run_is_long(p, a, i)) return 1;
    a = i + 1;
    if (c == '"') in_string = 1;
  }
  return n - a >= LONG_NUMBER_DIGITS && !in_string && run_is_long(p, a, n);
}

/* lines.has_long_number(text [, "json" | "text"]) -> boolean */
int lines_has_long_number(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  static const char *const modes[] = {"json", "text", NULL};
  int json = luaL_checkoption(L, 2, "json", modes) == 0;
  /* most records hold no long digit run at all: the sampling pass tells; strings are followed
   * only when there is one */
  int found = long_run_in_text(p, n);
  if (found && json) found = long_run_in_json(p, n);
  lua_pushboolean(L, found);
  return 1;
}


/* Long integers --------------------------------------------------------------------------------
 * An integer token of LONG_INTEGER_DIGITS or more digits may lie beyond a double's exact integers
 * (2^53 has 16 digits). quote_long_integers rewrites each such token outside JSON strings as the
 * JSON string "\u0000aep-integer\u0000<token>" (a mark no record's own text holds), so that
 * cjson reads it as text and aep.json turns it back into a Lua integer (tonumber). Tokens with
 * a fraction or an exponent are floats either way: left as they are. */

#define LONG_INTEGER_DIGITS 16
#define INTEGER_MARK "\"\\u0000aep-integer\\u0000"

static int is_token_char(unsigned char c) {
  return (unsigned)(c - '0') < 10u || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

/* The end of the number token starting at p[a] (a '-' or a digit); *is_long tells whether it is
 * an integer of LONG_INTEGER_DIGITS or more digits. */
static size_t number_token(const unsigned char *p, size_t n, size_t a, int *is_long) {
  size_t i = a, digits = 0;
  int integer = 1;
  if (p[i] == '-') i++;
  for (; i < n && is_token_char(p[i]); i++) {
    if ((unsigned)(p[i] - '0') < 10u) digits++;
    else integer = 0;
  }
  *is_long = integer && digits >= LONG_INTEGER_DIGITS;
  return i;
}

/* lines.quote_long_integers(json_text) -> text with long integers quoted | nil (there are none) */
int lines_quote_long_integers(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t copied = 0; /* p[0, copied) is in the buffer */
  int in_string = 0, found = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = 0;
      continue;
    }
    if (c == '"') {
      in_string = 1;
      continue;
    }
    if (c != '-' && (unsigned)(c - '0') >= 10u) continue;
    int is_long;
    size_t end = number_token(p, n, i, &is_long);
    if (is_long) {
      found = 1;
      luaL_addlstring(&b, (const char *)p + copied, i - copied);
      luaL_addstring(&b, INTEGER_MARK);
      luaL_addlstring(&b, (const char *)p + i, end - i);
      luaL_addchar(&b, '"');
      copied = end;
    }
    i = end - 1;
  }
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  luaL_addlstring(&b, (const char *)p + copied, n - copied);
  luaL_pushresult(&b);
  return 1;
}
