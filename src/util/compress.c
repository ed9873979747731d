/* lz4 and zstd behind the two calls of compress.h. The varint32 length prefix is the only
 * framing added here; see compress.h for the exact byte layout.
 *
 * zstd's one-shot calls (ZSTD_compress, ZSTD_decompress) allocate and free a context of a
 * hundred KB or more per call, which for a 4 KiB block costs more than the work. Each thread
 * therefore keeps one compression and one decompression context (thread-specific data,
 * created on first use, freed by the key's destructor when the thread exits; a context left
 * in a failed state is reset by the next call). If a context cannot be allocated, the
 * one-shot call is used instead. */
#include "util/compress.h"

#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"

/* An lz4 block expands at most ~255x (a 1-byte literal run plus a match of length 255 per
 * two-ish input bytes); a claimed size beyond this bound cannot be genuine, and refusing it
 * keeps a corrupt prefix from asking for gigabytes of memory. */
#define LZ4_MAX_RATIO 255

static int compress_lz4(mf_slice in, mf_buf *out) {
  int bound = LZ4_compressBound((int)in.len);
  if (bound <= 0) return MF_ERR(MAYFLY_EINVAL, "lz4: input of %zu bytes too large", in.len);
  int rc = mf_buf_reserve(out, (size_t)bound);
  if (rc) return rc;
  int n = LZ4_compress_default(in.data, out->data + out->len, (int)in.len, bound);
  if (n <= 0) return MF_ERR(MAYFLY_EIO, "lz4: compression of %zu bytes failed", in.len);
  out->len += (size_t)n;
  return MAYFLY_OK;
}

typedef struct zstd_contexts {
  ZSTD_CCtx *c; /* NULL until first needed */
  ZSTD_DCtx *d;
} zstd_contexts;

static pthread_key_t zstd_key;
static pthread_once_t zstd_key_once = PTHREAD_ONCE_INIT;
static int zstd_key_ok;

static void zstd_contexts_free(void *p) {
  zstd_contexts *z = p;
  ZSTD_freeCCtx(z->c);
  ZSTD_freeDCtx(z->d);
  free(z);
}

static void zstd_key_create(void) {
  zstd_key_ok = pthread_key_create(&zstd_key, zstd_contexts_free) == 0;
}

/* This thread's contexts, or NULL (out of memory: the caller uses the one-shot call). */
static zstd_contexts *thread_contexts(void) {
  pthread_once(&zstd_key_once, zstd_key_create);
  if (!zstd_key_ok) return NULL;
  zstd_contexts *z = pthread_getspecific(zstd_key);
  if (!z && (z = calloc(1, sizeof *z)) && pthread_setspecific(zstd_key, z) != 0) {
    free(z);
    z = NULL;
  }
  return z;
}

static int compress_zstd(int level, mf_slice in, mf_buf *out) {
  size_t bound = ZSTD_compressBound(in.len);
  int rc = mf_buf_reserve(out, bound);
  if (rc) return rc;
  zstd_contexts *z = thread_contexts();
  if (z && !z->c) z->c = ZSTD_createCCtx();
  size_t n = z && z->c
                 ? ZSTD_compressCCtx(z->c, out->data + out->len, bound, in.data, in.len, level)
                 : ZSTD_compress(out->data + out->len, bound, in.data, in.len, level);
  if (ZSTD_isError(n))
    return MF_ERR(MAYFLY_EIO, "zstd: compression of %zu bytes failed: %s", in.len,
                  ZSTD_getErrorName(n));
  out->len += n;
  return MAYFLY_OK;
}

int compress_block(int type, int level, mf_slice in, mf_buf *out) {
  size_t start = out->len;
  int rc;
  if (type == MF_COMPRESSION_NONE) return mf_buf_append(out, in.data, in.len);
  if (type != MF_COMPRESSION_LZ4 && type != MF_COMPRESSION_ZSTD)
    return MF_ERR(MAYFLY_EINVAL, "unknown compression type %d", type);
  /* LZ4 takes int sizes; the varint32 prefix takes uint32. Blocks are far smaller. */
  if (in.len > (size_t)INT32_MAX)
    return MF_ERR(MAYFLY_EINVAL, "block of %zu bytes too large to compress", in.len);
  rc = put_varint32(out, (uint32_t)in.len);
  if (!rc) rc = type == MF_COMPRESSION_LZ4 ? compress_lz4(in, out) : compress_zstd(level, in, out);
  if (rc) out->len = start;
  return rc;
}

