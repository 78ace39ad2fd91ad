/*
 * The plain transport (see stream.h): the socket system calls, and the
 * one heuristic that belongs with them. A stream recv that does not fill
 * its buffer has emptied the kernel's queue, so the next recv would only
 * say EAGAIN: it waits for readiness first instead (`drained`, cleared
 * when the engine reports the socket readable). Not after a hangup: an
 * end of stream that came with the last bytes sends no new report. No Lua
 * here.
 */
#include <errno.h>
#include <sys/socket.h>

#include "socket.h"

static ssize_t plain_recv(csock_Socket *s, void *buf, size_t len) {
  if (s->drained) return -EAGAIN;
  ssize_t n = csock_sys_recv(s->io.fd, buf, len);
  if (n > 0 && s->type == SOCK_STREAM) s->drained = (size_t)n < len && !s->hup;
  return n;
}

static ssize_t plain_send(csock_Socket *s, const void *buf, size_t len) {
  return csock_sys_send(s->io.fd, buf, len);
}

static ssize_t plain_sendv(csock_Socket *s, const struct iovec *iov, int iovcnt) {
  return csock_sys_sendv(s->io.fd, iov, iovcnt);
}

static ssize_t plain_recvfrom(csock_Socket *s, void *buf, size_t len, struct sockaddr *sa,
                              socklen_t *salen) {
  return csock_sys_recvfrom(s->io.fd, buf, len, sa, salen);
}

static ssize_t plain_sendto(csock_Socket *s, const void *buf, size_t len,
                            const struct sockaddr *sa, socklen_t salen) {
  return csock_sys_sendto(s->io.fd, buf, len, sa, salen);
}

static size_t plain_pending(csock_Socket *s) {
  (void)s;
  return 0;
}

static int plain_shutdown(csock_Socket *s, int how) {
  return shutdown(s->io.fd, how) < 0 ? -errno : 0;
}

static void plain_close(csock_Socket *s) {
  (void)s;
}

const csock_Transport csock_plain = {
  "plain", plain_recv, plain_send, plain_sendv, plain_recvfrom, plain_sendto,
  plain_pending, plain_shutdown, plain_close,
};
