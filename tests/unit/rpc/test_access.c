/* Unit tests of socket access: address parsing (ports, paths, IPv6
 * brackets), the token comparison, and the token file's checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "access.h"
#include "addr.h"

static void parses_good_addresses(void **state) {
  (void)state;
  rpc_addr a;
  char err[400];
  assert_int_equal(rpc_addr_parse(&a, "tcp:127.0.0.1:7000", err, sizeof err), 0);
  assert_int_equal(a.kind, RPC_ADDR_TCP);
  assert_string_equal(a.host, "127.0.0.1");
  assert_int_equal(a.port, 7000);
  assert_true(rpc_addr_is_loopback(&a));
  assert_int_equal(rpc_addr_parse(&a, "tcp:[::1]:65535", err, sizeof err), 0);
  assert_string_equal(a.host, "::1");
  assert_int_equal(a.port, 65535);
  assert_true(rpc_addr_is_loopback(&a));
  assert_int_equal(rpc_addr_parse(&a, "tcp:127.0.0.1:0", err, sizeof err), 0);
  assert_int_equal(a.port, 0);
  assert_int_equal(rpc_addr_parse(&a, "tcp:10.0.0.1:1", err, sizeof err), 0);
  assert_false(rpc_addr_is_loopback(&a));
  assert_int_equal(rpc_addr_parse(&a, "unix:/run/x.sock", err, sizeof err), 0);
  assert_int_equal(a.kind, RPC_ADDR_UNIX);
  assert_string_equal(a.path, "/run/x.sock");
}

static void rejects_bad_addresses(void **state) {
  (void)state;
  static const char *const bad[] = {
      "tcp:127.0.0.1:70000", "tcp:127.0.0.1:65536", "tcp:127.0.0.1:-1", "tcp:127.0.0.1:",
      "tcp:127.0.0.1:7x",    "tcp:127.0.0.1:+80",   "tcp:127.0.0.1",    "tcp::7000",
      "tcp:[::1:7000",       "unix:",               "udp:1.2.3.4:5",    "127.0.0.1:7000",
      "tcp:127.0.0.1:0000099999",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rpc_addr a;
    char err[400] = "";
    assert_int_equal(rpc_addr_parse(&a, bad[i], err, sizeof err), -EINVAL);
    assert_true(err[0] != '\0');
  }
  char long_path[200] = "unix:/";
  memset(long_path + 6, 'x', 120);
  rpc_addr a;
  char err[400];
  assert_int_equal(rpc_addr_parse(&a, long_path, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "at most 107 bytes"));
}

static void token_comparison(void **state) {
  (void)state;
  const char *t = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  assert_true(rpc_access_token_equal(t, t, strlen(t)));
  char other[65];
  memcpy(other, t, 65);
  other[63] = '0';
  assert_false(rpc_access_token_equal(t, other, 64));
  other[63] = 'f';
  other[0] = '1';
  assert_false(rpc_access_token_equal(t, other, 64));
  assert_false(rpc_access_token_equal(t, t, 63));           /* a prefix */
  assert_false(rpc_access_token_equal(t, "", 0));
  char longer[70];
  snprintf(longer, sizeof longer, "%s00", t);
  assert_false(rpc_access_token_equal(t, longer, 66));      /* an extension */
}

static void token_file_made_read_and_checked(void **state) {
  (void)state;
  char dir[] = "/tmp/crucible-access-XXXXXX";
  assert_non_null(mkdtemp(dir));
  setenv("XDG_RUNTIME_DIR", dir, 1);
  char tok[RPC_ACCESS_TOKEN_LEN + 1], again[RPC_ACCESS_TOKEN_LEN + 1], path[4200], err[600];
  assert_int_equal(rpc_access_token_create(tok, path, sizeof path, err, sizeof err), 0);
  assert_int_equal(strlen(tok), RPC_ACCESS_TOKEN_LEN);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(rpc_access_token_read(again, err, sizeof err), 0);
  assert_string_equal(tok, again);
  /* a new token each time */
  assert_int_equal(rpc_access_token_create(again, NULL, 0, err, sizeof err), 0);
  assert_string_not_equal(tok, again);
  /* a token file others can read is refused */
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(rpc_access_token_read(again, err, sizeof err), -EPERM);
  /* so is a directory open to others */
  char sub[200];
  snprintf(sub, sizeof sub, "%s/crucible", dir);
  assert_int_equal(chmod(sub, 0755), 0);
  assert_true(rpc_access_token_create(tok, NULL, 0, err, sizeof err) < 0);
  assert_non_null(strstr(err, "chmod 700"));
  unlink(path);
  rmdir(sub);
  rmdir(dir);
  unsetenv("XDG_RUNTIME_DIR");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_good_addresses),
      cmocka_unit_test(rejects_bad_addresses),
      cmocka_unit_test(token_comparison),
      cmocka_unit_test(token_file_made_read_and_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
