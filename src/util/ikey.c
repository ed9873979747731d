#include "util/ikey.h"

#include "mayfly.h"

int ikey_append(mf_buf *b, mf_slice user_key, uint64_t seq, int type) {
  int rc = mf_buf_append(b, user_key.data, user_key.len);
  return rc ? rc : put_fixed64(b, ikey_pack(seq, type));
}

int ikey_parse(mf_slice ikey, mf_parsed_ikey *out) {
  if (ikey.len < 8) return 0;
  uint64_t trailer = ikey_trailer(ikey);
  int type = (int)(trailer & 0xff);
  if (type > MF_TYPE_MAX) return 0;
  out->user_key = ikey_user_key(ikey);
  out->seq = trailer >> 8;
  out->type = type;
  return 1;
}

int bytewise_compare(mf_slice a, mf_slice b) { return mf_slice_compare(a, b); }
