/* libFuzzer driver shared by every target in tests/fuzz.
 *
 * Each target fuzz_<name> is this file linked with the whole host but main.c (every native module,
 * the embedded Lua files), built with ASan + UBSan + coverage. At start-up it creates one Lua state
 * as the host does and runs tests/fuzz/fuzz_<name>.lua, which returns the function called with each
 * input. A Lua error escaping that function is a finding (the script catches the failures it
 * expects and asserts what must hold), so the driver reports it and aborts; memory errors and
 * undefined behaviour are caught by the sanitizers.
 *
 * The scripts get a small `fuzz` library of things plain Lua lacks: in-memory files, gzip,
 * loopback sockets, and aep.http's response parser (core/http_xfer.c's callbacks and response
 * builder, fed with fuzzed header and body bytes as curl would hand them over). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <zlib.h>

#include "aep.h"
#include "embed.h"

/* The real one lives in core/main.c, which is not linked into fuzz targets. */
volatile sig_atomic_t aep_interrupted = 0;

/* aep.http's internals: the header callback and the response builder. */
#include "http_xfer.h"

#ifndef FUZZ_SCRIPT
#error "FUZZ_SCRIPT must name the target's Lua script"
#endif

static lua_State *fuzz_L;
static int fuzz_fn = LUA_NOREF;

/* ---- the `fuzz` library ------------------------------------------------------------------- */

/* fuzz.memfile(data) -> path, fd : an in-memory file holding data ("/proc/self/fd/N") */
static int f_memfile(lua_State *L) {
  size_t n, off = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0) return luaL_error(L, "memfd_create: %s", strerror(errno));
  while (off < n) {
    ssize_t w = write(fd, s + off, n - off);
    if (w <= 0) {
      close(fd);
      return luaL_error(L, "write: %s", strerror(errno));
    }
    off += (size_t)w;
  }
  lua_pushfstring(L, "/proc/self/fd/%d", fd);
  lua_pushinteger(L, fd);
  return 2;
}

/* fuzz.close(fd) */
static int f_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* fuzz.gzip(data) -> gzip member holding data */
static int f_gzip(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  z_stream z;
  luaL_Buffer b;
  int rc;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return luaL_error(L, "deflateInit2 failed");
  z.next_in = (Bytef *)(uintptr_t)s;
  z.avail_in = (uInt)n;
  luaL_buffinit(L, &b);
  do {
    char *out = luaL_prepbuffsize(&b, 16384);
    z.next_out = (Bytef *)out;
    z.avail_out = 16384;
    rc = deflate(&z, Z_FINISH);
    luaL_addsize(&b, 16384 - z.avail_out);
  } while (rc == Z_OK);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return luaL_error(L, "deflate failed");
  luaL_pushresult(&b);
  return 1;
}

/* fuzz.connect(port) -> fd : a non-blocking TCP connection to 127.0.0.1:port (may be in progress) */
static int f_connect(lua_State *L) {
  struct sockaddr_in a;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return luaL_error(L, "socket: %s", strerror(errno));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)luaL_checkinteger(L, 1));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
    close(fd);
    return luaL_error(L, "connect: %s", strerror(errno));
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* fuzz.send(fd, data, from) -> bytes sent from position `from` (0 if it would block) | nil */
static int f_send(lua_State *L) {
  size_t n;
  int fd = (int)luaL_checkinteger(L, 1);
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer from = luaL_checkinteger(L, 3);
  ssize_t w;
  if (from < 1 || (size_t)from > n) return luaL_error(L, "fuzz.send: bad position");
  w = send(fd, s + from - 1, n - (size_t)from + 1, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS || errno == ENOTCONN) {
      lua_pushinteger(L, 0);
      return 1;
    }
    return 0;
  }
  lua_pushinteger(L, w);
  return 1;
}

/* fuzz.shutdown(fd): no more bytes from us */
static int f_shutdown(lua_State *L) {
  shutdown((int)luaL_checkinteger(L, 1), SHUT_WR);
  return 0;
}

/* fuzz.recv(fd) -> bytes read (> 0) | false (nothing yet) | nil (end of stream or error) */
static int f_recv(lua_State *L) {
  char buf[65536];
  ssize_t r = recv((int)luaL_checkinteger(L, 1), buf, sizeof buf, 0);
  if (r > 0) {
    lua_pushinteger(L, r);
    return 1;
  }
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return 0;
}

