#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_LEN 1024
/* Messages of other handles, kept when a call on another handle begins, so that a failure on
 * one database is still reported after calls on a batch, the options or another database
 * in between. A few per thread: the least recently parked goes when they are all taken. */
#define PARKED_SLOTS 4

typedef struct parked {
  const void *owner;
  unsigned long stamp; /* 0: free */
  char message[MESSAGE_LEN];
} parked;

static _Thread_local char tls_message[MESSAGE_LEN];
static _Thread_local const void *tls_owner;
static _Thread_local parked tls_parked[PARKED_SLOTS];
static _Thread_local unsigned long tls_stamp;

static parked *find_parked(const void *owner) {
  for (int i = 0; i < PARKED_SLOTS; i++)
    if (tls_parked[i].stamp && tls_parked[i].owner == owner) return &tls_parked[i];
  return NULL;
}

static void drop_parked(const void *owner) {
  parked *p = find_parked(owner);
  if (p) p->stamp = 0;
}

/* Keeps the current message as owner's, in owner's slot, else a free one, else the one
 * parked longest ago. */
static void park(const void *owner) {
  parked *slot = find_parked(owner);
  for (int i = 0; !slot && i < PARKED_SLOTS; i++)
    if (!tls_parked[i].stamp) slot = &tls_parked[i];
  if (!slot) {
    slot = &tls_parked[0];
    for (int i = 1; i < PARKED_SLOTS; i++)
      if (tls_parked[i].stamp < slot->stamp) slot = &tls_parked[i];
  }
  slot->owner = owner;
  slot->stamp = ++tls_stamp;
  memcpy(slot->message, tls_message, strlen(tls_message) + 1);
}

int mf_error(int code, const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  int n = snprintf(tls_message, sizeof tls_message, "%s:%d: ", base, line);
  if (n < 0 || (size_t)n >= sizeof tls_message) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_message + n, sizeof tls_message - (size_t)n, fmt, ap);
  va_end(ap);
  return code;
}

int mf_error_restore(int code, const char *message) {
  if (message != tls_message) snprintf(tls_message, sizeof tls_message, "%s", message);
  return code;
}

const char *mf_error_message(void) { return tls_message; }
void mf_error_clear(void) { tls_message[0] = '\0'; }

void mf_error_begin(const void *handle) {
  if (handle != tls_owner) {
    if (tls_message[0]) park(tls_owner);
    drop_parked(handle); /* a call on handle ends the life of its last message */
    tls_owner = handle;
  }
  tls_message[0] = '\0';
}

void mf_error_set_owner(const void *handle) {
  if (handle == tls_owner) return;
  drop_parked(handle); /* superseded by the current message */
  tls_owner = handle;
}

const void *mf_error_owner(void) { return tls_owner; }

const char *mf_error_message_of(const void *handle) {
  if (handle == tls_owner) return tls_message;
  parked *p = find_parked(handle);
  return p ? p->message : "";
}

void mf_error_forget(const void *handle) {
  drop_parked(handle);
  if (handle == tls_owner && handle) {
    tls_owner = NULL;
    tls_message[0] = '\0';
  }
}
