/* The user-facing iterator (db_iter.c); mayfly_iter_* in db_api.c forward here. */
#ifndef MAYFLY_DB_DB_ITER_H
#define MAYFLY_DB_DB_ITER_H

#include "db/db_impl.h"

int db_iter_create(mayfly_db *db, const struct mayfly_snapshot *snap, mayfly_iter **out);
void db_iter_destroy(mayfly_iter *m);
void db_iter_seek_to_first(mayfly_iter *m);
void db_iter_seek_to_last(mayfly_iter *m);
void db_iter_seek(mayfly_iter *m, mf_slice target);
void db_iter_next(mayfly_iter *m);
void db_iter_prev(mayfly_iter *m);
int db_iter_valid(const mayfly_iter *m);
/* REQUIRES: valid. Valid until the iterator moves. */
mf_slice db_iter_key(const mayfly_iter *m);
/* REQUIRES: valid. Reads the blob when the value is separated; on failure the iterator's
 * status records the error. *out is valid until the iterator moves. */
int db_iter_value(mayfly_iter *m, mf_slice *out);
/* The value's length without reading a blob when it can be known (inline values, and
 * uncompressed blobs); MAYFLY_ENOTSUP when only reading the value would tell. */
int db_iter_value_size(mayfly_iter *m, uint64_t *size);
int db_iter_status(const mayfly_iter *m);
mayfly_db *db_iter_db(const mayfly_iter *m);

#endif
