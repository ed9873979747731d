/* Table construction; format in table/table.h.
 *
 * Separators: the index key of a data block must be >= its last key and < the next block's
 * first key. Using the last key itself is always correct; when the user keys differ we try a
 * shorter user key s with last < s < next (bump one byte after the common prefix) followed by
 * the largest trailer (MF_MAX_SEQ, MF_TYPE_FOR_SEEK), which sorts first among entries of s, so
 * the internal key (s, trailer) still lies strictly between the two blocks. The last block
 * gets a short successor of its last user key in the same way. Short index keys keep the
 * index (which every open table holds in memory) small. */
#include "table/table_builder.h"

#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "mayfly.h"
#include "table/block_builder.h"
#include "table/bloom.h"
#include "table/format.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/error.h"
#include "util/ikey.h"

struct table_builder {
  table_options o;
  mf_env *env;
  mf_wfile *file;
  char *fname;
  uint64_t offset; /* bytes written */
  uint64_t num_entries;
  block_builder data;
  block_builder index;
  mf_buf last_key;
  int pending_index; /* a data block was written; its index entry awaits the next key */
  block_handle pending_handle;
  uint64_t *hashes; /* bloom hashes of distinct user keys */
  size_t num_hashes, cap_hashes;
  mf_buf scratch; /* compression output and index handle encoding */
  int status;
  int finished;
};

int table_builder_create(const table_options *o, mf_env *env, mf_wfile *file, const char *fname,
                         table_builder **out) {
  *out = NULL;
  if (o->compression < MF_COMPRESSION_NONE || o->compression > MF_COMPRESSION_ZSTD ||
      o->bloom_bits_per_key < 0 || o->block_size == 0)
    return MF_ERR(MAYFLY_EINVAL, "%s: bad table options (compression %d, bloom bits %d, block "
                  "size %llu)", fname, o->compression, o->bloom_bits_per_key,
                  (unsigned long long)o->block_size);
  table_builder *b = calloc(1, sizeof *b);
  if (!b || !(b->fname = strdup(fname))) {
    free(b);
    return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a table builder", fname);
  }
  b->o = *o;
  b->env = env;
  b->file = file;
  block_builder_init(&b->data, o->block_restart_interval);
  block_builder_init(&b->index, 1);
  *out = b;
  return MAYFLY_OK;
}

void table_builder_destroy(table_builder *b) {
  if (!b) return;
  block_builder_free(&b->data);
  block_builder_free(&b->index);
  mf_buf_free(&b->last_key);
  mf_buf_free(&b->scratch);
  free(b->hashes);
  free(b->fname);
  free(b);
}

uint64_t table_builder_file_size(const table_builder *b) { return b->offset; }
uint64_t table_builder_num_entries(const table_builder *b) { return b->num_entries; }

static int nomem(table_builder *b) {
  return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory building table", b->fname);
}

/* Writes contents + trailer (type, checksum) at the end of the file; sets *h. */
static int write_raw_block(table_builder *b, mf_slice contents, int type, block_handle *h) {
  char trailer[BLOCK_TRAILER_SIZE];
  trailer[0] = (char)type;
  encode_fixed32(trailer + 1, mf_checksum_seeded((uint64_t)type, contents.data, contents.len));
  int rc = b->env->append(b->file, contents.data, contents.len);
  if (!rc) rc = b->env->append(b->file, trailer, sizeof trailer);
  if (rc) return rc;
  h->offset = b->offset;
  h->size = contents.len;
  b->offset += contents.len + BLOCK_TRAILER_SIZE;
  return MAYFLY_OK;
}

/* Compresses when that saves at least 1/8 of the bytes; otherwise stores the block as is. */
static int write_block(table_builder *b, mf_slice raw, int type, block_handle *h) {
  if (type != MF_COMPRESSION_NONE) {
    mf_buf_clear(&b->scratch);
    int rc = compress_block(type, b->o.compression_level, raw, &b->scratch);
    if (rc) return rc;
    if (b->scratch.len <= raw.len - raw.len / 8)
      return write_raw_block(b, mf_buf_slice(&b->scratch), type, h);
  }
  return write_raw_block(b, raw, MF_COMPRESSION_NONE, h);
}

static int flush_data_block(table_builder *b) {
  mf_slice raw;
  if (block_builder_empty(&b->data)) return MAYFLY_OK;
  int rc = block_builder_finish(&b->data, &raw);
  if (rc) return nomem(b);
  rc = write_block(b, raw, b->o.compression, &b->pending_handle);
  if (rc) return rc;
  block_builder_reset(&b->data);
  b->pending_index = 1;
  return MAYFLY_OK;
}

/* Sets *sep to a short internal key in [last, next) (next may be NULL: any key >= last). */
static int make_separator(mf_slice last, const mf_slice *next, mf_buf *sep) {
  mf_slice lu = ikey_user_key(last);
  size_t i = 0;
  if (next) {
    mf_slice nu = ikey_user_key(*next);
    size_t min = lu.len < nu.len ? lu.len : nu.len;
    while (i < min && lu.data[i] == nu.data[i]) i++;
    /* Bump lu[i] if the result stays below nu[i]; then lu[0..i] < nu and > lu. */
    if (i < min) {
      unsigned char c = (unsigned char)lu.data[i];
      if (c < 0xff && c + 1 < (unsigned char)nu.data[i]) goto shorten;
    }
    return mf_buf_set(sep, last.data, last.len);
  }
  /* Successor: bump the first byte that is not 0xff and cut after it. */
  while (i < lu.len && (unsigned char)lu.data[i] == 0xff) i++;
  if (i == lu.len) return mf_buf_set(sep, last.data, last.len);
shorten:;
  int rc = mf_buf_set(sep, lu.data, i + 1);
  if (rc) return rc;
  sep->data[i] = (char)((unsigned char)sep->data[i] + 1);
  return put_fixed64(sep, ikey_pack(MF_MAX_SEQ, MF_TYPE_FOR_SEEK));
}

