/* Socket addresses as the command line writes them: "unix:PATH" and
 * "tcp:HOST:PORT". Parsing only, no I/O. */
#ifndef CRUCIBLE_RPC_ADDR_H
#define CRUCIBLE_RPC_ADDR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum rpc_addr_kind { RPC_ADDR_UNIX = 1, RPC_ADDR_TCP } rpc_addr_kind;

/* Room for a unix socket path: sizeof(struct sockaddr_un.sun_path) on Linux. */
#define RPC_ADDR_PATH_MAX 108

typedef struct rpc_addr {
  rpc_addr_kind kind;
  char path[RPC_ADDR_PATH_MAX]; /* unix: the socket's path, NUL-terminated */
  char host[256];               /* tcp: the host, without [] around an IPv6 address */
  int port;                     /* tcp: 0..65535 */
} rpc_addr;

/* Parses "unix:PATH" or "tcp:HOST:PORT" (an IPv6 host may be written in
 * brackets, "tcp:[::1]:7000"). The port must be a decimal number from 0 to
 * 65535; 0 is accepted here and the caller decides what it means (a listener:
 * "pick one"). A unix path must fit in a sockaddr_un (at most 107 bytes):
 * longer paths are refused rather than cut short. Returns 0, or -EINVAL with
 * a message in err that says what to write instead. */
int rpc_addr_parse(rpc_addr *self, const char *spec, char *err, size_t errlen);

/* True for 127.0.0.0/8 and ::1 written as IP addresses. */
bool rpc_addr_is_loopback(const rpc_addr *self);

#endif
