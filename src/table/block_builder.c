/* Block construction; the byte layout is in block_builder.h. */
#include "table/block_builder.h"

#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"

void block_builder_init(block_builder *b, int restart_interval) {
  mf_buf empty = MF_BUF_INIT;
  b->buf = b->restarts = b->last_key = empty;
  b->restart_interval = restart_interval < 1 ? 1 : restart_interval;
  b->counter = 0;
  b->finished = 0;
  b->num_entries = 0;
}

void block_builder_free(block_builder *b) {
  mf_buf_free(&b->buf);
  mf_buf_free(&b->restarts);
  mf_buf_free(&b->last_key);
}

void block_builder_reset(block_builder *b) {
  mf_buf_clear(&b->buf);
  mf_buf_clear(&b->restarts);
  mf_buf_clear(&b->last_key);
  b->counter = 0;
  b->finished = 0;
  b->num_entries = 0;
}

size_t block_builder_size_estimate(const block_builder *b) {
  if (b->finished) return b->buf.len;
  return b->buf.len + b->restarts.len + 4;
}

int block_builder_add(block_builder *b, mf_slice key, mf_slice value) {
  size_t shared = 0;
  int rc;
  if (key.len > UINT32_MAX || value.len > UINT32_MAX || b->buf.len > UINT32_MAX)
    return MF_ERR(MAYFLY_EINVAL, "block entry too large (key %zu, value %zu bytes)", key.len,
                  value.len);
  if (b->counter >= b->restart_interval || b->num_entries == 0) {
    rc = put_fixed32(&b->restarts, (uint32_t)b->buf.len);
    if (rc) return rc;
    b->counter = 0;
  } else {
    size_t min = key.len < b->last_key.len ? key.len : b->last_key.len;
    while (shared < min && key.data[shared] == b->last_key.data[shared]) shared++;
  }
  size_t non_shared = key.len - shared;
  char head[3 * MF_MAX_VARINT32_LEN], *p = head;
  p = encode_varint32(p, (uint32_t)shared);
  p = encode_varint32(p, (uint32_t)non_shared);
  p = encode_varint32(p, (uint32_t)value.len);
  if ((rc = mf_buf_reserve(&b->buf, (size_t)(p - head) + non_shared + value.len))) return rc;
  mf_buf_append(&b->buf, head, (size_t)(p - head)); /* cannot fail after the reserve */
  if (non_shared) mf_buf_append(&b->buf, key.data + shared, non_shared); /* data may be NULL */
  mf_buf_append(&b->buf, value.data, value.len);
  /* Keep last_key equal to key: only the differing tail needs copying. */
  if ((rc = mf_buf_reserve(&b->last_key, key.len > b->last_key.len ? key.len - b->last_key.len : 0)))
    return rc;
  b->last_key.len = shared;
  if (non_shared) mf_buf_append(&b->last_key, key.data + shared, non_shared);
  b->counter++;
  b->num_entries++;
  return MAYFLY_OK;
}

int block_builder_finish(block_builder *b, mf_slice *out) {
  if (!b->finished) {
    uint32_t num_restarts = (uint32_t)(b->restarts.len / 4);
    int rc = mf_buf_append(&b->buf, b->restarts.data, b->restarts.len);
    if (!rc) rc = put_fixed32(&b->buf, num_restarts);
    if (rc) return rc;
    b->finished = 1;
  }
  *out = mf_buf_slice(&b->buf);
  return MAYFLY_OK;
}
