/* The csock executable's parts: main.c (a lua5.4-like interpreter with the
 * loop), workers.c (the --workers supervisor). */
#ifndef CSOCK_HOST_H
#define CSOCK_HOST_H

/* Forks n workers and supervises them: restarts the ones that die (with a
 * back-off when they die at once), stops all on SIGINT/SIGTERM. Returns
 * (with CSOCK_WORKER=i set) only in a worker; the parent exits. */
void csock_host_supervise(int n, double grace);

#endif
