/* The one place errors are made.
 *
 * Every failure inside the engine is created with MF_ERR(code, fmt, ...): it formats the
 * detail ("file.c:123: <message>") into the calling thread's error slot and returns code, so
 * `return MF_ERR(MAYFLY_ECORRUPT, "%s: bad block checksum at offset %llu", name, off);` both
 * records and propagates. A breakpoint on mf_error catches every error in the engine.
 * mayfly_errmsg(db) reads the slot back (see db/api.c for how the handle is matched). */
#ifndef MAYFLY_UTIL_ERROR_H
#define MAYFLY_UTIL_ERROR_H

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

/* The calling thread's last detail message ("" when none). Valid until the thread's next
 * error or mf_error_clear. */
const char *mf_error_message(void);
void mf_error_clear(void);
/* Handles: every public call on a handle (a database, or NULL for calls with none) begins
 * with mf_error_begin(handle), which clears the message; what MF_ERR records during the call
 * is then handle's. A message of another handle is kept aside (a few per thread, the oldest
 * dropped first) until the next call on that handle, so mayfly_errmsg(db) still reports a
 * failure on db after calls on a batch or on another database in between. */
void mf_error_begin(const void *handle);
/* The current message belongs to handle from now on (it was recorded under another one);
 * handle's earlier message is dropped. */
void mf_error_set_owner(const void *handle);
const void *mf_error_owner(void);
/* handle's last message in the calling thread ("" when none). Valid until the thread's next
 * call of any mf_error function. */
const char *mf_error_message_of(const void *handle);
/* Drops what the calling thread keeps for handle (a database being freed: its address may be
 * reused by the next one). */
void mf_error_forget(const void *handle);

#endif
