/*
 * The csock executable: `csock script.lua args...` behaves like
 * `lua5.4 script.lua args...` with csock loaded as the global `csock`, and
 * after the main chunk runs the loop until nothing is left, so a script
 * that only listens serves until stopped. SIGINT/SIGTERM stop it
 * gracefully (lua/csock/host.lua).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lualib.h"

#include "../csock.h"
#include "host.h"

#define PROGNAME "csock"
#define VERSION "csock 0.1.0 (" LUA_RELEASE ")"

static void usage(FILE *out) {
  fprintf(out,
          "usage: " PROGNAME " [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat       execute string 'stat'\n"
          "  -i            enter interactive mode after executing 'script'\n"
          "  -l mod        require library 'mod' into global 'mod'\n"
          "  -l g=mod      require library 'mod' into global 'g'\n"
          "  -v            show version information\n"
          "  -E            ignore environment variables (LUA_INIT)\n"
          "  --workers N   run N worker processes of the script (sharing ports via reuseport)\n"
          "  --grace S     seconds running handlers get after SIGINT/SIGTERM (default 5)\n"
          "  --help        show this help\n"
          "  --            stop handling options\n"
          "  -             stop handling options and execute stdin\n"
          "After the script, " PROGNAME " runs the csock loop until no task or timer is left.\n");
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    fprintf(stderr, "%s: %s\n", PROGNAME, msg);
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

typedef struct Options {
  int script;      /* index in argv of the script, 0 if none */
  int interactive, version, noenv, has_e, workers;
  double grace;
} Options;

/* Parses options like lua.c; returns 0, or -1 after printing an error. */
static int collect(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') { o->script = i; return 0; }
    if (strcmp(a, "-") == 0) { o->script = i; return 0; }
    if (strcmp(a, "--") == 0) { o->script = i + 1 < argc ? i + 1 : 0; return 0; }
    if (strcmp(a, "--help") == 0) { usage(stdout); exit(EXIT_SUCCESS); }
    if (strcmp(a, "--workers") == 0 || strcmp(a, "--grace") == 0) {
      char *end;
      if (i + 1 >= argc) goto missing;
      double v = strtod(argv[++i], &end);
      if (*end != '\0' || !(v >= 0) || (a[2] == 'w' && (v < 1 || v > 1024 || v != (int)v))) {
        fprintf(stderr, "%s: bad value '%s' for %s\n", PROGNAME, argv[i], a);
        return -1;
      }
      if (a[2] == 'w') o->workers = (int)v; else o->grace = v;
      continue;
    }
    if (a[1] == 'e' || a[1] == 'l') {
      if (a[1] == 'e') o->has_e = 1;
      if (a[2] == '\0' && (++i >= argc || argv[i][0] == '-')) goto missing;
      continue;
    }
    if (strcmp(a, "-i") == 0) { o->interactive = o->version = 1; continue; }
    if (strcmp(a, "-v") == 0) { o->version = 1; continue; }
    if (strcmp(a, "-E") == 0) { o->noenv = 1; continue; }
    fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, a);
    usage(stderr);
    return -1;
  missing:
    fprintf(stderr, "%s: '%s' needs an argument\n", PROGNAME, a);
    usage(stderr);
    return -1;
  }
  return 0;
}

/* arg: the script at 0, its arguments from 1, the interpreter's before. */
static void make_arg(lua_State *L, int argc, char **argv, int script) {
  int base = script ? script : argc;
  lua_createtable(L, argc - base, base + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static int run_options(lua_State *L, int argc, char **argv, int upto) {
  for (int i = 1; i < upto; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) {
      if (strcmp(a, "--workers") == 0 || strcmp(a, "--grace") == 0) i++;
      continue;
    }
    const char *v = a[2] ? a + 2 : argv[++i];
    int status;
    if (a[1] == 'e') {
      status = csock_dostring(L, v, "=(command line)");
    } else {
      const char *eq = strchr(v, '=');
      const char *mod = eq ? eq + 1 : v;
      lua_getglobal(L, "require");
      lua_pushstring(L, mod);
      status = lua_pcall(L, 1, 1, 0);
      if (status == LUA_OK) {
        if (eq) lua_pushlstring(L, v, (size_t)(eq - v)); else lua_pushstring(L, v);
        lua_insert(L, -2);
        lua_setglobal(L, lua_tostring(L, -2));
        lua_pop(L, 1);
      }
    }
    if (report(L, status) != LUA_OK) return 0;
  }
  (void)argc;
  return 1;
}

static int run_script(lua_State *L, int argc, char **argv, int script) {
  const char *name = argv[script];
  if (strcmp(name, "-") == 0 && strcmp(argv[script - 1], "--") != 0) name = NULL;
  int status = luaL_loadfile(L, name);
  if (status == LUA_OK) {
    int n = argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    lua_getglobal(L, "debug"); /* message handler: the traceback */
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    int base = lua_gettop(L) - n - 1;
    lua_insert(L, base);
    status = lua_pcall(L, n, 0, base);
    lua_remove(L, base);
  }
  return report(L, status) == LUA_OK;
}

static int host_exiting(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "csock.host");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return 0;
  }
  lua_getfield(L, -1, "exiting");
  int exiting = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return exiting;
}

