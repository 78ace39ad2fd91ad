/*
 * The syscall layer: thin, Lua-free wrappers over the socket calls.
 * Every function returns >= 0 on success or -errno on failure, retries EINTR
 * itself, and never blocks: sockets are always non-blocking, and waiting is
 * the caller's business (csock_sys_wait, or the loop).
 */
#ifndef CSOCK_SYS_H
#define CSOCK_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Readiness a blocked operation waits for. */
#define CSOCK_WANT_READ  1
#define CSOCK_WANT_WRITE 2

/* Monotonic clock, in nanoseconds. */
int64_t csock_sys_now(void);
/* Sleeps until the monotonic time `when`, through signals. */
void csock_sys_sleep_until(int64_t when);

/* Times: every duration and deadline is in monotonic nanoseconds, and
 * CSOCK_FOREVER stands for "no limit". These are the only conversions. */
#define CSOCK_FOREVER (-1)
/* The longest duration kept as a number: from here on (about 31.7 years)
 * a duration means no limit. */
#define CSOCK_SECONDS_MAX 1e9
/* Seconds as nanoseconds: CSOCK_FOREVER from CSOCK_SECONDS_MAX up
 * (infinity included) and for NaN; callers reject negatives and NaN
 * before, where the caller can say so. */
int64_t csock_sys_duration(double seconds);
/* The deadline `ns` from now, or CSOCK_FOREVER for CSOCK_FOREVER. */
int64_t csock_sys_deadline(int64_t ns);
/* Nanoseconds as the milliseconds poll(2) and epoll_wait take: rounded
 * up (a wait never ends early), capped at INT_MAX, -1 for CSOCK_FOREVER
 * (any negative). */
int csock_sys_ms(int64_t ns);
/* The milliseconds left until `deadline` (0 once it has passed), or -1. */
int csock_sys_ms_until(int64_t deadline);

int csock_sys_socket(int family, int type);
int csock_sys_close(int fd);
/* Starts a detached helper thread with every signal blocked; 0 or -errno. */
int csock_sys_thread(void *(*fn)(void *), void *arg, size_t stack);
/* Closes a socket whose SO_LINGER would make close(2) wait: the unsent
 * data still goes out, in the background. */
void csock_sys_close_nolinger(int fd);
int csock_sys_bind(int fd, const struct sockaddr *sa, socklen_t len);
int csock_sys_listen(int fd, int backlog);
/* Starts a connect; -EINPROGRESS means "wait for writable, then ask
 * csock_sys_connect_result". */
int csock_sys_connect(int fd, const struct sockaddr *sa, socklen_t len);
int csock_sys_connect_result(int fd);
/* Accepts into a non-blocking, close-on-exec fd; fills sa and len if given. */
int csock_sys_accept(int fd, struct sockaddr *sa, socklen_t *len);

ssize_t csock_sys_send(int fd, const void *buf, size_t len);
ssize_t csock_sys_sendv(int fd, const struct iovec *iov, int iovcnt);
ssize_t csock_sys_recv(int fd, void *buf, size_t len);
ssize_t csock_sys_sendto(int fd, const void *buf, size_t len,
                         const struct sockaddr *sa, socklen_t salen);
ssize_t csock_sys_recvfrom(int fd, void *buf, size_t len,
                           struct sockaddr *sa, socklen_t *salen);

/* True for the errors that mean "not now, wait and retry". */
int csock_sys_again(int err);

/* Blocks until fd is ready for `want` or the monotonic deadline passes
 * (deadline < 0: no deadline). Returns 1 ready, 0 timed out, -errno. */
int csock_sys_wait(int fd, int want, int64_t deadline);

#endif
