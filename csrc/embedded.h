/* The Lua modules built into the library (see embed_lua.lua). */
#ifndef CSOCK_EMBEDDED_H
#define CSOCK_EMBEDDED_H

#include <stddef.h>

typedef struct csock_Embedded {
  const char *name;   /* module name for require */
  const char *path;   /* source file, for messages */
  const char *source;
  size_t size;
} csock_Embedded;

extern const csock_Embedded csock_embedded[]; /* ends with a NULL name */

#endif
