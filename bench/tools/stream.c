/* One connection streaming BYTES through an echo server: a writer thread sends
 * a pattern, the main thread reads it back concurrently and checks every byte.
 *
 *   stream PORT [BYTES] [TIMEOUT_S]     (defaults: 2 GiB, 120 s)
 *
 * Prints "bytes=N seconds=S mbps=M" (MiB/s) on success and exits 0; on a
 * mismatch, a short read or the time limit, prints the reason and exits 1.
 * Build: cc -O2 -pthread -o stream stream.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATLEN 65521u /* prime, so chunk boundaries drift over the pattern */
#define CHUNK 65536u
static unsigned char pattern[PATLEN + CHUNK];
static int fd;
static unsigned long long total;
static volatile int writer_failed;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *writer(void *arg) {
  (void)arg;
  unsigned long long off = 0;
  while (off < total) {
    size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
    ssize_t w = send(fd, pattern + off % PATLEN, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      perror("send");
      writer_failed = 1;
      return NULL;
    }
    off += (unsigned long long)w;
  }
  shutdown(fd, SHUT_WR);
  return NULL;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "error: time limit reached\n";
  if (write(1, msg, sizeof msg - 1)) {}
  _exit(1);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [BYTES] [TIMEOUT_S]\n", argv[0]); return 2; }
  int port = atoi(argv[1]);
  total = argc > 2 ? strtoull(argv[2], NULL, 10) : (2ull << 30);
  int limit = argc > 3 ? atoi(argv[3]) : 120;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm((unsigned)limit);
  uint32_t x = 2463534242u; /* xorshift pattern */
  for (unsigned i = 0; i < PATLEN; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    pattern[i] = (unsigned char)x;
  }
  for (unsigned i = PATLEN; i < PATLEN + CHUNK; i++) pattern[i] = pattern[i - PATLEN];
  fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double t0 = now();
  pthread_t th;
  pthread_create(&th, NULL, writer, NULL);
  static unsigned char buf[CHUNK];
  unsigned long long got = 0;
  while (got < total) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("recv");
      return 1;
    }
    if (r == 0) {
      printf("error: EOF after %llu of %llu bytes\n", got, total);
      return 1;
    }
    if (memcmp(buf, pattern + got % PATLEN, (size_t)r) != 0) {
      for (ssize_t i = 0; i < r; i++)
        if (buf[i] != pattern[(got + (unsigned long long)i) % PATLEN]) {
          printf("error: wrong byte at offset %llu\n", got + (unsigned long long)i);
          return 1;
        }
    }
    got += (unsigned long long)r;
  }
  double t = now() - t0;
  pthread_join(th, NULL);
  if (writer_failed) { printf("error: writer failed\n"); return 1; }
  /* the server should close its side after our FIN: nothing more may arrive */
  ssize_t extra = recv(fd, buf, sizeof buf, 0);
  if (extra > 0) { printf("error: %zd unexpected extra bytes\n", extra); return 1; }
  close(fd);
  printf("bytes=%llu seconds=%.3f mbps=%.1f\n", total, t, total / t / 1048576.0);
  return 0;
}
