/*
 * Coalesced output. Inside a task, small writes wait in the socket's
 * bounded output buffer (s->out) instead of going to the kernel one by
 * one; the socket joins this queue, and before the engine polls, the
 * queue sends each socket's buffer in one call: one send per socket per
 * turn. What the kernel does not take waits for writability (`flushing`),
 * which keeps the loop alive until it is sent or fails (the failure is
 * kept in s->out_err for the next write to report). Lua-free.
 */
#ifndef CSOCK_OUTPUT_H
#define CSOCK_OUTPUT_H

#include <sys/types.h>
#include <sys/uio.h>

#include "engine.h"

struct csock_Socket;

typedef struct csock_Output {
  csock_Hook hook;             /* before each poll: flush the queue */
  csock_Engine *engine;
  struct csock_Socket *dirty;  /* sockets with output to send this turn */
} csock_Output;

void csock_output_init(csock_Output *q, csock_Engine *e);

/* Queues s for this turn's flush (once). */
void csock_output_markdirty(struct csock_Socket *s);
/* Takes s off the queue (it is closing). */
void csock_output_unmark(struct csock_Socket *s);
/* Sends what the kernel takes now, without waiting, then a shutdown that
 * waited for it: 0, or -errno (-EAGAIN: some is left). */
int csock_output_flushnow(struct csock_Socket *s);
/* With nothing queued on s: sends the n pieces at once and queues what the
 * kernel does not take if that is at most `most` bytes. Returns the bytes
 * sent or queued (fewer than all when the rest did not fit, or memory ran
 * short), or -errno when the send failed. */
ssize_t csock_output_sendqueue(struct csock_Socket *s, const struct iovec *iov, int n, size_t most);
/* Output failed with errno err: later writes report err, and what was
 * queued is dropped. */
void csock_output_fail(struct csock_Socket *s, int err);

#endif
