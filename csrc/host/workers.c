/*
 * csock --workers N: the parent forks N workers, each its own process and
 * Lua state running the script (listeners share ports through
 * SO_REUSEPORT, so the kernel spreads connections). A worker that dies is
 * started again, after a growing pause if it dies at once again. SIGINT or
 * SIGTERM to the parent passes SIGTERM to every worker, waits for them
 * (their graceful stop, plus a margin), and exits 0. A worker whose script
 * simply finishes (exit status 0) is not started again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "host.h"

#define QUICK_DEATH 1.0  /* seconds: dying sooner than this means "back off" */
#define MAX_BACKOFF 5.0

typedef struct Worker {
  pid_t pid;          /* 0: not running */
  double started;
  double restart_at;  /* when to start it again */
  double backoff;
} Worker;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the child: returns 0 and the caller goes on to run the script. */
static pid_t start(Worker *w, int index, const sigset_t *old) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    char id[16];
    snprintf(id, sizeof id, "%d", index + 1);
    setenv("CSOCK_WORKER", id, 1);
    /* Its own process group: a terminal's ^C reaches only the parent, which
     * stops workers once, gracefully. And it ends if the parent dies. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(EXIT_FAILURE);
    sigprocmask(SIG_SETMASK, old, NULL);
    return 0;
  }
  if (pid < 0) {
    fprintf(stderr, "csock: cannot start worker %d: %s\n", index + 1, strerror(errno));
    w->restart_at = now() + 1.0;
    return -1;
  }
  w->pid = pid;
  w->started = now();
  return pid;
}

void csock_host_supervise(int n, double grace) {
  Worker *workers = calloc((size_t)n, sizeof *workers);
  if (workers == NULL) {
    fprintf(stderr, "csock: not enough memory\n");
    exit(EXIT_FAILURE);
  }
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, &old);
  for (int i = 0; i < n; i++)
    if (start(&workers[i], i, &old) == 0) { free(workers); return; }
  double stop_by = 0; /* set once stopping */
  for (;;) {
    struct timespec tick = {0, 100 * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &tick);
    double t = now();
    if ((sig == SIGINT || sig == SIGTERM) && stop_by == 0) {
      stop_by = t + grace + 2.0;
      for (int i = 0; i < n; i++)
        if (workers[i].pid > 0) kill(workers[i].pid, SIGTERM);
    }
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (int i = 0; i < n; i++) {
        Worker *w = &workers[i];
        if (w->pid != pid) continue;
        w->pid = 0;
        if (stop_by > 0) break;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) { /* its script finished */
          w->restart_at = -1;
          break;
        }
        int quick = t - w->started < QUICK_DEATH;
        w->backoff = quick ? (w->backoff > 0 ? w->backoff * 2 : 0.1) : 0;
        if (w->backoff > MAX_BACKOFF) w->backoff = MAX_BACKOFF;
        w->restart_at = t + w->backoff;
        fprintf(stderr, "csock: worker %d (pid %d) %s %d; restarting%s\n", i + 1, (int)pid,
                WIFSIGNALED(status) ? "killed by signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                w->backoff > 0 ? " after a pause" : "");
      }
    }
    int running = 0, pending = 0;
    for (int i = 0; i < n; i++) {
      Worker *w = &workers[i];
      if (w->pid == 0 && stop_by == 0 && w->restart_at >= 0 && t >= w->restart_at)
        if (start(w, i, &old) == 0) { free(workers); return; }
      running += w->pid > 0;
      pending += w->pid == 0 && w->restart_at >= 0;
    }
    if (stop_by == 0 && running + pending == 0) exit(EXIT_SUCCESS); /* all scripts finished */
    if (stop_by > 0 && (running == 0 || t >= stop_by)) {
      for (int i = 0; i < n; i++)
        if (workers[i].pid > 0) kill(workers[i].pid, SIGKILL);
      while (waitpid(-1, NULL, 0) > 0) {}
      exit(EXIT_SUCCESS);
    }
  }
}
