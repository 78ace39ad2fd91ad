/*
 * The transport: the one door every byte of a socket passes through.
 * Buffered reads, writes, copyto, the output queue and orphans call only
 * these; the plain transport (stream.c) is the system calls themselves,
 * and another transport (TLS) is one more table of the same functions.
 *
 * Each function returns what the system call would: a count, or -errno;
 * -EAGAIN means "wait, then call again". What a transport shares with
 * its callers, in the socket:
 * - `cross`: a transport that must wait for the readiness of the other
 *   direction to go on (a TLS read that has to write first) sets its bit
 *   for the operation's direction; csock_wait waits for that readiness.
 * - `drained`: set when the transport knows its next recv would say
 *   EAGAIN until the socket is reported readable again (the engine's
 *   report, or a finished wait, clears it); readers may skip the recv
 *   while it is set. A transport that holds bytes below csock's buffer
 *   (`pending`) must keep it clear while it does; csock_wait never waits
 *   for readability while `pending` says there are bytes.
 * Lua-free.
 */
#ifndef CSOCK_STREAM_H
#define CSOCK_STREAM_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct csock_Socket;

typedef struct csock_Transport {
  const char *name;
  ssize_t (*recv)(struct csock_Socket *s, void *buf, size_t len);
  ssize_t (*send)(struct csock_Socket *s, const void *buf, size_t len);
  ssize_t (*sendv)(struct csock_Socket *s, const struct iovec *iov, int iovcnt);
  /* Datagrams, and a stream's recvfrom/sendto (sa: NULL for none). */
  ssize_t (*recvfrom)(struct csock_Socket *s, void *buf, size_t len, struct sockaddr *sa,
                      socklen_t *salen);
  ssize_t (*sendto)(struct csock_Socket *s, const void *buf, size_t len,
                    const struct sockaddr *sa, socklen_t salen);
  /* Bytes that can be read without the kernel (buffered below csock's own
   * receive buffer): a reader must not wait for readiness while any are. */
  size_t (*pending)(struct csock_Socket *s);
  int (*shutdown)(struct csock_Socket *s, int how);
  /* The socket is closing: let go of the transport's own state. */
  void (*close)(struct csock_Socket *s);
} csock_Transport;

extern const csock_Transport csock_plain;

#endif
