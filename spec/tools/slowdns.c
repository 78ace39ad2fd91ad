/*
 * LD_PRELOAD shim for the specs, so that they never send a DNS query:
 * names under ".invalid" (RFC 6761: never resolvable) are answered here.
 * A name ending in ".slow.invalid" is a name server that never answers:
 * it sleeps CSOCK_SLOWDNS_SECONDS (default 3), then fails with EAI_AGAIN.
 * Any other ".invalid" name fails at once with EAI_NONAME, as a resolver
 * would. Every other name goes to the real getaddrinfo (/etc/hosts for the
 * names the specs use).
 *
 * Built by `make test` (build/spec/slowdns.so, preloaded for the whole
 * spec) and, for their children, by spec/faults_connect_spec.lua and
 * spec/faults_signals_spec.lua (H.build_shim).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
  static const char suffix[] = ".slow.invalid";
  size_t n = node ? strlen(node) : 0, k = sizeof suffix - 1;
  if (n >= k && strcmp(node + n - k, suffix) == 0) {
    const char *env = getenv("CSOCK_SLOWDNS_SECONDS");
    double s = env ? atof(env) : 3.0;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
    return EAI_AGAIN;
  }
  static const char invalid[] = ".invalid";
  k = sizeof invalid - 1;
  if (n >= k && strcmp(node + n - k, invalid) == 0) return EAI_NONAME;
  if (real == NULL)
    real = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
        dlsym(RTLD_NEXT, "getaddrinfo");
  return real(node, service, hints, res);
}