/* fuzz.http_response(header_bytes, body_bytes, max_body) -> what http.request returns for a
 * response whose header block and body are these bytes: header lines are handed to aep.http's
 * header callback one by one (each up to and including its "\n"), the body in chunks of up to
 * 16 KB, then the response table is built. */
static int f_http_response(lua_State *L) {
  static CURL *easy;
  size_t hn, bn, off;
  const char *h = luaL_checklstring(L, 1, &hn);
  const char *body = luaL_checklstring(L, 2, &bn);
  lua_Integer max_body = luaL_checkinteger(L, 3);
  xfer_t x;
  CURLcode rc = CURLE_OK;
  int nres;
  if (easy == NULL && (easy = curl_easy_init()) == NULL) return luaL_error(L, "curl_easy_init failed");
  memset(&x, 0, sizeof x);
  http_spec_init(&x.spec);
  x.easy = easy;
  x.spec.max_body = max_body;
  for (off = 0; off < hn && rc == CURLE_OK;) {
    const char *eol = memchr(h + off, '\n', hn - off);
    size_t len = eol ? (size_t)(eol - (h + off)) + 1 : hn - off;
    if (http_on_header((char *)(uintptr_t)(h + off), 1, len, &x) != len) rc = CURLE_WRITE_ERROR;
    off += len;
  }
  for (off = 0; off < bn && rc == CURLE_OK;) {
    size_t len = bn - off < 16384 ? bn - off : 16384;
    if (http_on_body((char *)(uintptr_t)(body + off), 1, len, &x) != len) rc = CURLE_WRITE_ERROR;
    off += len;
  }
  nres = http_xfer_outcome(L, &x, rc);
  x.easy = NULL; /* kept for the next input */
  http_xfer_free(&x);
  return nres;
}

/* Coverage of Lua code: libFuzzer only sees instrumented C, and the Lua interpreter is Debian's.
 * fuzz.cover_lua() sets a line hook that bumps one of libFuzzer's extra counters per
 * (previous line, line) pair, so inputs reaching new Lua code are kept too. */
#define LUA_EDGES 65536
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[LUA_EDGES];
static uintptr_t lua_prev;

static void line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t cur;
  if (!lua_getinfo(L, "S", ar)) return;
  cur = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 2654435761u);
  cur ^= cur >> 17;
  if (lua_edges[(cur ^ (lua_prev >> 1)) % LUA_EDGES] < 255) lua_edges[(cur ^ (lua_prev >> 1)) % LUA_EDGES]++;
  lua_prev = cur;
}

/* fuzz.cover_lua(): count the Lua lines each input runs as coverage */
static int f_cover_lua(lua_State *L) {
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

static const luaL_Reg fuzz_funcs[] = {
  {"cover_lua", f_cover_lua},
  {"memfile", f_memfile}, {"close", f_close},   {"gzip", f_gzip},
  {"connect", f_connect}, {"send", f_send},     {"shutdown", f_shutdown},
  {"recv", f_recv},       {"http_response", f_http_response}, {NULL, NULL}};

/* ---- libFuzzer entry points ---------------------------------------------------------------- */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : luaL_typename(L, 1), 1);
  return 1;
}

static void die(const char *what) {
  fprintf(stderr, "fuzz_%s: %s\n", FUZZ_TARGET, what);
  fflush(stderr);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L;
  (void)argc, (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) die("curl_global_init failed");
  L = fuzz_L = luaL_newstate();
  if (L == NULL) die("cannot create a Lua state");
  luaL_openlibs(L);
  aep_embed_install(L);
  /* The source tree's Lua first, as with AEP_LUA_PATH: edits need no rebuild. The default path
   * stays after it, as in the aep host (Debian's Lua modules live there). */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s;%s", AEP_SOURCE_DIR "/lua/?.lua;" AEP_SOURCE_DIR "/lua/?/init.lua",
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
  luaL_newlib(L, fuzz_funcs);
  lua_setglobal(L, "fuzz");
  lua_pushcfunction(L, traceback);
  if (luaL_loadfile(L, FUZZ_SCRIPT) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK)
    die(lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) die(FUZZ_SCRIPT " must return a function");
  fuzz_fn = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_L;
  lua_prev = 0;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_fn);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) die(lua_tostring(L, -1));
  lua_settop(L, 0);
  return 0;
}
