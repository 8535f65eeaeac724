/* Unit tests for http_addr_is_public: which addresses a request named by a
 * workspace may connect to (server/net/http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "http.h"

static bool pub(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) ss.ss_family = AF_INET6;
  else fail_msg("bad test address %s", ip);
  return http_addr_is_public((struct sockaddr *)&ss);
}

static void test_private_refused(void **state) {
  (void)state;
  static const char *const refused[] = {
      "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
      "169.254.169.254", "0.0.0.0", "0.1.2.3", "100.64.0.1", "224.0.0.1", "255.255.255.255",
      "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1",
      "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "::127.0.0.1",
  };
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    if (pub(refused[i])) fail_msg("%s counted as public", refused[i]);
}

static void test_public_allowed(void **state) {
  (void)state;
  static const char *const allowed[] = {
      "1.1.1.1", "8.8.8.8", "172.15.255.255", "172.32.0.1", "192.167.1.1", "100.128.0.1", "151.101.1.69",
      "2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
  };
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
    if (!pub(allowed[i])) fail_msg("%s counted as private", allowed[i]);
  assert_false(http_addr_is_public(NULL));
  struct sockaddr un = {.sa_family = AF_UNIX};
  assert_false(http_addr_is_public(&un));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_private_refused),
      cmocka_unit_test(test_public_allowed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
