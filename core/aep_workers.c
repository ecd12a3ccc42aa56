/* aep.workers: a pool of OS threads, each with its own Lua state, that turn text chunks into text
 * results. The mechanism only: what a chunk holds and what a worker does with it is the Lua
 * module each worker loads (policy in Lua). Lua states share nothing, so chunks and results cross
 * between threads as byte strings copied in and out under one mutex; results are taken back by
 * sequence number, so the caller consumes them in the order it submitted them whatever order the
 * workers finish in.
 *
 *   local pool, err = workers.start{n = 2, module = "aep.stream.worker", config = TEXT,
 *                                   path = package.path, cpath = package.cpath}
 *   local seq = pool:submit(chunk)        -- never blocks: the caller bounds what is in flight
 *   local result, err, code = pool:take(seq)  -- blocks until that chunk is done
 *   pool:close()
 *   workers.cores() -> the number of online processors
 *
 * Each worker state is opened as the host opens its own (standard libraries, the native modules
 * preloaded, the embedded-module searcher), runs require(module).init(config) once and calls the
 * function init returned with each chunk. A worker that raises while handling a chunk fails that
 * chunk (take returns nil and the message); an init that raises fails start. Worker threads block
 * every signal, so SIGINT and SIGTERM reach the host's handlers on the main thread; take polls
 * aep_interrupted so Ctrl-C ends a wait. close interrupts a worker still running Lua (a count hook
 * that raises), so a mapping that never returns cannot hang the exit. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "aep.h"
#include "embed.h"

#define POOL_MT "aep.workers.Pool"
#define MAX_WORKERS 256

typedef struct job {
  long seq;
  char *data; /* the chunk, then the result (or the error message when failed) */
  size_t len;
  int failed;
  struct job *next;
} job;

typedef struct pool pool;

typedef struct {
  pool *p;
  int index;
} worker_arg;

struct pool {
  pthread_mutex_t mu;
  pthread_cond_t work_cv; /* a job was queued, or the pool stops */
  pthread_cond_t done_cv; /* a job finished, or a worker finished its init */
  int n;
  pthread_t *threads;
  worker_arg *args;
  lua_State **states; /* set by each worker once its state exists (under mu) */
  int started;        /* threads created */
  job *queue_head, *queue_tail;
  job *done; /* finished jobs, any order */
  long next_seq;
  int stopping;
  int ready;        /* workers whose init ended */
  char *init_error; /* the first init failure */
  char *module, *config, *path, *cpath;
  int open;
};

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static void free_jobs(job *j) {
  while (j) {
    job *next = j->next;
    free(j->data);
    free(j);
    j = next;
  }
}

/* A hook that ends whatever Lua the worker runs: set by close on a worker still busy. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

static void set_path(lua_State *L, const char *field, const char *value) {
  if (!value) return;
  lua_getglobal(L, "package");
  lua_pushstring(L, value);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

/* In the worker's state: require(module).init(config) -> the chunk handler, left on the stack. */
static int worker_init(lua_State *L) {
  pool *p = (pool *)lua_touserdata(L, 1);
  luaL_openlibs(L);
  aep_embed_install(L);
  set_path(L, "path", p->path);
  set_path(L, "cpath", p->cpath);
  lua_getglobal(L, "require");
  lua_pushstring(L, p->module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "init");
  lua_pushstring(L, p->config);
  lua_call(L, 1, 1);
  if (!lua_isfunction(L, -1)) luaL_error(L, "%s.init did not return a function", p->module);
  return 1;
}

