/* aep.lines: a fast buffered reader for `aep stream` input — plain or gzip-compressed (zlib
 * detects which), from a file or stdin — that hands Lua one record at a time: a line (JSON Lines,
 * CSV) or one element of a top-level JSON array, split by a streaming scanner that never holds
 * more than the current element in memory.
 *
 *   lines.open(path | "-" [, {max_record = 64 MB, buffer = 256 KB}]) -> Reader | nil, msg, "OPEN"
 *   reader:line()       -> text, lineno | nil (EOF) | nil, msg, "TOO_LARGE" | "READ"
 *                          ("READ" also when a gzip input ends inside a compressed stream:
 *                          a truncated file is an error, never a short end of file)
 *                          (the "\n" and a "\r" before it are removed; a too-large line is skipped)
 *   reader:array_item() -> text, lineno | nil (the closing "]", or an empty input)
 *                          | nil, msg, "JSON" | "TRAILING" (text after "]") | "READ"
 *                          (elements of a top-level JSON array, whatever the layout; strings,
 *                          escapes and nesting are followed, values are not validated)
 *   reader:read(n)      -> up to n bytes | nil (EOF)
 *   reader:tell()       -> uncompressed bytes handed out so far
 *   reader:raw_tell()   -> bytes consumed from the file (compressed offset), for progress
 *   reader:lineno()     -> lines handed out so far
 *   reader:close()
 *   lines.has_long_number(text [, "json" | "text"]) -> boolean
 *                          does text hold a number of 15 or more significant digits (a run of 15
 *                          digits, one '.' allowed among them)? lua-cjson 2.1.0 writes 14
 *                          significant digits and reads every number as a double, so such records
 *                          take aep.json's exact path. "json" (default): digits inside JSON
 *                          strings do not count (an ECID is not a number); "text": every digit
 *                          counts (a CSV field becomes a number when a mapping converts it).
 *                          Conservative: a run of leading zeros counts too (false positives cost
 *                          only speed).
 *   lines.quote_long_integers(json_text) -> text | nil
 *                          each integer of 16 or more digits outside strings written as the
 *                          string "\u0000aep-integer\u0000<digits>" (aep.json reads it back
 *                          as an exact integer); nil when there is none. (Both: core/lines_numbers.c.)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "aep.h"
#include "lines_numbers.h"

#define READER_MT "aep.lines.Reader"
#define MAX_DEPTH 1024

typedef struct Reader {
  gzFile gz;
  char *buf;        /* decompressed bytes [pos, len) not yet handed out */
  size_t cap, pos, len;
  int eof;
  size_t max_record;
  lua_Integer lineno;    /* number of '\n' consumed so far */
  long long consumed;    /* uncompressed bytes handed out */
  int array_state;       /* 0 = before '[', 1 = inside, 2 = after ']' */
  int is_stdin;
  int truncated;         /* the compressed input ended inside a gzip stream */
} Reader;

static void reader_release(Reader *r) {
  if (r->gz) {
    gzclose(r->gz);
    r->gz = NULL;
  }
  free(r->buf);
  r->buf = NULL;
}

static int reader_is_open(const void *r) { return ((const Reader *)r)->gz != NULL; }

static Reader *check_reader(lua_State *L) {
  return aep_check_handle(L, 1, READER_MT, reader_is_open, "lines: attempt to use a closed reader");
}

/* Make room and read more decompressed bytes after len. Returns bytes added, 0 at EOF, -1 on
 * error (message pushed as nil, msg, code by the caller via gz_fail). */
static int fill(Reader *r) {
  if (r->eof) return 0;
  if (r->pos > 0 && r->pos == r->len) r->pos = r->len = 0;
  if (r->len == r->cap) {
    if (r->pos > 0) { /* slide the unconsumed tail to the front */
      memmove(r->buf, r->buf + r->pos, r->len - r->pos);
      r->len -= r->pos;
      r->pos = 0;
    } else {
      size_t ncap = r->cap <= SIZE_MAX / 2 ? r->cap * 2 : 0;
      char *nb = ncap ? (char *)realloc(r->buf, ncap) : NULL; /* open() makes cap >= 4096 */
      if (!nb) return -1;
      r->buf = nb;
      r->cap = ncap;
    }
  }
  size_t want = r->cap - r->len;
  if (want > (1u << 30)) want = 1u << 30;
  int n = gzread(r->gz, r->buf + r->len, (unsigned)want);
  if (n < 0) return -1;
  if (n == 0) {
    /* gzread reports an input that ends inside a gzip stream (cut at a flush point, or after a
     * member's header) as a plain end of file; gzerror tells it apart (zlib.h, gzread) */
    int errnum = Z_OK;
    gzerror(r->gz, &errnum);
    if (errnum == Z_BUF_ERROR) {
      r->truncated = 1;
      return -1;
    }
    r->eof = 1;
    return 0;
  }
  r->len += (size_t)n;
  return n;
}