static int add_index_entry(table_builder *b, const mf_slice *next_key) {
  mf_buf sep = MF_BUF_INIT;
  int rc = make_separator(mf_buf_slice(&b->last_key), next_key, &sep);
  mf_buf_clear(&b->scratch);
  if (!rc) rc = block_handle_encode(&b->pending_handle, &b->scratch);
  if (!rc) rc = block_builder_add(&b->index, mf_buf_slice(&sep), mf_buf_slice(&b->scratch));
  mf_buf_free(&sep);
  if (rc) return rc == MAYFLY_ENOMEM ? nomem(b) : rc;
  b->pending_index = 0;
  return MAYFLY_OK;
}

static int remember_hash(table_builder *b, mf_slice ikey) {
  mf_slice user = ikey_user_key(ikey);
  /* Versions of one user key are adjacent; hash each user key once. */
  if (b->num_entries > 0 && mf_slice_equal(user, ikey_user_key(mf_buf_slice(&b->last_key))))
    return MAYFLY_OK;
  if (b->num_hashes == b->cap_hashes) {
    size_t cap = b->cap_hashes ? 2 * b->cap_hashes : 1024;
    uint64_t *h = realloc(b->hashes, cap * sizeof *h);
    if (!h) return nomem(b);
    b->hashes = h;
    b->cap_hashes = cap;
  }
  b->hashes[b->num_hashes++] = bloom_hash(user);
  return MAYFLY_OK;
}

static int add(table_builder *b, mf_slice ikey, mf_slice value) {
  int rc;
  if (b->finished) return MF_ERR(MAYFLY_EINVAL, "%s: add after finish", b->fname);
  if (ikey.len < 8)
    return MF_ERR(MAYFLY_EINVAL, "%s: internal key of %zu bytes (< 8)", b->fname, ikey.len);
  if (b->num_entries > 0 && ikey_compare(ikey, mf_buf_slice(&b->last_key)) <= 0)
    return MF_ERR(MAYFLY_EINVAL, "%s: keys added out of order (entry %llu)", b->fname,
                  (unsigned long long)b->num_entries);
  /* An entry as large as a block starts a block of its own: the entries before it then
   * stay in a small block, which a read of one of them loads (and a cache holds) without
   * the large value. */
  if (ikey.len + value.len >= b->o.block_size && !block_builder_empty(&b->data) &&
      (rc = flush_data_block(b)))
    return rc;
  if (b->pending_index && (rc = add_index_entry(b, &ikey))) return rc;
  if (b->o.bloom_bits_per_key > 0 && (rc = remember_hash(b, ikey))) return rc;
  if ((rc = block_builder_add(&b->data, ikey, value)))
    return rc == MAYFLY_ENOMEM ? nomem(b) : rc;
  if (mf_buf_set(&b->last_key, ikey.data, ikey.len)) return nomem(b);
  b->num_entries++;
  if (block_builder_size_estimate(&b->data) >= b->o.block_size) return flush_data_block(b);
  return MAYFLY_OK;
}

int table_builder_add(table_builder *b, mf_slice ikey, mf_slice value) {
  if (b->status) return b->status;
  return b->status = add(b, ikey, value);
}

static int finish(table_builder *b) {
  int rc;
  table_footer footer = {{0, 0}, {0, 0}, TABLE_FORMAT_VERSION};
  mf_slice contents;
  if (b->finished) return MF_ERR(MAYFLY_EINVAL, "%s: finish called twice", b->fname);
  b->finished = 1;
  if ((rc = flush_data_block(b))) return rc;
  if (b->o.bloom_bits_per_key > 0) {
    mf_buf_clear(&b->scratch);
    rc = bloom_build_from_hashes(b->hashes, b->num_hashes, b->o.bloom_bits_per_key, &b->scratch);
    if (rc) return rc;
    /* Written as is: a bloom filter is close to random bits and does not compress. */
    if ((rc = write_raw_block(b, mf_buf_slice(&b->scratch), MF_COMPRESSION_NONE, &footer.filter)))
      return rc;
  }
  if (b->pending_index && (rc = add_index_entry(b, NULL))) return rc;
  if ((rc = block_builder_finish(&b->index, &contents))) return nomem(b);
  /* The index stays uncompressed: it is read once per open and binary-searched in place. */
  if ((rc = write_raw_block(b, contents, MF_COMPRESSION_NONE, &footer.index))) return rc;
  char buf[TABLE_FOOTER_SIZE];
  table_footer_encode(&footer, buf);
  if ((rc = b->env->append(b->file, buf, sizeof buf))) return rc;
  b->offset += TABLE_FOOTER_SIZE;
  return MAYFLY_OK;
}

int table_builder_finish(table_builder *b) {
  if (b->status) return b->status;
  return b->status = finish(b);
}