static void worker_ready(pool *p, const char *error) {
  pthread_mutex_lock(&p->mu);
  if (error && !p->init_error) p->init_error = dup_bytes(error, strlen(error));
  p->ready++;
  pthread_cond_broadcast(&p->done_cv);
  pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg) {
  worker_arg *wa = (worker_arg *)arg;
  pool *p = wa->p;
  lua_State *L = luaL_newstate();
  if (!L) {
    worker_ready(p, "cannot create a worker's Lua state: not enough memory");
    return NULL;
  }
  pthread_mutex_lock(&p->mu);
  p->states[wa->index] = L;
  pthread_mutex_unlock(&p->mu);
  lua_gc(L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(L, worker_init);
  lua_pushlightuserdata(L, p);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    worker_ready(p, msg ? msg : "(the worker's init raised a non-string error)");
    return NULL;
  }
  int handler = luaL_ref(L, LUA_REGISTRYINDEX);
  worker_ready(p, NULL);

  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->queue_head && !p->stopping) pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stopping) break;
    job *j = p->queue_head;
    p->queue_head = j->next;
    if (!p->queue_head) p->queue_tail = NULL;
    pthread_mutex_unlock(&p->mu);

    lua_rawgeti(L, LUA_REGISTRYINDEX, handler);
    lua_pushlstring(L, j->data, j->len);
    free(j->data);
    j->data = NULL;
    int st = lua_pcall(L, 1, 1, 0);
    size_t len = 0;
    const char *out = lua_tolstring(L, -1, &len);
    if (st != LUA_OK || !out) {
      j->failed = 1;
      if (!out) out = st != LUA_OK ? "(a worker raised a non-string error)" : "(a worker returned no text)";
      len = strlen(out);
    }
    j->data = dup_bytes(out, len);
    j->len = len;
    if (!j->data) {
      j->failed = 1;
      j->data = dup_bytes("out of memory", 13);
      j->len = j->data ? 13 : 0;
    }
    lua_settop(L, 0);

    pthread_mutex_lock(&p->mu);
    j->next = p->done;
    p->done = j;
    pthread_cond_broadcast(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Stop the threads (interrupting any Lua still running), join them, close their states. */
static void pool_shutdown(pool *p) {
  if (!p->open) return;
  p->open = 0;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  for (int i = 0; i < p->n; i++)
    if (p->states[i])
      lua_sethook(p->states[i], stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
  for (int i = 0; i < p->n; i++)
    if (p->states[i]) lua_close(p->states[i]);
  free_jobs(p->queue_head);
  free_jobs(p->done);
  p->queue_head = p->queue_tail = p->done = NULL;
  free(p->threads);
  free(p->args);
  free(p->states);
  free(p->init_error);
  free(p->module);
  free(p->config);
  free(p->path);
  free(p->cpath);
  p->threads = NULL;
  p->args = NULL;
  p->states = NULL;
  p->init_error = p->module = p->config = p->path = p->cpath = NULL;
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->done_cv);
}

static int pool_is_open(const void *h) { return ((const pool *)h)->open; }

static pool *check_pool(lua_State *L) {
  return (pool *)aep_check_handle(L, 1, POOL_MT, pool_is_open, "the worker pool is closed");
}

static char *opt_dup(lua_State *L, const char *k) {
  const char *s = aep_opt_string_field(L, 1, k, NULL);
  return s ? dup_bytes(s, strlen(s)) : NULL;
}

/* workers.start{n, module, config, path, cpath} -> pool | nil, err, code */
static int l_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = aep_opt_int_field(L, 1, "n", 0);
  if (n < 1 || n > MAX_WORKERS) return luaL_error(L, "bad argument #1 to 'start' ('n' must be 1 to %d)", MAX_WORKERS);
  const char *module = aep_opt_string_field(L, 1, "module", NULL);
  if (!module) return luaL_error(L, "bad argument #1 to 'start' ('module' is required)");
  pool *p = (pool *)lua_newuserdatauv(L, sizeof(pool), 0);
  memset(p, 0, sizeof(*p));
  luaL_setmetatable(L, POOL_MT);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  p->open = 1;
  p->n = (int)n;
  p->module = dup_bytes(module, strlen(module));
  p->config = opt_dup(L, "config");
  if (!p->config) p->config = dup_bytes("", 0);
  p->path = opt_dup(L, "path");
  p->cpath = opt_dup(L, "cpath");
  p->threads = calloc((size_t)n, sizeof(pthread_t));
  p->args = calloc((size_t)n, sizeof(worker_arg));
  p->states = calloc((size_t)n, sizeof(lua_State *));
  if (!p->threads || !p->args || !p->states || !p->module || !p->config) {
    pool_shutdown(p);
    return aep_fail(L, "cannot start the workers: not enough memory", "NOMEM");
  }
  /* the threads inherit this mask: signals stay with the main thread's handlers */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = 0;
  for (int i = 0; i < p->n; i++) {
    p->args[i].p = p;
    p->args[i].index = i;
    err = pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]);
    if (err) break;
    p->started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_mutex_lock(&p->mu);
  while (p->ready < p->started) pthread_cond_wait(&p->done_cv, &p->mu);
  char *init_error = p->init_error ? dup_bytes(p->init_error, strlen(p->init_error)) : NULL;
  pthread_mutex_unlock(&p->mu);
  if (err || init_error) {
    pool_shutdown(p);
    if (init_error) {
      lua_pushnil(L);
      lua_pushfstring(L, "a worker could not start: %s", init_error);
      free(init_error);
      lua_pushstring(L, "WORKER_INIT");
      return 3;
    }
    return aep_fail(L, lua_pushfstring(L, "cannot start worker threads: %s", strerror(err)), "THREAD");
  }
  return 1;
}

