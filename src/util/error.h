/* The one place errors are made.
 *
 * Every failure inside the engine is created with MF_ERR(code, fmt, ...): it formats the
 * detail ("file.c:123: <message>") into the calling thread's error slot and returns code, so
 * `return MF_ERR(MAYFLY_ECORRUPT, "%s: bad block checksum at offset %llu", name, off);` both
 * records and propagates. A breakpoint on mf_error catches every error in the engine.
 * mayfly_errmsg(db) reads the slot back (see db/db_api.c for how the handle is matched). */
#ifndef MAYFLY_UTIL_ERROR_H
#define MAYFLY_UTIL_ERROR_H

#include <stdint.h>

#if defined(__GNUC__)
#define MF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MF_PRINTF(a, b)
#endif

int mf_error(int code, const char *file, int line, const char *fmt, ...) MF_PRINTF(4, 5);
#define MF_ERR(code, ...) mf_error((code), __FILE__, __LINE__, __VA_ARGS__)

/* Sets the calling thread's message to message as it is (a copy saved with
 * mf_error_message, put back after cleanup that may have overwritten it); returns code. */
int mf_error_restore(int code, const char *message);

/* The calling thread's current message ("" when none). Valid until the thread's next error
 * or mf_error_clear. */
const char *mf_error_message(void);
void mf_error_clear(void);

/* Handles: every public call on a handle begins with mf_error_begin(id), where id is the
 * handle's error id (a database's db->error_id, unique for the life of the process and
 * never reused; 0 for calls without a handle). It clears the id's message; what MF_ERR
 * records during the call is then the id's. The last message of each of a few other ids is
 * kept in its own buffer until the next call on that id (or, with more ids than buffers,
 * until the buffer used longest ago is taken for another), so mayfly_errmsg(db) still
 * reports a failure on db, at the same address, after calls on a batch or on another
 * database in between. */
void mf_error_begin(uint64_t id);
/* The current message belongs to id from now on (it was recorded under another one); id's
 * earlier message is dropped. */
void mf_error_set_owner(uint64_t id);
uint64_t mf_error_owner(void);
/* id's last message in the calling thread ("" when none). */
const char *mf_error_message_of(uint64_t id);
/* Drops what the calling thread keeps for id. */
void mf_error_forget(uint64_t id);

#endif
