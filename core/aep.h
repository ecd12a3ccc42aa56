/* Helpers shared by aep's C files, defined in core/aep.c. Each native module is
 * core/aep_<name>.c and exports only luaopen_aep_<name>; the files it is split into (core/http_*,
 * core/server_*, core/kafka_*, core/crypto_*) declare what they share in their own header. */
#ifndef AEP_H
#define AEP_H

#include <signal.h>
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

/* Set to 1 by the host's SIGINT handler (core/main.c), cleared when the "interrupted" error has
 * been raised. Blocking native calls (curl transfers, pool waits, server loops) poll it so that
 * Ctrl-C ends them promptly; they return nil, "interrupted", "INTERRUPTED" and the host's Lua hook
 * then raises "interrupted" in the calling script. */
extern volatile sig_atomic_t aep_interrupted;

/* Set to 1 by the SIGTERM handler host.trap_term() installs (core/aep_host.c): the one
 * process-wide SIGTERM trap. Blocking calls that a drain must cut short (kafka's poll_batch) poll
 * it besides aep_interrupted. */
extern volatile sig_atomic_t aep_term_requested;

/* Version string of aep itself (set by CMake). */
#ifndef AEP_VERSION
#define AEP_VERSION "0.0.0-dev"
#endif

/* Push the conventional run-time failure triple: nil, message, code. Returns 3. */
int aep_fail(lua_State *L, const char *message, const char *code);

/* Optional fields of the options table at idx (an argument of the calling function): the default
 * d when the field is nil, else its value; a value of the wrong kind raises
 * "bad argument #N to 'fn' ('k' must be ...)". */
lua_Integer aep_opt_int_field(lua_State *L, int idx, const char *k, lua_Integer d);
int aep_opt_bool_field(lua_State *L, int idx, const char *k, int d);
/* A string field; the string stays alive in the options table. */
const char *aep_opt_string_field(lua_State *L, int idx, const char *k, const char *d);
/* A duration in seconds: a positive number, clamped to 1e9 (~31 years) so that its milliseconds
 * fit a long. */
double aep_opt_seconds_field(lua_State *L, int idx, const char *k, double d);
/* An optional seconds argument at arg (float, default def_s) as milliseconds, clamped to
 * [0, 24 h] (NaN gives 0). */
int aep_opt_millis(lua_State *L, int arg, double def_s);

/* Handles are full userdata whose metatable is named "aep.<module>.<Type>". aep_new_type creates
 * that metatable: methods in __index, release as __gc and __close (one idempotent release),
 * tostring as __tostring; methods, release or tostring may be NULL. */
void aep_new_type(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction release,
                  lua_CFunction tostring);
/* The handle at idx (raises unless its metatable is mt), or the raise closed_message when is_open
 * says it has been released. */
void *aep_check_handle(lua_State *L, int idx, const char *mt, int (*is_open)(const void *handle),
                       const char *closed_message);

/* Seconds on a clock that never jumps (CLOCK_MONOTONIC): deadlines and timeouts. */
double aep_monotonic(void);

#endif
