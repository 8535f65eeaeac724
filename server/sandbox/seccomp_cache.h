/* The seccomp program kept on disk between starts: building it with
 * libseccomp costs milliseconds of CPU per process, loading it costs one
 * read. The file holds the program with the key it was built for and a
 * checksum; anything that does not match in every byte is ignored and the
 * program rebuilt, so a stale, truncated or corrupted file can never make
 * the filter weaker than a fresh build. */
#ifndef CRUCIBLE_SANDBOX_SECCOMP_CACHE_H
#define CRUCIBLE_SANDBOX_SECCOMP_CACHE_H

#include <stddef.h>

/* The cache file's name under Crucible's cache directory
 * ($XDG_CACHE_HOME/crucible, else ~/.cache/crucible). */
#define SBX_SECCOMP_CACHE_NAME "seccomp.bpf"
/* A program longer than the kernel's BPF_MAXINSNS (4096) instructions of
 * 8 bytes is never valid. */
#define SBX_SECCOMP_CACHE_MAX_PROG (4096 * 8)
/* The header (magic, key, length, checksum) is at most this long. */
#define SBX_SECCOMP_CACHE_MAX_HEADER 1024

/* ---- pure (unit-tested) ---- */

/* The file's bytes for prog (len bytes) built under key (one line of
 * printable text). Returns 0 and a new buffer *out of *outlen bytes (caller
 * frees), or -EINVAL (empty or over-long key or program, a length not a
 * multiple of 8, a key with a control character). */
int sbx_seccomp_cache_encode(const char *key, const void *prog, size_t len, char **out, size_t *outlen);

/* Checks a file's bytes (buf, n) against key: the magic, the key exactly,
 * a length that is a non-zero multiple of 8 within
 * SBX_SECCOMP_CACHE_MAX_PROG and equal to what follows the header, and the
 * checksum over key and program. Returns 0 with *prog pointing into buf
 * and *len its size, or -EINVAL (malformed, truncated, corrupted) or
 * -ESTALE (well formed, another key). */
int sbx_seccomp_cache_decode(const char *buf, size_t n, const char *key, const char **prog, size_t *len);

/* ---- runtime ---- */

/* What the program built by sbx_seccomp_build depends on, as one line: the
 * rule list (sbx_seccomp_spec_hash), this binary's build id (or, without
 * one, its size and modification time), libseccomp's run-time version and
 * API level (its kernel feature probes), the kernel release and the
 * machine. Returns 0 and the key in buf, or -ENAMETOOLONG. */
int sbx_seccomp_cache_key(char *buf, size_t cap);

/* Reads path and decodes it against key. Returns 0 and a new buffer *prog
 * (caller frees) of *len bytes, or a negative errno: -ENOENT (no file),
 * -EINVAL/-ESTALE (see decode; also not a regular file, or too big). */
int sbx_seccomp_cache_load(const char *path, const char *key, char **prog, size_t *len);

/* Writes the file atomically: a temporary file (mode 0600) in the same
 * folder, renamed over path; missing folders above it are made (0755, as
 * the environments' folders under the same cache folder). Returns
 * 0 or a negative errno (nothing left behind). */
int sbx_seccomp_cache_store(const char *path, const char *key, const void *prog, size_t len);

#endif