static int gz_fail(lua_State *L, Reader *r) {
  int errnum = 0;
  if (r->truncated) {
    lua_pushnil(L);
    lua_pushfstring(L,
                    "the gzip input is truncated: it ends inside a compressed stream after line %I "
                    "(%I uncompressed bytes read); the records before were read, the rest is missing",
                    r->lineno, (lua_Integer)(r->consumed + (long long)(r->len - r->pos)));
    lua_pushstring(L, "READ");
    return 3;
  }
  const char *msg = r->gz ? gzerror(r->gz, &errnum) : "out of memory";
  if (errnum == Z_ERRNO) msg = strerror(errno);
  if (errnum == 0) msg = "out of memory";
  lua_pushnil(L);
  lua_pushfstring(L, "cannot read input: %s", msg);
  lua_pushstring(L, "READ");
  return 3;
}

static void count_lines(Reader *r, const char *p, size_t n) {
  const char *end = p + n;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    r->lineno++;
    p++;
  }
}

/* lines.open(path | "-" [, opts]) -> Reader | nil, msg, "OPEN" */
static int lines_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t max_record = 64u << 20, bufsize = 256u << 10;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer mr = aep_opt_int_field(L, 2, "max_record", (lua_Integer)max_record);
    lua_Integer bs = aep_opt_int_field(L, 2, "buffer", (lua_Integer)bufsize);
    /* a negative limit would turn into "no limit" as a size_t */
    luaL_argcheck(L, mr >= 1, 2, "max_record must be at least 1");
    luaL_argcheck(L, bs >= 0 && bs <= (1 << 30), 2, "buffer must be between 0 and 1 GiB");
    max_record = (size_t)mr;
    bufsize = bs < 4096 ? 4096 : (size_t)bs;
  }
  Reader *r = (Reader *)lua_newuserdatauv(L, sizeof(Reader), 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  r->max_record = max_record;
  if (strcmp(path, "-") == 0) {
    int fd = dup(0);
    if (fd < 0) return aep_fail(L, strerror(errno), "OPEN");
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) close(fd);
    r->is_stdin = 1;
  } else {
    errno = 0;
    r->gz = gzopen(path, "rb");
  }
  if (!r->gz) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    lua_pushstring(L, "OPEN");
    return 3;
  }
  gzbuffer(r->gz, (unsigned)(bufsize > (1u << 20) ? (1u << 20) : bufsize));
  r->cap = bufsize;
  r->buf = (char *)malloc(r->cap);
  if (!r->buf) {
    reader_release(r);
    return aep_fail(L, "out of memory", "OPEN");
  }
  return 1;
}

/* reader:line() -> text, lineno | nil | nil, msg, code */
static int reader_line(lua_State *L) {
  Reader *r = check_reader(L);
  size_t scanned = 0;   /* bytes after pos already known to hold no '\n' */
  int too_large = 0;
  for (;;) {
    char *start = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    char *nl = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;
    if (nl || (r->eof && avail > 0)) {
      size_t n = nl ? (size_t)(nl - start) : avail;
      size_t take = nl ? n + 1 : n;
      lua_Integer this_line = r->lineno + 1;
      r->pos += take;
      r->consumed += (long long)take;
      if (nl) r->lineno++;
      if (too_large || n > r->max_record) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %I is longer than %I bytes", this_line, (lua_Integer)r->max_record);
        lua_pushstring(L, "TOO_LARGE");
        return 3;
      }
      if (n > 0 && start[n - 1] == '\r') n--;
      lua_pushlstring(L, start, n);
      lua_pushinteger(L, this_line);
      return 2;
    }
    if (r->eof) { /* nothing left */
      if (!too_large) return 0;
      lua_pushnil(L);
      lua_pushfstring(L, "line %I is longer than %I bytes", r->lineno + 1, (lua_Integer)r->max_record);
      lua_pushstring(L, "TOO_LARGE");
      return 3;
    }
    if (avail > r->max_record) { /* drop what we have of an oversized line, keep scanning */
      too_large = 1;
      r->consumed += (long long)avail;
      r->pos = r->len = 0;
      scanned = 0;
    } else {
      scanned = avail; /* stays valid: fill keeps the unread bytes in order after pos */
    }
    if (fill(r) < 0) return gz_fail(L, r);
  }
}

