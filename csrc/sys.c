/* The syscall layer (see sys.h). No Lua here. */
#define _GNU_SOURCE
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/uio.h>

int64_t csock_sys_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void csock_sys_sleep_until(int64_t when) {
  struct timespec ts = {(time_t)(when / 1000000000), (long)(when % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

int64_t csock_sys_duration(double seconds) {
  if (!(seconds < CSOCK_SECONDS_MAX)) return CSOCK_FOREVER; /* NaN too */
  return seconds <= 0 ? 0 : (int64_t)(seconds * 1e9);
}

int64_t csock_sys_deadline(int64_t ns) {
  return ns < 0 ? CSOCK_FOREVER : csock_sys_now() + ns;
}

int csock_sys_ms(int64_t ns) {
  if (ns < 0) return -1;
  int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

int csock_sys_ms_until(int64_t deadline) {
  if (deadline < 0) return -1;
  int64_t left = deadline - csock_sys_now();
  return csock_sys_ms(left < 0 ? 0 : left);
}

#define RESULT(call)                     \
  do {                                   \
    long r_;                             \
    do r_ = (long)(call);                \
    while (r_ < 0 && errno == EINTR);    \
    return r_ < 0 ? -errno : r_;         \
  } while (0)

int csock_sys_socket(int family, int type) {
  RESULT(socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

int csock_sys_close(int fd) {
  /* Linux releases the fd even when close reports EINTR: never retry. */
  return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int csock_sys_thread(void *(*fn)(void *), void *arg, size_t stack) {
  pthread_attr_t attr;
  pthread_t th;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, old; /* signals are the script's: the thread starts with all blocked */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(&th, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return -r;
}

void csock_sys_close_nolinger(int fd) {
  /* With SO_LINGER on, close(2) waits until the data is sent; with it off
   * the kernel sends it all the same, after close returns. */
  struct linger off = {0, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
  close(fd);
}

int csock_sys_bind(int fd, const struct sockaddr *sa, socklen_t len) {
  RESULT(bind(fd, sa, len));
}

int csock_sys_listen(int fd, int backlog) {
  RESULT(listen(fd, backlog));
}

int csock_sys_connect(int fd, const struct sockaddr *sa, socklen_t len) {
  /* An interrupted non-blocking connect goes on in the background, so
   * EINTR means the same as EINPROGRESS: do not call connect again. */
  if (connect(fd, sa, len) == 0) return 0;
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int csock_sys_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return -err;
}

int csock_sys_accept(int fd, struct sockaddr *sa, socklen_t *len) {
  RESULT(accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

ssize_t csock_sys_send(int fd, const void *buf, size_t len) {
  RESULT(send(fd, buf, len, MSG_NOSIGNAL));
}

ssize_t csock_sys_sendv(int fd, const struct iovec *iov, int iovcnt) {
  struct msghdr msg = {0};
  msg.msg_iov = (struct iovec *)iov;
  msg.msg_iovlen = (size_t)iovcnt;
  RESULT(sendmsg(fd, &msg, MSG_NOSIGNAL));
}

ssize_t csock_sys_recv(int fd, void *buf, size_t len) {
  RESULT(recv(fd, buf, len, 0));
}

ssize_t csock_sys_sendto(int fd, const void *buf, size_t len,
                         const struct sockaddr *sa, socklen_t salen) {
  RESULT(sendto(fd, buf, len, MSG_NOSIGNAL, sa, salen));
}

ssize_t csock_sys_recvfrom(int fd, void *buf, size_t len,
                           struct sockaddr *sa, socklen_t *salen) {
  RESULT(recvfrom(fd, buf, len, 0, sa, salen));
}

int csock_sys_again(int err) {
  if (err < 0) err = -err;
  return err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS;
}

int csock_sys_wait(int fd, int want, int64_t deadline) {
  struct pollfd p;
  p.fd = fd;
  p.events = (short)(((want & CSOCK_WANT_READ) ? POLLIN : 0) |
                     ((want & CSOCK_WANT_WRITE) ? POLLOUT : 0));
  for (;;) {
    p.revents = 0;
    int n = poll(&p, 1, csock_sys_ms_until(deadline)); /* a passed deadline still gets one look */
    if (n > 0) return 1; /* errors and hangups show as ready: the retry reports them */
    if (n < 0 && errno != EINTR) return -errno;
    if (n == 0 && deadline >= 0 && csock_sys_now() >= deadline) return 0;
  }
}
