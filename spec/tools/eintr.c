/*
 * LD_PRELOAD shim for spec/faults_signals_spec.lua: makes every blocking syscall of
 * the process it is loaded into see EINTR, often.
 *
 * Its constructor installs a do-nothing SIGALRM handler *without*
 * SA_RESTART and an interval timer that fires every CSOCK_EINTR_USEC
 * microseconds (default 1000), so poll, epoll_wait, clock_nanosleep,
 * accept, connect, recv and send are interrupted over and over. poll and
 * epoll_wait are wrapped to count how often they returned EINTR; at exit
 * the counts go to stderr as
 *   eintr: <signals> signals, <n> interrupted waits
 * so the spec can tell the signals really arrived and really interrupted.
 *
 * Built by the spec: cc -shared -fPIC -o eintr.so spec/tools/eintr.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

static atomic_long signals, interrupted;

static void on_alarm(int sig) {
  (void)sig;
  atomic_fetch_add(&signals, 1);
}

__attribute__((constructor)) static void arm(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: interrupted syscalls fail with EINTR */
  sigaction(SIGALRM, &sa, NULL);
  const char *env = getenv("CSOCK_EINTR_USEC");
  long usec = env ? atol(env) : 1000;
  if (usec <= 0) usec = 1000;
  struct itimerval it;
  it.it_interval.tv_sec = usec / 1000000;
  it.it_interval.tv_usec = usec % 1000000;
  it.it_value = it.it_interval;
  setitimer(ITIMER_REAL, &it, NULL);
}

__attribute__((destructor)) static void report(void) {
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, NULL);
  char line[128];
  int n = snprintf(line, sizeof line, "eintr: %ld signals, %ld interrupted waits\n",
                   (long)atomic_load(&signals), (long)atomic_load(&interrupted));
  if (n > 0) {
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
  }
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
  static int (*real)(struct pollfd *, nfds_t, int);
  if (real == NULL) real = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
  int r = real(fds, nfds, timeout);
  if (r < 0 && errno == EINTR) atomic_fetch_add(&interrupted, 1);
  return r;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
  static int (*real)(int, struct epoll_event *, int, int);
  if (real == NULL) real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
  int r = real(epfd, events, maxevents, timeout);
  if (r < 0 && errno == EINTR) atomic_fetch_add(&interrupted, 1);
  return r;
}
