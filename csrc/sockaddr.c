/* Socket addresses (see sockaddr.h). No Lua here. */
#define _GNU_SOURCE
#include "sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

const char *csock_addr_familyname(int family) {
  switch (family) {
    case AF_INET: return "inet";
    case AF_INET6: return "inet6";
    case AF_UNIX: return "unix";
    default: return "?";
  }
}

int csock_addr_unix(csock_Addr *a, const char *path, size_t len) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  if (len >= sizeof un->sun_path) return -ENAMETOOLONG;
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, len);
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  return 0;
}

void csock_addr_any(csock_Addr *a, int family, int port) {
  memset(&a->ss, 0, sizeof a->ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons((uint16_t)port);
    a->len = sizeof *in6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = htons((uint16_t)port);
    a->len = sizeof *in;
  }
}

/* Literal addresses need no resolver: the common case on a hot path. */
int csock_addr_numeric(const char *host, int port, int family, csock_Addr *a) {
  memset(&a->ss, 0, sizeof a->ss);
  if (family != AF_INET6) {
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons((uint16_t)port);
      a->len = sizeof *in;
      return 1;
    }
  }
  if (family != AF_INET && strchr(host, '%') == NULL) { /* zones need getaddrinfo */
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons((uint16_t)port);
      a->len = sizeof *in6;
      return 1;
    }
  }
  return 0;
}

int csock_addr_resolve(const char *host, int port, int family, int socktype,
                       csock_Addr *out, int max, int *count) {
  *count = 0;
  if (max < 1) return 0;
  if (csock_addr_numeric(host, port, family, &out[0])) {
    *count = 1;
    return 0;
  }
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_ADDRCONFIG;
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(host, service, &hints, &res);
  if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY || rc == EAI_NODATA) {
    /* AI_ADDRCONFIG hides ::1 on hosts with only loopback IPv6: ask again plainly. */
    hints.ai_flags = 0;
    rc = getaddrinfo(host, service, &hints, &res);
  }
  if (rc != 0) return rc;
  for (ai = res; ai != NULL && *count < max; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof out[0].ss) continue;
    memcpy(&out[*count].ss, ai->ai_addr, ai->ai_addrlen);
    out[*count].len = ai->ai_addrlen;
    (*count)++;
  }
  freeaddrinfo(res);
  return *count > 0 ? 0 : EAI_NONAME;
}

/* Dotted quad, as inet_ntop writes it, without its sprintf per byte:
 * every accepted connection formats its peer's address. */
static void format_ipv4(const struct in_addr *a, char *host, size_t hostlen) {
  const unsigned char *b = (const unsigned char *)&a->s_addr;
  char text[16], *p = text;
  for (int i = 0; i < 4; i++) {
    unsigned v = b[i];
    if (v >= 100) *p++ = (char)('0' + v / 100);
    if (v >= 10) *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    *p++ = i < 3 ? '.' : '\0';
  }
  if ((size_t)(p - text) <= hostlen) memcpy(host, text, (size_t)(p - text));
}

int csock_addr_format(const struct sockaddr *sa, socklen_t len, char *host, size_t hostlen) {
  host[0] = '\0';
  switch (sa->sa_family) {
    case AF_INET: {
      const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
      format_ipv4(&in->sin_addr, host, hostlen);
      return ntohs(in->sin_port);
    }
    case AF_INET6: {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
      inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen);
      if (in6->sin6_scope_id != 0) {
        size_t n = strlen(host);
        snprintf(host + n, hostlen - n, "%%%u", (unsigned)in6->sin6_scope_id);
      }
      return ntohs(in6->sin6_port);
    }
    case AF_UNIX: {
      const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
      size_t off = offsetof(struct sockaddr_un, sun_path);
      size_t n = len > off ? len - off : 0;
      if (n > 0 && un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);
      else n = 0; /* unnamed (or abstract, which csock does not create) */
      if (n >= hostlen) n = hostlen - 1;
      memcpy(host, un->sun_path, n);
      host[n] = '\0';
      return 0;
    }
    default:
      return -1;
  }
}
