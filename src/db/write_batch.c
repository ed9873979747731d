#include "db/write_batch.h"

#include "db/options.h"
#include "util/error.h"
#include "util/ikey.h"

int batch_init(struct mayfly_batch *b) { return batch_init_sized(b, 256); }

int batch_init_sized(struct mayfly_batch *b, size_t capacity) {
  b->rep = (mf_buf)MF_BUF_INIT;
  b->user_bytes = 0;
  int rc = mf_buf_reserve(&b->rep, capacity > MF_BATCH_HEADER ? capacity : MF_BATCH_HEADER);
  if (rc) return MF_ERR(rc, "out of memory creating a batch");
  memset(b->rep.data, 0, MF_BATCH_HEADER);
  b->rep.len = MF_BATCH_HEADER;
  return MAYFLY_OK;
}

void batch_init_in(struct mayfly_batch *b, char *buf, size_t cap) {
  b->rep = (mf_buf){buf, MF_BATCH_HEADER, cap};
  b->user_bytes = 0;
  memset(buf, 0, MF_BATCH_HEADER);
}

void batch_free(struct mayfly_batch *b) { mf_buf_free(&b->rep); }

void batch_clear(struct mayfly_batch *b) {
  memset(b->rep.data, 0, MF_BATCH_HEADER);
  b->rep.len = MF_BATCH_HEADER;
  b->user_bytes = 0;
}

static int check_key(mf_slice key) {
  if (key.len > MF_MAX_KEY_SIZE)
    return MF_ERR(MAYFLY_EINVAL, "key of %zu bytes is larger than the limit of %u bytes",
                  key.len, MF_MAX_KEY_SIZE);
  if (key.len && !key.data) return MF_ERR(MAYFLY_EINVAL, "key is NULL with length %zu", key.len);
  return MAYFLY_OK;
}

static int add_record(struct mayfly_batch *b, int type, mf_slice key, const mf_slice *value) {
  if (batch_count(b) == UINT32_MAX) /* the header's count is 32 bits */
    return MF_ERR(MAYFLY_EINVAL, "batch is full: it holds the most records a batch can, %u",
                  UINT32_MAX);
  size_t old_len = b->rep.len;
  char t = (char)type;
  int rc = mf_buf_append(&b->rep, &t, 1);
  if (!rc) rc = put_length_prefixed(&b->rep, key);
  if (!rc && value) rc = put_length_prefixed(&b->rep, *value);
  if (rc) {
    b->rep.len = old_len;
    return MF_ERR(MAYFLY_ENOMEM, "out of memory growing a batch");
  }
  encode_fixed32(b->rep.data + 8, batch_count(b) + 1);
  b->user_bytes += key.len + (value ? value->len : 0);
  return MAYFLY_OK;
}

int batch_put(struct mayfly_batch *b, mf_slice key, mf_slice value) {
  int rc = check_key(key);
  if (rc) return rc;
  if (value.len > MF_MAX_VALUE_SIZE)
    return MF_ERR(MAYFLY_EINVAL, "value of %zu bytes is larger than the limit of %u bytes",
                  value.len, MF_MAX_VALUE_SIZE);
  if (value.len && !value.data)
    return MF_ERR(MAYFLY_EINVAL, "value is NULL with length %zu", value.len);
  return add_record(b, MF_TYPE_VALUE, key, &value);
}

int batch_delete(struct mayfly_batch *b, mf_slice key) {
  int rc = check_key(key);
  return rc ? rc : add_record(b, MF_TYPE_DELETE, key, NULL);
}

int batch_append(struct mayfly_batch *dst, const struct mayfly_batch *src) {
  int rc = mf_buf_append(&dst->rep, src->rep.data + MF_BATCH_HEADER,
                         src->rep.len - MF_BATCH_HEADER);
  if (rc) return MF_ERR(rc, "out of memory merging batches");
  encode_fixed32(dst->rep.data + 8, batch_count(dst) + batch_count(src));
  dst->user_bytes += src->user_bytes;
  return MAYFLY_OK;
}

int batch_iterate(mf_slice rep, int (*fn)(void *, uint64_t, int, mf_slice, mf_slice), void *arg) {
  if (rep.len < MF_BATCH_HEADER)
    return MF_ERR(MAYFLY_ECORRUPT, "batch of %zu bytes is shorter than its header", rep.len);
  uint64_t seq = decode_fixed64(rep.data);
  uint32_t count = decode_fixed32(rep.data + 8);
  mf_slice in = mf_slice_make(rep.data + MF_BATCH_HEADER, rep.len - MF_BATCH_HEADER);
  uint32_t found = 0;
  while (in.len > 0) {
    int type = (unsigned char)in.data[0];
    in.data++;
    in.len--;
    mf_slice key, value = mf_slice_make("", 0);
    if (!get_length_prefixed(&in, &key))
      return MF_ERR(MAYFLY_ECORRUPT, "batch record %u: truncated key", found);
    if (type == MF_TYPE_VALUE) {
      if (!get_length_prefixed(&in, &value))
        return MF_ERR(MAYFLY_ECORRUPT, "batch record %u: truncated value", found);
    } else if (type != MF_TYPE_DELETE) {
      return MF_ERR(MAYFLY_ECORRUPT, "batch record %u: unknown type %d", found, type);
    }
    int rc = fn(arg, seq + found, type, key, value);
    if (rc) return rc;
    found++;
  }
  if (found != count)
    return MF_ERR(MAYFLY_ECORRUPT, "batch holds %u records but its header says %u", found, count);
  return MAYFLY_OK;
}

static int accept_record(void *arg, uint64_t seq, int type, mf_slice key, mf_slice value) {
  (void)arg, (void)seq, (void)type, (void)key, (void)value;
  return MAYFLY_OK;
}

int batch_check(mf_slice rep) {
  int rc = batch_iterate(rep, accept_record, NULL);
  if (rc) return rc;
  uint64_t seq = decode_fixed64(rep.data);
  uint32_t count = decode_fixed32(rep.data + 8);
  if (count > 0 && (seq == 0 || seq > MF_MAX_SEQ - (count - 1)))
    return MF_ERR(MAYFLY_ECORRUPT, "batch of %u records at sequence number %llu is out of range",
                  count, (unsigned long long)seq);
  return MAYFLY_OK;
}