/* pool:submit(chunk) -> seq */
static int l_submit(lua_State *L) {
  pool *p = check_pool(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  job *j = calloc(1, sizeof(job));
  char *data = dup_bytes(s, len);
  if (!j || !data) {
    free(j);
    free(data);
    return luaL_error(L, "cannot queue a chunk for the workers: not enough memory");
  }
  j->data = data;
  j->len = len;
  pthread_mutex_lock(&p->mu);
  j->seq = ++p->next_seq;
  if (p->queue_tail) p->queue_tail->next = j;
  else p->queue_head = j;
  p->queue_tail = j;
  pthread_cond_signal(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  lua_pushinteger(L, j->seq);
  return 1;
}

/* pool:take(seq) -> result | nil, err, code ("WORKER" when the worker raised, "INTERRUPTED") */
static int l_take(lua_State *L) {
  pool *p = check_pool(L);
  lua_Integer seq = luaL_checkinteger(L, 2);
  if (seq < 1 || seq > p->next_seq) return luaL_error(L, "bad argument #2 to 'take' (no chunk %d)", (int)seq);
  pthread_mutex_lock(&p->mu);
  job *found = NULL;
  for (;;) {
    job **at = &p->done;
    while (*at && (*at)->seq != seq) at = &(*at)->next;
    if (*at) {
      found = *at;
      *at = found->next;
      break;
    }
    if (aep_interrupted) break;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->done_cv, &p->mu, &until);
  }
  pthread_mutex_unlock(&p->mu);
  if (!found) return aep_fail(L, "interrupted", "INTERRUPTED");
  int n;
  if (found->failed) {
    lua_pushnil(L);
    lua_pushlstring(L, found->data, found->len);
    lua_pushstring(L, "WORKER");
    n = 3;
  } else {
    lua_pushlstring(L, found->data, found->len);
    n = 1;
  }
  free(found->data);
  free(found);
  return n;
}

static int l_close(lua_State *L) {
  pool *p = (pool *)luaL_checkudata(L, 1, POOL_MT);
  pool_shutdown(p);
  return 0;
}

static int l_tostring(lua_State *L) {
  pool *p = (pool *)luaL_checkudata(L, 1, POOL_MT);
  if (p->open) lua_pushfstring(L, "aep.workers pool (%d workers)", p->n);
  else lua_pushstring(L, "aep.workers pool (closed)");
  return 1;
}

/* workers.cores() -> the number of online processors (at least 1) */
static int l_cores(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

static const luaL_Reg pool_methods[] = {{"submit", l_submit}, {"take", l_take}, {"close", l_close}, {NULL, NULL}};

static const luaL_Reg workers_funcs[] = {{"start", l_start}, {"cores", l_cores}, {NULL, NULL}};

int luaopen_aep_workers(lua_State *L) {
  aep_new_type(L, POOL_MT, pool_methods, l_close, l_tostring);
  luaL_newlib(L, workers_funcs);
  return 1;
}
