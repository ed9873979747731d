#include "table/iterator.h"

#include <stdlib.h>

#include "mayfly.h"

struct mf_iter_cleanup {
  void (*fn)(void *, void *);
  void *arg1, *arg2;
  mf_iter_cleanup *next;
};

int iter_register_cleanup(mf_iter *it, void (*fn)(void *, void *), void *arg1, void *arg2) {
  mf_iter_cleanup *c = malloc(sizeof *c);
  if (!c) return MAYFLY_ENOMEM;
  c->fn = fn;
  c->arg1 = arg1;
  c->arg2 = arg2;
  c->next = it->cleanups;
  it->cleanups = c;
  return MAYFLY_OK;
}

void iter_destroy(mf_iter *it) {
  if (!it) return;
  mf_iter_cleanup *c = it->cleanups;
  it->ops->destroy(it);
  while (c) {
    mf_iter_cleanup *next = c->next;
    c->fn(c->arg1, c->arg2);
    free(c);
    c = next;
  }
}

typedef struct empty_iter {
  mf_iter base;
  int status;
} empty_iter;

static int empty_valid(const mf_iter *it) { (void)it; return 0; }
static void empty_nop(mf_iter *it) { (void)it; }
static void empty_seek(mf_iter *it, mf_slice t) { (void)it; (void)t; }
static mf_slice empty_slice(const mf_iter *it) { (void)it; return mf_slice_make("", 0); }
static int empty_status(const mf_iter *it) { return ((const empty_iter *)it)->status; }
static void empty_destroy(mf_iter *it) { free(it); }

static const mf_iter_ops empty_ops = {empty_valid, empty_nop,   empty_nop,    empty_seek,
                                      empty_nop,   empty_nop,   empty_slice,  empty_slice,
                                      empty_status, empty_destroy};

mf_iter *iter_new_empty(int status) {
  empty_iter *e = malloc(sizeof *e);
  if (!e) return NULL;
  iter_init(&e->base, &empty_ops);
  e->status = status;
  return &e->base;
}