/* reader:read(n) -> bytes | nil */
static int reader_read(lua_State *L) {
  Reader *r = check_reader(L);
  lua_Integer want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want > 0, 2, "must be positive");
  while (r->len - r->pos < (size_t)want && !r->eof) {
    if (fill(r) < 0) return gz_fail(L, r);
  }
  size_t n = r->len - r->pos;
  if (n > (size_t)want) n = (size_t)want;
  if (n == 0) return 0;
  count_lines(r, r->buf + r->pos, n);
  lua_pushlstring(L, r->buf + r->pos, n);
  r->pos += n;
  r->consumed += (long long)n;
  return 1;
}

static int json_fail(lua_State *L, Reader *r, const char *what, lua_Integer line) {
  lua_pushnil(L);
  lua_pushfstring(L, "malformed JSON array at line %I: %s", line, what);
  lua_pushstring(L, "JSON");
  r->array_state = 2;
  return 3;
}

/* Ensure at least one unread byte; 0 at EOF, -1 on error. */
static int need(Reader *r) {
  while (r->pos >= r->len) {
    int n = fill(r);
    if (n <= 0) return n;
  }
  return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Skip whitespace (and a UTF-8 BOM at the very start), counting lines. */
static int skip_space(Reader *r) {
  for (;;) {
    int k = need(r);
    if (k <= 0) return k;
    char c = r->buf[r->pos];
    if (is_space(c)) {
      if (c == '\n') r->lineno++;
      r->pos++;
      r->consumed++;
      continue;
    }
    if (r->consumed == 0 && (unsigned char)c == 0xEF) {
      /* a BOM: EF BB BF */
      while (r->len - r->pos < 3 && !r->eof)
        if (fill(r) < 0) return -1;
      if (r->len - r->pos >= 3 && (unsigned char)r->buf[r->pos + 1] == 0xBB &&
          (unsigned char)r->buf[r->pos + 2] == 0xBF) {
        r->pos += 3;
        r->consumed += 3;
        continue;
      }
    }
    return 1;
  }
}

/* After the closing ']': only whitespace may follow. Text there is not silently dropped (it may be
 * records the writer appended): an error naming its line, code "TRAILING". */
static int after_array(lua_State *L, Reader *r) {
  int k = skip_space(r);
  if (k < 0) return gz_fail(L, r);
  if (k == 0) return 0;
  lua_pushnil(L);
  lua_pushfstring(L, "unexpected text after the closing ']' of the JSON array at line %I", r->lineno + 1);
  lua_pushstring(L, "TRAILING");
  return 3;
}

/* reader:array_item() -> text, lineno | nil | nil, msg, code */
static int reader_array_item(lua_State *L) {
  Reader *r = check_reader(L);
  int k;
  if (r->array_state == 2) return 0;
  if ((k = skip_space(r)) < 0) return gz_fail(L, r);
  if (r->array_state == 0) {
    if (k == 0) { /* an empty input (or only whitespace / a BOM): no records */
      r->array_state = 2;
      return 0;
    }
    if (r->buf[r->pos] != '[') return json_fail(L, r, "expected '[' at the start", r->lineno + 1);
    r->pos++;
    r->consumed++;
    r->array_state = 1;
    if ((k = skip_space(r)) < 0) return gz_fail(L, r);
    if (k > 0 && r->buf[r->pos] == ']') {
      r->pos++;
      r->consumed++;
      r->array_state = 2;
      return after_array(L, r);
    }
  } else {
    /* between elements: ',' or ']' */
    if (k == 0) return json_fail(L, r, "unexpected end of input, expected ',' or ']'", r->lineno + 1);
    char c = r->buf[r->pos];
    if (c == ']') {
      r->pos++;
      r->consumed++;
      r->array_state = 2;
      return after_array(L, r);
    }
    if (c != ',') return json_fail(L, r, "expected ',' or ']' between elements", r->lineno + 1);
    r->pos++;
    r->consumed++;
    if ((k = skip_space(r)) < 0) return gz_fail(L, r);
  }
  if (k == 0) return json_fail(L, r, "unexpected end of input inside the array", r->lineno + 1);
  {
    char c = r->buf[r->pos];
    if (c == ']' || c == ',') return json_fail(L, r, "missing element", r->lineno + 1);
  }
  /* Scan one element starting at pos. Offsets are relative to r->pos, which stays put (fill
   * only slides the buffer, keeping pos's bytes). */
  lua_Integer start_line = r->lineno + 1;
  lua_Integer lines_in = 0;
  char stack[MAX_DEPTH];
  int depth = 0, in_string = 0, escape = 0;
  size_t i = 0;
  int scalar = 0; /* the element is a bare scalar: ends at ',' ']' or whitespace */
  for (;;) {
    if (r->pos + i >= r->len) {
      if (i > r->max_record) {
        return json_fail(L, r, "element larger than the record limit", start_line);
      }
      int n = fill(r);
      if (n < 0) return gz_fail(L, r);
      if (n == 0) {
        if (scalar && !in_string && depth == 0) break;
        return json_fail(L, r, "unexpected end of input inside an element", start_line);
      }
      continue;
    }
    char c = r->buf[r->pos + i];
    if (in_string) {
      if (escape) escape = 0;
      else if (c == '\\') escape = 1;
      else if (c == '"') {
        in_string = 0;
        if (depth == 0) { i++; break; }
      } else if (c == '\n') lines_in++;
      i++;
      continue;
    }
    if (c == '"') { in_string = 1; i++; continue; }
    if (c == '{' || c == '[') {
      if (depth >= MAX_DEPTH) return json_fail(L, r, "nesting too deep", start_line);
      stack[depth++] = (c == '{') ? '}' : ']';
      i++;
      continue;
    }
    if (c == '}' || c == ']') {
      if (depth == 0) {
        if (scalar) break;
        return json_fail(L, r, "unbalanced brackets", start_line + lines_in);
      }
      if (stack[depth - 1] != c) return json_fail(L, r, "mismatched brackets", start_line + lines_in);
      depth--;
      i++;
      if (depth == 0) break;
      continue;
    }
    if (depth == 0) {
      if (c == ',' || is_space(c)) break;
      scalar = 1;
    }
    if (c == '\n') lines_in++;
    i++;
  }
  lua_pushlstring(L, r->buf + r->pos, i);
  r->pos += i;
  r->consumed += (long long)i;
  r->lineno += lines_in;
  lua_pushinteger(L, start_line);
  return 2;
}

static int reader_tell(lua_State *L) {
  Reader *r = check_reader(L);
  lua_pushinteger(L, (lua_Integer)r->consumed);
  return 1;
}

static int reader_raw_tell(lua_State *L) {
  Reader *r = check_reader(L);
  lua_pushinteger(L, (lua_Integer)gzoffset(r->gz));
  return 1;
}

static int reader_lineno(lua_State *L) {
  Reader *r = check_reader(L);
  lua_pushinteger(L, r->lineno);
  return 1;
}

static int reader_close(lua_State *L) {
  Reader *r = (Reader *)luaL_checkudata(L, 1, READER_MT);
  reader_release(r);
  return 0;
}

static int reader_tostring(lua_State *L) {
  Reader *r = (Reader *)luaL_checkudata(L, 1, READER_MT);
  lua_pushfstring(L, "aep.lines.Reader (%s)", r->gz ? "open" : "closed");
  return 1;
}

static const luaL_Reg reader_methods[] = {
    {"line", reader_line},   {"array_item", reader_array_item},
    {"read", reader_read},   {"tell", reader_tell},
    {"raw_tell", reader_raw_tell}, {"lineno", reader_lineno},
    {"close", reader_close}, {NULL, NULL}};

static const luaL_Reg lines_funcs[] = {
    {"open", lines_open},
    {"has_long_number", lines_has_long_number},
    {"quote_long_integers", lines_quote_long_integers},
    {NULL, NULL}};

int luaopen_aep_lines(lua_State *L) {
  aep_new_type(L, READER_MT, reader_methods, reader_close, reader_tostring);
  luaL_newlib(L, lines_funcs);
  return 1;
}
