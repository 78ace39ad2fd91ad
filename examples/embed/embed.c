/*
 * A C program that embeds csock: it owns the main loop (poll(2)), gives
 * scripts one native function of its own, and hands a TCP service to Lua
 * (service.lua). It runs several independent Lua states side by side, one
 * port each, to show that nothing is shared between them.
 *
 *   make examples && build/examples/embed [-n STATES] [script]
 *   then: nc 127.0.0.1 <port printed>
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lualib.h"
#include "csock.h"

#define MAX_STATES 8

typedef struct Service {
  lua_State *L;
  long next_id;  /* the host's own state, reached by host.next_id() */
  int quit;
} Service;

static Service *service_of(lua_State *L) {
  return (Service *)lua_touserdata(L, lua_upvalueindex(1));
}

static int host_next_id(lua_State *L) {
  lua_pushinteger(L, ++service_of(L)->next_id);
  return 1;
}

static int host_quit(lua_State *L) {
  service_of(L)->quit = 1;
  return 0;
}

static void on_task_error(lua_State *L, const char *msg, void *ud) {
  (void)L;
  fprintf(stderr, "[state %d] task failed: %s\n", (int)(intptr_t)ud, msg);
}

static int start(Service *s, int index, const char *script) {
  static const luaL_Reg host_functions[] = {{"next_id", host_next_id}, {"quit", host_quit}, {NULL, NULL}};
  lua_State *L = s->L = luaL_newstate();
  luaL_openlibs(L);
  if (csock_open(L) != LUA_OK) goto fail;
  luaL_newlibtable(L, host_functions);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, host_functions, 1);
  lua_setglobal(L, "host");
  lua_pushfstring(L, "state%d", index + 1);
  lua_setglobal(L, "name");
  csock_onerror(L, on_task_error, (void *)(intptr_t)(index + 1));
  if (luaL_loadfile(L, script) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) goto fail;
  printf("state%d listening on 127.0.0.1:%d\n", index + 1, (int)lua_tointeger(L, -1));
  fflush(stdout);
  lua_pop(L, 1);
  return 0;
fail:
  fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
  return -1;
}

int main(int argc, char **argv) {
  int n = 1;
  const char *script = "examples/embed/service.lua";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) n = atoi(argv[++i]);
    else script = argv[i];
  }
  if (n < 1 || n > MAX_STATES) {
    fprintf(stderr, "embed: -n takes 1..%d\n", MAX_STATES);
    return 1;
  }
  Service services[MAX_STATES];
  memset(services, 0, sizeof services);
  for (int i = 0; i < n; i++)
    if (start(&services[i], i, script) < 0) return 1;

  /* The host's own loop: csock is one more thing it polls. */
  int running = n;
  while (running > 0) {
    struct pollfd fds[MAX_STATES];
    int timeout = -1;
    for (int i = 0; i < n; i++) {
      fds[i].fd = services[i].L ? csock_pollfd(services[i].L) : -1;
      fds[i].events = POLLIN;
      int t = services[i].L ? csock_nexttimeout(services[i].L) : -1;
      /* The poll(2) backend (CSOCK_BACKEND=poll) has no fd to watch: step
       * it every few milliseconds instead. */
      if (services[i].L && fds[i].fd < 0 && (t < 0 || t > 5)) t = 5;
      if (t >= 0 && (timeout < 0 || t < timeout)) timeout = t;
    }
    if (poll(fds, (nfds_t)n, timeout) < 0) continue;
    for (int i = 0; i < n; i++) {
      Service *s = &services[i];
      if (s->L == NULL) continue;
      csock_step(s->L, 0);
      if (s->quit) {
        csock_step(s->L, 0); /* let the goodbye go out */
        lua_close(s->L);
        s->L = NULL;
        printf("state%d stopped\n", i + 1);
        fflush(stdout);
        running--;
      }
    }
  }
  return 0;
}
