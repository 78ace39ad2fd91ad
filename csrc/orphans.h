/*
 * Orphans: closed sockets whose output is still being sent. close() never
 * waits, yet output a task wrote must not be lost because the kernel's
 * buffer was full at that moment: the socket's fd, transport and unsent
 * output are adopted here until the rest is sent, the peer fails, or
 * CSOCK_ORPHAN_SECONDS pass; then the fd is closed. Until then the engine
 * counts the orphan as alive. Lua-free.
 */
#ifndef CSOCK_ORPHANS_H
#define CSOCK_ORPHANS_H

#include "engine.h"

#define CSOCK_ORPHAN_SECONDS 30

struct csock_Socket;
typedef struct csock_Orphan csock_Orphan;

typedef struct csock_Orphans {
  csock_Hook hook;        /* teardown: every orphan's fd is closed */
  csock_Engine *engine;
  csock_Orphan *list;
  int count;              /* in the list: closed sockets still sending */
} csock_Orphans;

void csock_orphans_init(csock_Orphans *os, csock_Engine *e);
/* Takes over s's fd, transport and unsent output: 1, and s is left with
 * nothing to close; or 0 (out of memory, or the engine is closing), and
 * the caller closes s. */
int csock_orphans_adopt(csock_Orphans *os, struct csock_Socket *s);
/* Closes an fd the way a socket is closed: never waiting, even with SO_LINGER set. */
void csock_closefd(int fd, int lingers);

#endif
