/*
 * libFuzzer harness for address parsing and formatting (csrc/sockaddr.c):
 * arbitrary text as a literal host in every family, and as a unix path.
 * What parses must format back to text that parses to the same address;
 * nothing may overrun a buffer; over-long paths are refused, never cut.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sockaddr.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 4096) return 0;
  int port = data[0] | (data[1] << 8);
  char *text = malloc(size - 1);
  memcpy(text, data + 2, size - 2);
  text[size - 2] = '\0';
  static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
  for (int i = 0; i < 3; i++) {
    csock_Addr a, back;
    if (!csock_addr_numeric(text, port, families[i], &a)) continue;
    CHECK(a.len <= sizeof a.ss);
    CHECK(families[i] == AF_UNSPEC || a.ss.ss_family == families[i]);
    char host[CSOCK_ADDRSTRLEN];
    int p = csock_addr_format((struct sockaddr *)&a.ss, a.len, host, sizeof host);
    CHECK(p == port);
    CHECK(strlen(host) < sizeof host);
    if (a.ss.ss_family == AF_INET) { /* the hand-made dotted quad is inet_ntop's */
      char libc[INET_ADDRSTRLEN];
      CHECK(inet_ntop(AF_INET, &((struct sockaddr_in *)&a.ss)->sin_addr, libc, sizeof libc) != NULL);
      CHECK(strcmp(libc, host) == 0);
    }
    CHECK(csock_addr_numeric(host, port, a.ss.ss_family, &back) == 1);
    CHECK(back.len == a.len && memcmp(&back.ss, &a.ss, a.len) == 0);
  }
  /* unix paths: the bytes up to the first zero, as a script's path */
  size_t plen = strlen(text);
  csock_Addr u;
  int r = csock_addr_unix(&u, text, plen);
  if (plen >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    CHECK(r < 0);
  } else {
    CHECK(r == 0);
    char path[CSOCK_ADDRSTRLEN];
    csock_addr_format((struct sockaddr *)&u.ss, u.len, path, sizeof path);
    CHECK(strcmp(path, text) == 0);
  }
  free(text);
  return 0;
}