static int decompress_lz4(mf_slice payload, uint32_t ulen, mf_buf *out) {
  if (payload.len > (size_t)INT32_MAX || (uint64_t)ulen > (uint64_t)payload.len * LZ4_MAX_RATIO + 16)
    return MF_ERR(MAYFLY_ECORRUPT, "lz4: claimed size %u impossible for %zu compressed bytes",
                  ulen, payload.len);
  /* Exactly: a cached block is charged its length, so doubling would pin up to twice the
   * cache's capacity. +1: never a NULL buffer, even for 0. */
  int rc = mf_buf_reserve_exact(out, (size_t)ulen + 1);
  if (rc) return MF_ERR(rc, "lz4: no memory for %u decompressed bytes", ulen);
  int n = LZ4_decompress_safe(payload.data, out->data + out->len, (int)payload.len, (int)ulen);
  if (n < 0 || (uint32_t)n != ulen)
    return MF_ERR(MAYFLY_ECORRUPT, "lz4: payload of %zu bytes does not decode to %u bytes",
                  payload.len, ulen);
  out->len += ulen;
  return MAYFLY_OK;
}

static int decompress_zstd(mf_slice payload, uint32_t ulen, mf_buf *out) {
  /* ZSTD_compress records the content size in the frame header; it must agree with the
   * prefix before we trust either to size an allocation. */
  unsigned long long content = ZSTD_getFrameContentSize(payload.data, payload.len);
  if (content != (unsigned long long)ulen)
    return MF_ERR(MAYFLY_ECORRUPT, "zstd: frame content size does not match claimed size %u",
                  ulen);
  /* Exactly: a cached block is charged its length, so doubling would pin up to twice the
   * cache's capacity. +1: never a NULL buffer, even for 0. */
  int rc = mf_buf_reserve_exact(out, (size_t)ulen + 1);
  if (rc) return rc;
  zstd_contexts *z = thread_contexts();
  if (z && !z->d) z->d = ZSTD_createDCtx();
  size_t n = z && z->d ? ZSTD_decompressDCtx(z->d, out->data + out->len, ulen, payload.data,
                                             payload.len)
                       : ZSTD_decompress(out->data + out->len, ulen, payload.data, payload.len);
  if (ZSTD_isError(n) || n != ulen)
    return MF_ERR(MAYFLY_ECORRUPT, "zstd: payload of %zu bytes does not decode to %u bytes%s%s",
                  payload.len, ulen, ZSTD_isError(n) ? ": " : "",
                  ZSTD_isError(n) ? ZSTD_getErrorName(n) : "");
  out->len += ulen;
  return MAYFLY_OK;
}

int decompress_block(int type, mf_slice in, size_t max_len, mf_buf *out) {
  size_t start = out->len;
  uint32_t ulen;
  int rc;
  if (type == MF_COMPRESSION_NONE) return mf_buf_append(out, in.data, in.len);
  if (type != MF_COMPRESSION_LZ4 && type != MF_COMPRESSION_ZSTD)
    return MF_ERR(MAYFLY_ECORRUPT, "unknown compression type %d", type);
  if (!get_varint32(&in, &ulen))
    return MF_ERR(MAYFLY_ECORRUPT, "compressed block has no valid length prefix");
  /* zstd's ratio has no useful bound (a run of equal bytes shrinks ~30000:1), so a claim is
   * bounded by the largest thing the caller's format can hold; a larger one is damage, found
   * before it sizes an allocation. */
  if (ulen > max_len)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: claimed size %u exceeds the largest possible (%zu)",
                  type == MF_COMPRESSION_LZ4 ? "lz4" : "zstd", ulen, max_len);
  rc = type == MF_COMPRESSION_LZ4 ? decompress_lz4(in, ulen, out) : decompress_zstd(in, ulen, out);
  if (rc) out->len = start;
  return rc;
}
