/* Native modules built as plugins (CMakeLists.txt, AEP_MODULE_LIBS_<name>): each is a shared
 * object embedded in the binary and linked against the libraries only that module needs
 * (librdkafka, libmicrohttpd, SQLite, PCRE2, readline, libcurl, OpenSSL, zlib). Start-up maps none
 * of them; the first require copies the object into a memfd and dlopens it, which loads its
 * libraries. The plugin resolves the Lua API and core/aep.h's helpers against the binary (-Wl,-E).
 * A memfd rather than a file next to the binary keeps aep a single self-contained file. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <lua.h>
#include <lauxlib.h>
#include "embed.h"

#define MAX_PLUGINS 64

/* One handle per module (index in aep_native_modules), loaded once per process, never closed:
 * a Lua state's handles may refer to the plugin's code until the process ends. */
static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;
static void *plugin_handles[MAX_PLUGINS];

/* Write the embedded object to a memfd and dlopen it; NULL with the reason in err. The memfd
 * stays open (close-on-exec) so that debuggers, valgrind and sanitizer symbolizers (other
 * processes: hence /proc/PID, not /proc/self) can read the object through the name dlopen
 * recorded, /proc/PID/fd/N. */
static void *open_embedded_plugin(const aep_native_module *m, char *err, size_t errlen) {
  int fd = memfd_create(m->name, MFD_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s cannot be loaded: memfd_create: %s", m->name, strerror(errno));
    return NULL;
  }
  const unsigned char *p = m->plugin;
  while (p < m->plugin_end) {
    ssize_t n = write(fd, p, (size_t)(m->plugin_end - p));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      snprintf(err, errlen, "%s cannot be loaded: writing its memfd: %s", m->name, strerror(errno));
      close(fd);
      return NULL;
    }
    p += n;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)getpid(), fd);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    if (!why) why = "dlopen failed";
    if (strncmp(why, path, strlen(path)) == 0) /* the object itself, not one of its libraries */
      snprintf(err, errlen, "%s cannot be loaded: %s (aep loads it through /proc: is /proc mounted?)",
               m->name, why);
    else
      snprintf(err, errlen,
               "%s cannot be loaded: %s (it needs the Debian package(s) %s: apt-get install %s)",
               m->name, why, m->packages, m->packages);
    close(fd);
    return NULL;
  }
  return h;
}

/* AEP_PLUGIN_DIR (the build's plugins/ folder) makes aep load the plugins from files there
 * instead: for valgrind, which cannot read debug information from a memfd. */
static void *open_plugin(const aep_native_module *m, char *err, size_t errlen) {
  const char *dir = getenv("AEP_PLUGIN_DIR");
  if (!dir || !*dir) return open_embedded_plugin(m, err, errlen);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.so", dir, m->name);
  char *dot = strrchr(path, '/') ? strchr(strrchr(path, '/'), '.') : NULL;
  if (dot) *dot = '_'; /* aep.sqlite -> aep_sqlite.so */
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    snprintf(err, errlen, "%s cannot be loaded from AEP_PLUGIN_DIR: %s", m->name, why ? why : "dlopen failed");
  }
  return h;
}

/* The plugin's handle, loading it on first use; NULL with the reason in err. */
static void *plugin_handle(const aep_native_module *m, char *err, size_t errlen) {
  size_t i = (size_t)(m - aep_native_modules);
  if (i >= MAX_PLUGINS) {
    snprintf(err, errlen, "%s cannot be loaded: more than %d native modules", m->name, MAX_PLUGINS);
    return NULL;
  }
  pthread_mutex_lock(&plugin_lock);
  void *h = plugin_handles[i];
  if (!h) h = plugin_handles[i] = open_plugin(m, err, errlen);
  pthread_mutex_unlock(&plugin_lock);
  return h;
}

static void *module_symbol(const aep_native_module *m, const char *symbol, char *err, size_t errlen) {
  void *h = m->open ? RTLD_DEFAULT : plugin_handle(m, err, errlen);
  if (!h) return NULL;
  void *sym = dlsym(h, symbol);
  if (!sym) snprintf(err, errlen, "%s has no symbol %s", m->name, symbol);
  return sym;
}

void *aep_native_symbol(const char *module, const char *symbol, char *err, size_t errlen) {
  for (const aep_native_module *m = aep_native_modules; m->name; m++)
    if (strcmp(m->name, module) == 0) return module_symbol(m, symbol, err, errlen);
  snprintf(err, errlen, "no native module %s", module);
  return NULL;
}

/* Only the libraries' headers are used here: the functions come from the plugins. */
const char *aep_curl_version(char *err, size_t errlen) {
  curl_version_info_data *(*info)(CURLversion);
  void *sym = aep_native_symbol("aep.http", "curl_version_info", err, errlen);
  if (!sym) return NULL;
  memcpy(&info, &sym, sizeof info);
  return info(CURLVERSION_NOW)->version;
}

const char *aep_openssl_version(char *err, size_t errlen) {
  const char *(*version)(int);
  void *sym = aep_native_symbol("aep.crypto", "OpenSSL_version", err, errlen);
  if (!sym) return NULL;
  memcpy(&version, &sym, sizeof version);
  return version(OPENSSL_VERSION);
}

int aep_plugin_loader(lua_State *L) {
  const aep_native_module *m = lua_touserdata(L, lua_upvalueindex(1));
  char err[1024];
  char opener[128];
  /* "aep.http" -> luaopen_aep_http, as Lua's C searcher names it */
  snprintf(opener, sizeof opener, "luaopen_%s", m->name);
  for (char *c = opener; *c; c++)
    if (*c == '.') *c = '_';
  lua_CFunction open;
  void *sym = module_symbol(m, opener, err, sizeof err);
  if (!sym) return luaL_error(L, "%s", err);
  memcpy(&open, &sym, sizeof open); /* POSIX: a dlsym'ed function pointer */
  lua_pushcfunction(L, open);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1); /* with require's arguments: name, loader data */
  return 1;
}
