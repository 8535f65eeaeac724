/* Parsing of "unix:PATH" and "tcp:HOST:PORT" socket addresses. */
#include "addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, int *port) {
  if (!*s || strlen(s) > 5) return -EINVAL;
  int v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -EINVAL;
    v = v * 10 + (*p - '0');
  }
  if (v > 65535) return -EINVAL;
  *port = v;
  return 0;
}

int rpc_addr_parse(rpc_addr *self, const char *spec, char *err, size_t errlen) {
  memset(self, 0, sizeof *self);
  if (!strncmp(spec, "unix:", 5)) {
    const char *path = spec + 5;
    size_t n = strlen(path);
    if (!n) {
      snprintf(err, errlen, "unix:PATH needs a path, e.g. unix:/run/user/1000/crucible.sock");
      return -EINVAL;
    }
    if (n >= sizeof self->path) {
      snprintf(err, errlen, "unix:%s: a socket path may have at most %zu bytes (this one has %zu); "
               "choose a shorter path", path, sizeof self->path - 1, n);
      return -EINVAL;
    }
    self->kind = RPC_ADDR_UNIX;
    memcpy(self->path, path, n + 1);
    return 0;
  }
  if (!strncmp(spec, "tcp:", 4)) {
    const char *hp = spec + 4;
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp) {
      snprintf(err, errlen, "tcp:HOST:PORT needs a host and a port, e.g. tcp:127.0.0.1:7000");
      return -EINVAL;
    }
    const char *h = hp;
    size_t hl = (size_t)(colon - hp);
    if (h[0] == '[') {
      if (hl < 3 || h[hl - 1] != ']') {
        snprintf(err, errlen, "tcp:%s: an IPv6 host is written in brackets, e.g. tcp:[::1]:7000", hp);
        return -EINVAL;
      }
      h++;
      hl -= 2;
    }
    if (hl >= sizeof self->host) {
      snprintf(err, errlen, "tcp:%s: the host name is too long", hp);
      return -EINVAL;
    }
    if (parse_port(colon + 1, &self->port)) {
      snprintf(err, errlen, "tcp:%s: the port must be a number from 1 to 65535 (0 lets a listener pick one), "
               "not '%s'", hp, colon + 1);
      return -EINVAL;
    }
    memcpy(self->host, h, hl);
    self->host[hl] = '\0';
    self->kind = RPC_ADDR_TCP;
    return 0;
  }
  snprintf(err, errlen, "'%s' is not an address: write unix:PATH or tcp:HOST:PORT", spec);
  return -EINVAL;
}

bool rpc_addr_is_loopback(const rpc_addr *self) {
  if (self->kind != RPC_ADDR_TCP) return false;
  if (!strcmp(self->host, "::1")) return true;
  /* Four dotted decimal parts starting with 127 (the caller still checks it
   * is a valid IPv4 address). */
  return !strncmp(self->host, "127.", 4);
}
