#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_LEN 1024
/* Each thread keeps its messages in a few slots, one per handle (owner: the handle's id, 0
 * for calls without one). The current slot is the one MF_ERR writes; the others keep the
 * last message of the handles called before, each until the next call on its handle, so a
 * failure on one database is still reported (at the same address) after calls on a batch,
 * the options or another database. When a call needs a slot and none is free, the one used
 * longest ago is taken. */
#define SLOTS 5
#define NOBODY UINT64_MAX /* the current slot's owner after mf_error_forget */

typedef struct slot {
  uint64_t owner;
  uint64_t used; /* when owner's last call ended (another began); 0: free (unless current) */
  char message[MESSAGE_LEN];
} slot;

static _Thread_local slot tls_slots[SLOTS];
static _Thread_local int tls_cur; /* always a valid index: a thread starts on slot 0, owner 0 */
static _Thread_local uint64_t tls_clock;

static int find_slot(uint64_t owner) {
  for (int i = 0; i < SLOTS; i++)
    if ((i == tls_cur || tls_slots[i].used) && tls_slots[i].owner == owner) return i;
  return -1;
}

/* A slot for a handle that has none: the current one if it holds no message, else a free
 * one, else the one used longest ago. */
static int take_slot(void) {
  if (!tls_slots[tls_cur].message[0]) return tls_cur;
  int pick = -1;
  for (int i = 0; i < SLOTS; i++) {
    if (i == tls_cur) continue;
    if (!tls_slots[i].used) return i;
    if (pick < 0 || tls_slots[i].used < tls_slots[pick].used) pick = i;
  }
  return pick;
}

int mf_error(int code, const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  char *m = tls_slots[tls_cur].message;
  int n = snprintf(m, MESSAGE_LEN, "%s:%d: ", base, line);
  if (n < 0 || (size_t)n >= MESSAGE_LEN) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m + n, MESSAGE_LEN - (size_t)n, fmt, ap);
  va_end(ap);
  return code;
}

int mf_error_restore(int code, const char *message) {
  char *m = tls_slots[tls_cur].message;
  if (message != m) snprintf(m, MESSAGE_LEN, "%s", message);
  return code;
}

const char *mf_error_message(void) { return tls_slots[tls_cur].message; }
void mf_error_clear(void) { tls_slots[tls_cur].message[0] = '\0'; }

void mf_error_begin(uint64_t handle) {
  slot *cur = &tls_slots[tls_cur];
  if (cur->owner != handle) { /* a call on the same handle as the last (the common case,
                               * an iterator's next) costs only the compare and the clear */
    int i = find_slot(handle);
    if (i < 0) i = take_slot();
    if (i != tls_cur) cur->used = cur->message[0] ? ++tls_clock : 0; /* kept as of now, or free */
    tls_cur = i;
    cur = &tls_slots[i];
    cur->owner = handle;
  }
  cur->message[0] = '\0';
}

void mf_error_set_owner(uint64_t handle) {
  slot *cur = &tls_slots[tls_cur];
  if (cur->owner == handle) return;
  int i = find_slot(handle);
  if (i >= 0) tls_slots[i].used = 0; /* superseded by the current message */
  cur->owner = handle;
}

uint64_t mf_error_owner(void) { return tls_slots[tls_cur].owner; }

const char *mf_error_message_of(uint64_t handle) {
  int i = find_slot(handle);
  return i >= 0 ? tls_slots[i].message : "";
}

void mf_error_forget(uint64_t handle) {
  int i = find_slot(handle);
  if (i < 0) return;
  tls_slots[i].message[0] = '\0';
  if (i == tls_cur) tls_slots[i].owner = NOBODY; /* stays current, belongs to no handle */
  else tls_slots[i].used = 0;
}
