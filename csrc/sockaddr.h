/*
 * Socket addresses: resolving "host", port into sockaddrs, unix paths, and
 * turning sockaddrs back into text. Lua-free.
 */
#ifndef CSOCK_SOCKADDR_H
#define CSOCK_SOCKADDR_H

#include <sys/socket.h>

typedef struct csock_Addr {
  struct sockaddr_storage ss;
  socklen_t len;
} csock_Addr;

/* Longest text form of an address: an IPv6 address with a zone, or a unix path. */
#define CSOCK_ADDRSTRLEN 112

/* "inet", "inet6", "unix", or "?" for another family. */
const char *csock_addr_familyname(int family);

/* Fills a unix address; -ENAMETOOLONG when the path does not fit. */
int csock_addr_unix(csock_Addr *a, const char *path, size_t len);

/* The wildcard address of an inet family, for host "*". */
void csock_addr_any(csock_Addr *a, int family, int port);

/* Parses a literal address (no resolver); 1 if host was one. */
int csock_addr_numeric(const char *host, int port, int family, csock_Addr *a);

/* Resolves host (numeric fast path first, then getaddrinfo) for one family
 * (AF_UNSPEC: any inet family). Fills up to max addresses and sets *count.
 * Returns 0 or a getaddrinfo EAI_* code. */
int csock_addr_resolve(const char *host, int port, int family, int socktype,
                       csock_Addr *out, int max, int *count);

/* Writes the host text (or unix path) into host and returns the port
 * (0 for unix); -1 for an unknown family. */
int csock_addr_format(const struct sockaddr *sa, socklen_t len, char *host, size_t hostlen);

#endif
