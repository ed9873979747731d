/* Merging iterator; see merger.h for the contract.
 *
 * Order. Entries are ordered by (key, child index): ties between children go to the lower
 * index going forward. Backward iteration walks the same total order in reverse.
 *
 * Invariant. In the forward direction every child is positioned at its first entry after the
 * current one in that total order (or is exhausted), and the current entry is the smallest of
 * the children's entries; backward, every child is at its last entry before the current one
 * and the current entry is the largest. next()/prev() in the matching direction therefore
 * only advance the current child and pick the new extreme. When the direction switches, the
 * other children sit on the wrong side of the current entry, so each is repositioned by
 * seeking to the current key and stepping over entries that compare equal according to the
 * tie rule (the LevelDB approach, extended to keep duplicate keys exact).
 *
 * Picking the extreme. With few children (<= MERGER_LINEAR_MAX) a linear scan over all
 * children is cheapest. With more, a binary heap of the valid children is kept, a min-heap
 * going forward and a max-heap going backward (by the same (key, index) order), rebuilt
 * whenever every child has been repositioned (seeks and direction switches) and fixed with
 * one sift-down after the current child moves. */
#include "table/merger.h"

#include <stdlib.h>

#include "mayfly.h"
#include "util/zalloc.h"

enum { MERGER_LINEAR_MAX = 4 };

enum merger_direction { MERGER_FORWARD, MERGER_REVERSE };

typedef struct merger {
  mf_iter base;
  mf_compare_fn cmp;
  mf_iter **children; /* owned copy of the array; owned children */
  int n;
  int current; /* index into children, or -1 when not valid */
  enum merger_direction direction;
  int *heap; /* child indices; NULL in linear mode */
  int heap_len;
} merger;

/* 1 when child a's entry precedes child b's in the (key, index) order. Both valid. */
static int child_less(const merger *m, int a, int b) {
  int r = m->cmp(iter_key(m->children[a]), iter_key(m->children[b]));
  return r < 0 || (r == 0 && a < b);
}

/* 1 when child a belongs above child b in the heap for the current direction. */
static int heap_above(const merger *m, int a, int b) {
  return m->direction == MERGER_FORWARD ? child_less(m, a, b) : child_less(m, b, a);
}

static void heap_sift_down(merger *m, int i) {
  for (;;) {
    int best = i, l = 2 * i + 1, r = l + 1;
    if (l < m->heap_len && heap_above(m, m->heap[l], m->heap[best])) best = l;
    if (r < m->heap_len && heap_above(m, m->heap[r], m->heap[best])) best = r;
    if (best == i) return;
    int t = m->heap[i];
    m->heap[i] = m->heap[best];
    m->heap[best] = t;
    i = best;
  }
}

/* Picks the current child after every child may have moved. A child that failed ends the
 * merged view (see merger.h). */
static void rebuild(merger *m) {
  if (m->heap) {
    m->heap_len = 0;
    for (int i = 0; i < m->n; i++) {
      if (iter_valid(m->children[i])) {
        m->heap[m->heap_len++] = i;
      } else if (iter_status(m->children[i]) != MAYFLY_OK) {
        m->current = -1;
        return;
      }
    }
    for (int i = m->heap_len / 2 - 1; i >= 0; i--) heap_sift_down(m, i);
    m->current = m->heap_len ? m->heap[0] : -1;
    return;
  }
  m->current = -1;
  for (int i = 0; i < m->n; i++) {
    if (!iter_valid(m->children[i])) {
      if (iter_status(m->children[i]) != MAYFLY_OK) {
        m->current = -1;
        return;
      }
      continue;
    }
    if (m->current < 0 || heap_above(m, i, m->current)) m->current = i;
  }
}

/* Picks the current child after only the current child moved. */
static void advance_fixup(merger *m) {
  if (!m->heap) {
    rebuild(m);
    return;
  }
  /* The current child is the heap root. */
  mf_iter *moved = m->children[m->heap[0]];
  if (!iter_valid(moved) && iter_status(moved) != MAYFLY_OK) {
    m->current = -1; /* the next seek rebuilds the heap */
    return;
  }
  if (!iter_valid(moved)) m->heap[0] = m->heap[--m->heap_len];
  if (m->heap_len) heap_sift_down(m, 0);
  m->current = m->heap_len ? m->heap[0] : -1;
}

static int merger_valid(const mf_iter *it) { return ((const merger *)it)->current >= 0; }

static void merger_seek_to_first(mf_iter *it) {
  merger *m = (merger *)it;
  for (int i = 0; i < m->n; i++) iter_seek_to_first(m->children[i]);
  m->direction = MERGER_FORWARD;
  rebuild(m);
}

static void merger_seek_to_last(mf_iter *it) {
  merger *m = (merger *)it;
  for (int i = 0; i < m->n; i++) iter_seek_to_last(m->children[i]);
  m->direction = MERGER_REVERSE;
  rebuild(m);
}