static int install_host(lua_State *L, double grace) {
  char chunk[128];
  snprintf(chunk, sizeof chunk, "require('csock.host').install(%.17g)", grace);
  return report(L, csock_dostring(L, chunk, "=(host)")) == LUA_OK;
}

/* Lines from stdin, no readline: enough for trying things out. */
static void repl(lua_State *L) {
  char line[4096];
  lua_pushliteral(L, ""); /* the chunk being typed */
  for (;;) {
    int more = lua_rawlen(L, -1) > 0;
    fputs(more ? ">> " : "> ", stdout);
    fflush(stdout);
    if (fgets(line, sizeof line, stdin) == NULL) break;
    lua_pushstring(L, line);
    lua_concat(L, 2);
    const char *code = lua_tostring(L, -1);
    lua_pushfstring(L, "return %s", code);
    int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    lua_remove(L, -2);
    if (status != LUA_OK) {
      lua_pop(L, 1);
      status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
      if (status == LUA_ERRSYNTAX && strstr(lua_tostring(L, -1), "<eof>") != NULL) {
        lua_pop(L, 1); /* incomplete: read more */
        continue;
      }
    }
    lua_remove(L, -2); /* the source */
    int top = lua_gettop(L) - 1;
    if (status == LUA_OK) status = lua_pcall(L, 0, LUA_MULTRET, 0);
    if (status == LUA_OK && lua_gettop(L) > top) {
      lua_getglobal(L, "print");
      lua_insert(L, top + 1);
      status = lua_pcall(L, lua_gettop(L) - top - 1, 0, 0);
    }
    report(L, status);
    lua_settop(L, top);
    csock_step(L, 0); /* let tasks and timers move */
    lua_pushliteral(L, "");
  }
  lua_pop(L, 1);
  fputs("\n", stdout);
}

int main(int argc, char **argv) {
  Options o = {0, 0, 0, 0, 0, 0, 5.0};
  if (collect(argc, argv, &o) < 0) return EXIT_FAILURE;
  if (o.workers > 0) csock_host_supervise(o.workers, o.grace); /* returns in a worker */
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", PROGNAME);
    return EXIT_FAILURE;
  }
  luaL_openlibs(L);
  int ok = report(L, csock_open(L)) == LUA_OK;
  if (ok) make_arg(L, argc, argv, o.script);
  if (ok && o.version) printf("%s  Copyright (C) 1994-2022 Lua.org, PUC-Rio\n", VERSION);
  if (ok && !o.noenv) {
    const char *init = getenv("LUA_INIT_5_4");
    if (init == NULL) init = getenv("LUA_INIT");
    if (init != NULL)
      ok = report(L, init[0] == '@' ? csock_dofile(L, init + 1) : csock_dostring(L, init, "=LUA_INIT")) == LUA_OK;
  }
  if (ok) ok = install_host(L, o.grace);
  if (ok) ok = run_options(L, argc, argv, o.script ? o.script : argc);
  if (ok && o.script) ok = run_script(L, argc, argv, o.script);
  if (ok && !host_exiting(L)) ok = report(L, csock_run(L)) == LUA_OK;
  if (ok && o.interactive) repl(L);
  else if (ok && !o.script && !o.has_e && !o.version) {
    if (isatty(STDIN_FILENO)) {
      printf("%s  Copyright (C) 1994-2022 Lua.org, PUC-Rio\n", VERSION);
      repl(L);
    } else {
      ok = report(L, csock_dofile(L, NULL)) == LUA_OK;
      if (ok && !host_exiting(L)) ok = report(L, csock_run(L)) == LUA_OK;
    }
  }
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
