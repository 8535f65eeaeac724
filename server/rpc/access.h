/* Who may use a socket server: the secret token a tcp client must present
 * (made, stored and read here) and its constant-time comparison. The peer
 * credentials of a unix socket are read by rpc_conn_peer_uid (conn.h). */
#ifndef CRUCIBLE_RPC_ACCESS_H
#define CRUCIBLE_RPC_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

/* 32 random bytes written as lowercase hex. */
#define RPC_ACCESS_TOKEN_LEN 64

/* Writes the path of the token file into buf: $XDG_RUNTIME_DIR/crucible/token,
 * or, when XDG_RUNTIME_DIR is unset or empty, ${TMPDIR:-/tmp}/crucible-UID/token
 * (UID the effective uid). Returns 0 or -ENAMETOOLONG. */
int rpc_access_token_path(char *buf, size_t cap);

/* Makes a new token from getrandom() and stores it in the token file,
 * replacing an older one: the directory is created mode 0700 when missing,
 * and refused when it is a symlink, not ours or open to other users; the file
 * is written 0600 under a temporary name and renamed into place. token gets
 * RPC_ACCESS_TOKEN_LEN hex characters and a NUL; path (may be NULL) the file's
 * path. Returns 0, or a negative errno with a message in err that says what
 * to do. The token is never written anywhere else. */
int rpc_access_token_create(char token[RPC_ACCESS_TOKEN_LEN + 1], char *path, size_t path_cap,
                            char *err, size_t errlen);

/* Reads the token a server stored with rpc_access_token_create. Refuses a
 * file that is a symlink, is not ours or can be read by other users. Returns
 * 0, or a negative errno with a message in err. */
int rpc_access_token_read(char token[RPC_ACCESS_TOKEN_LEN + 1], char *err, size_t errlen);

/* Compares a presented token with the expected one in time that depends only
 * on the lengths, never on where they differ. expected is NUL-terminated. */
bool rpc_access_token_equal(const char *expected, const char *given, size_t given_len);

#endif