static void merger_seek(mf_iter *it, mf_slice target) {
  merger *m = (merger *)it;
  for (int i = 0; i < m->n; i++) iter_seek(m->children[i], target);
  m->direction = MERGER_FORWARD;
  rebuild(m);
}

/* Skips child's entries that compare equal to key (child is positioned at or after key). */
static void skip_equal(merger *m, mf_iter *child, mf_slice key) {
  while (iter_valid(child) && m->cmp(iter_key(child), key) == 0) iter_next(child);
}

/* Puts every non-current child at its first entry after the current one in (key, index)
 * order. The current key is read from the current child, which is not moved, so it stays
 * valid throughout. */
static void switch_to_forward(merger *m) {
  mf_slice key = iter_key(m->children[m->current]);
  for (int i = 0; i < m->n; i++) {
    if (i == m->current) continue;
    mf_iter *child = m->children[i];
    iter_seek(child, key);
    /* A lower-index child's equal entries came before the current one: skip them. A
     * higher-index child's equal entries come after it: keep them. */
    if (i < m->current) skip_equal(m, child, key);
  }
  m->direction = MERGER_FORWARD;
  rebuild(m);
}

/* Puts every non-current child at its last entry before the current one in (key, index)
 * order. */
static void switch_to_reverse(merger *m) {
  mf_slice key = iter_key(m->children[m->current]);
  for (int i = 0; i < m->n; i++) {
    if (i == m->current) continue;
    mf_iter *child = m->children[i];
    iter_seek(child, key);
    /* A lower-index child's equal entries precede the current one: keep them by first
     * stepping past them, so the step back lands on the last of them. */
    if (i < m->current) skip_equal(m, child, key);
    if (iter_valid(child))
      iter_prev(child);
    else if (iter_status(child) == MAYFLY_OK)
      iter_seek_to_last(child); /* every entry is before the current one */
  }
  m->direction = MERGER_REVERSE;
  rebuild(m);
}

/* A switch of direction repositions every other child; when one of them fails (a read
 * error, no memory) the merger is left invalid with that child's status, and the step is
 * not taken. */
static void merger_next(mf_iter *it) {
  merger *m = (merger *)it;
  if (m->direction != MERGER_FORWARD) {
    switch_to_forward(m);
    if (m->current < 0) return;
  }
  iter_next(m->children[m->current]);
  advance_fixup(m);
}

static void merger_prev(mf_iter *it) {
  merger *m = (merger *)it;
  if (m->direction != MERGER_REVERSE) {
    switch_to_reverse(m);
    if (m->current < 0) return;
  }
  iter_prev(m->children[m->current]);
  advance_fixup(m);
}

static mf_slice merger_key(const mf_iter *it) {
  const merger *m = (const merger *)it;
  return iter_key(m->children[m->current]);
}

static mf_slice merger_value(const mf_iter *it) {
  const merger *m = (const merger *)it;
  return iter_value(m->children[m->current]);
}

static int merger_status(const mf_iter *it) {
  const merger *m = (const merger *)it;
  for (int i = 0; i < m->n; i++) {
    int rc = iter_status(m->children[i]);
    if (rc != MAYFLY_OK) return rc;
  }
  return MAYFLY_OK;
}

static void merger_destroy(mf_iter *it) {
  merger *m = (merger *)it;
  for (int i = 0; i < m->n; i++) iter_destroy(m->children[i]);
  free(m->children);
  free(m->heap);
  free(m);
}

static const mf_iter_ops merger_ops = {
    .valid = merger_valid,
    .seek_to_first = merger_seek_to_first,
    .seek_to_last = merger_seek_to_last,
    .seek = merger_seek,
    .next = merger_next,
    .prev = merger_prev,
    .key = merger_key,
    .value = merger_value,
    .status = merger_status,
    .destroy = merger_destroy,
};

mf_iter *merger_create(mf_compare_fn cmp, mf_iter **children, int n) {
  merger *m = mf_zalloc(sizeof *m);
  if (m && n > 0) {
    m->children = malloc(sizeof(mf_iter *) * (size_t)n);
    if (m->children && n > MERGER_LINEAR_MAX) m->heap = malloc(sizeof(int) * (size_t)n);
    if (!m->children || (n > MERGER_LINEAR_MAX && !m->heap)) {
      free(m->children);
      free(m);
      m = NULL;
    }
  }
  if (!m) {
    for (int i = 0; i < n; i++) iter_destroy(children[i]);
    return NULL;
  }
  iter_init(&m->base, &merger_ops);
  m->cmp = cmp;
  for (int i = 0; i < n; i++) m->children[i] = children[i];
  m->n = n;
  m->current = -1;
  m->direction = MERGER_FORWARD;
  m->heap_len = 0;
  return &m->base;
}
