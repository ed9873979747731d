/* Seed corpus generator for the fuzz targets (not a fuzz target itself).
 *
 *   fuzz_gen_corpus <out_dir>
 *
 * writes <out_dir>/<target>/seed-* files made with the real writers: log files from
 * wal_writer and from a real database run, blocks from block_builder, tables from
 * table_builder (as each fuzz_table mode expects them), encoded version edits and MANIFEST
 * records, batches, option specs, and operation programs for fuzz_ops. The checked-in
 * corpus (tests/fuzz/corpus) started from these seeds and grew by fuzzing, then was
 * minimized (docs/fuzzing.md). Deterministic: a fixed seed, so reruns give the same files. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db/options.h"
#include "db/write_batch.h"
#include "env/env.h"
#include "mayfly.h"
#include "table/block_builder.h"
#include "table/table_builder.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/random.h"
#include "version/version_edit.h"
#include "wal/wal_reader.h"
#include "wal/wal_writer.h"

static const char *out_dir;
static mf_random rnd;

static void die(const char *what, int rc) {
  fprintf(stderr, "gen_corpus: %s failed: %d\n", what, rc);
  exit(1);
}

static void save(const char *target, const char *name, const void *data, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", out_dir, target);
  if (mkdir(path, 0777) != 0 && errno != EEXIST) die("mkdir", errno);
  snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) die(path, errno);
}

/* prefix byte(s) + the bytes of a file of env */
static void save_file(mf_env *env, const char *path, const char *target, const char *name,
                      const char *prefix, size_t prefix_len) {
  mf_buf b = MF_BUF_INIT, out = MF_BUF_INIT;
  int rc = env_read_file(env, path, &b);
  if (rc) die(path, rc);
  mf_buf_append(&out, prefix, prefix_len);
  mf_buf_append(&out, b.data, b.len);
  save(target, name, out.data, out.len);
  mf_buf_free(&b);
  mf_buf_free(&out);
}

static void random_bytes(mf_buf *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = (char)mf_random_uniform(&rnd, 256);
    mf_buf_append(b, &c, 1);
  }
}

static void gen_random_programs(const char *target, int count, size_t max_len) {
  for (int i = 0; i < count; i++) {
    mf_buf b = MF_BUF_INIT;
    random_bytes(&b, 1 + mf_random_uniform(&rnd, max_len));
    char name[32];
    snprintf(name, sizeof name, "random-%d", i);
    save(target, name, b.data, b.len);
    mf_buf_free(&b);
  }
}

static void gen_wal(mf_env *env) {
  static const size_t sizes[][4] = {{0, 0, 0, 0}, {5, 0, 100, 3}, {40000, 10, 1, 0},
                                    {32000, 700, 32, 0}};
  for (int s = 0; s < 4; s++) {
    mf_wfile *f;
    wal_writer *w;
    int rc = env->new_writable(env, "/seed.log", &f);
    if (!rc) rc = wal_writer_create(env, f, s % 2 ? WAL_KIND_MANIFEST : WAL_KIND_WAL, 7 + s, &w, NULL);
    if (rc) die("wal writer", rc);
    for (int i = 0; i < 4 && (i == 0 || sizes[s][i]); i++) {
      mf_buf rec = MF_BUF_INIT;
      random_bytes(&rec, sizes[s][i]);
      if ((rc = wal_writer_add_record(w, mf_buf_slice(&rec), NULL))) die("add_record", rc);
      mf_buf_free(&rec);
    }
    wal_writer_destroy(w);
    env->close_writable(f);
    char name[32];
    snprintf(name, sizeof name, "log-%d", s);
    save_file(env, "/seed.log", "fuzz_wal_reader", name, "", 0);
  }
  gen_random_programs("fuzz_wal_reader", 4, 64);
}

static void gen_blocks(void) {
  for (int s = 0; s < 4; s++) {
    block_builder b;
    block_builder_init(&b, s == 0 ? 1 : 4 * s);
    mf_buf key = MF_BUF_INIT;
    int n = s == 3 ? 0 : 5 + 20 * s;
    for (int i = 0; i < n; i++) {
      char user[16];
      snprintf(user, sizeof user, "key%05d", i * 3);
      mf_buf_clear(&key);
      if (s == 2) ikey_append(&key, mf_slice_cstr(user), 100 - (uint64_t)i, MF_TYPE_VALUE);
      else mf_buf_append(&key, user, strlen(user));
      block_builder_add(&b, mf_buf_slice(&key), mf_slice_cstr(i % 3 ? "value" : ""));
    }
    mf_slice contents;
    block_builder_finish(&b, &contents);
    char name[32];
    snprintf(name, sizeof name, "block-%d", s);
    save("fuzz_block", name, contents.data, contents.len);
    block_builder_free(&b);
    mf_buf_free(&key);
  }
  gen_random_programs("fuzz_block", 4, 200);
}

static void gen_tables(mf_env *env) {
  for (int s = 0; s < 3; s++) {
    table_options o = {512, 4, s == 1 ? 10 : 0, s, 1};
    mf_wfile *f;
    table_builder *tb;
    int rc = env->new_writable(env, "/seed.sst", &f);
    if (!rc) rc = table_builder_create(&o, env, f, "/seed.sst", &tb);
    if (rc) die("table builder", rc);
    mf_buf key = MF_BUF_INIT;
    for (int i = 0; i < 60 * (s + 1); i++) {
      char user[16];
      snprintf(user, sizeof user, "user%04d", i);
      mf_buf_clear(&key);
      ikey_append(&key, mf_slice_cstr(user), 1000 + (uint64_t)i, i % 7 ? MF_TYPE_VALUE : MF_TYPE_DELETE);
      if ((rc = table_builder_add(tb, mf_buf_slice(&key), mf_slice_cstr("some value text")))) die("add", rc);
    }
    if ((rc = table_builder_finish(tb))) die("finish", rc);
    table_builder_destroy(tb);
    env->close_writable(f);
    mf_buf_free(&key);
    char name[32];
    snprintf(name, sizeof name, "sst-%d", s);
    save_file(env, "/seed.sst", "fuzz_table", name, "\0", 1); /* mode 0: raw file */
  }
  /* modes 1..3 take programs */
  for (int mode = 1; mode <= 3; mode++)
    for (int i = 0; i < 3; i++) {
      mf_buf b = MF_BUF_INIT;
      char m = (char)(mode + 4 * i);
      mf_buf_append(&b, &m, 1);
      random_bytes(&b, 16 + mf_random_uniform(&rnd, 400));
      char name[32];
      snprintf(name, sizeof name, "mode%d-%d", mode, i);
      save("fuzz_table", name, b.data, b.len);
      mf_buf_free(&b);
    }
}

static void gen_edits(void) {
  for (int s = 0; s < 4; s++) {
    version_edit e;
    version_edit_init(&e);
    mf_buf small = MF_BUF_INIT, large = MF_BUF_INIT, enc = MF_BUF_INIT;
    ikey_append(&small, mf_slice_cstr("apple"), 10, MF_TYPE_VALUE);
    ikey_append(&large, mf_slice_cstr("zebra"), 5, MF_TYPE_DELETE);
    if (s != 1) version_edit_set_log_number(&e, 3 + s);
    if (s != 2) version_edit_set_next_file_number(&e, 100 + s);
    if (s == 0 || s == 3) version_edit_set_last_sequence(&e, 999);
    for (int i = 0; i < s; i++) {
      version_edit_add_file(&e, i, 10 + i, 4096 * (i + 1), 50, mf_buf_slice(&small),
                            mf_buf_slice(&large), 5, 10, i ? 0 : 42);
      if (s == 3) {
        version_edit_add_blob_file(&e, 42 + i, 10, 5000, 0x1234abcd);
        version_edit_add_blob_garbage(&e, 42 + i, 3, 1500);
      }
      version_edit_delete_file(&e, MF_NUM_LEVELS - 1 - i, 3 + i);
      version_edit_set_compact_pointer(&e, i, mf_buf_slice(&large));
    }
    version_edit_encode(&e, &enc);
    char name[32];
    snprintf(name, sizeof name, "edit-%d", s);
    save("fuzz_version_edit", name, enc.data, enc.len);
    version_edit_free(&e);
    mf_buf_free(&small);
    mf_buf_free(&large);
    mf_buf_free(&enc);
  }
}

static void gen_batches(void) {
  for (int s = 0; s < 4; s++) {
    struct mayfly_batch b;
    batch_init(&b);
    for (int i = 0; i < s * 3; i++) {
      char k[16];
      snprintf(k, sizeof k, "k%d", i);
      if (i % 4 == 3) batch_delete(&b, mf_slice_cstr(k));
      else batch_put(&b, mf_slice_cstr(k), mf_slice_cstr(i % 2 ? "" : "a value"));
    }
    batch_set_seq(&b, 1 + 1000 * (uint64_t)s);
    char name[32];
    snprintf(name, sizeof name, "batch-%d", s);
    save("fuzz_batch", name, b.rep.data, b.rep.len);
    batch_free(&b);
  }
}

static void gen_options(void) {
  struct mayfly_options o;
  options_init_defaults(&o);
  mf_buf text = MF_BUF_INIT;
  options_to_text(&o, &text);
  for (size_t i = 0; i < text.len; i++)
    if (text.data[i] == '\n') text.data[i] = ';';
  save("fuzz_options", "defaults", text.data, text.len);
  static const char *specs[] = {
      "write_buffer_size=64KiB;compression=zstd;bloom_bits_per_key=0",
      " block_size = 1KiB ;; max_bytes_for_level_multiplier=2.5;",
      "create_if_missing=false;wal_recovery_mode=absolute;block_cache_size=1GiB",
      "level0_slowdown_writes_trigger=8;level0_stop_writes_trigger=12;use_fsync=true",
      "max_open_files=20;target_file_size_base=1MiB;max_write_buffer_number=3",
  };
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "spec-%zu", i);
    save("fuzz_options", name, specs[i], strlen(specs[i]));
  }
  mf_buf_free(&text);
}

/* A real database run: its WAL and MANIFEST records seed the log and edit targets. */
static void gen_from_db(void) {
  mf_env *env;
  int rc = env_mem_create(&env);
  if (rc) die("env", rc);
  struct mayfly_options o;
  options_init_defaults(&o);
  mayfly_options_parse(&o, "write_buffer_size=64KiB");
  options_set_env(&o, env);
  mayfly_db *db;
  if ((rc = mayfly_open("/db", &o, &db))) die("open", rc);
  char k[32], v[200];
  memset(v, 'v', sizeof v);
  for (int i = 0; i < 300; i++) {
    snprintf(k, sizeof k, "key%06d", i * 7 % 1000);
    if ((rc = mayfly_put(db, k, strlen(k), v, (size_t)(i % 200), 0))) die("put", rc);
  }
  mayfly_flush(db);
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof k, "key%06d", i);
    mayfly_delete(db, k, strlen(k), 0);
  }
  mayfly_close(db);
  char **names;
  size_t count;
  if ((rc = env->list_dir(env, "/db", &names, &count))) die("list_dir", rc);
  for (size_t i = 0; i < count; i++) {
    char path[300];
    snprintf(path, sizeof path, "/db/%s", names[i]);
    int is_log = strstr(names[i], ".log") != NULL, is_manifest = strstr(names[i], "MANIFEST") != NULL;
    if (is_log || is_manifest) save_file(env, path, "fuzz_wal_reader", names[i], "", 0);
    if (strstr(names[i], ".sst")) save_file(env, path, "fuzz_table", names[i], "\0", 1);
    if (!is_manifest && !is_log) continue;
    /* Each record: a batch (WAL) or a version edit (MANIFEST). */
    mf_rfile *f;
    wal_reader *r;
    if (env->open_readable(env, path, &f)) continue;
    if (wal_reader_create(env, f, path, is_log ? WAL_KIND_WAL : WAL_KIND_MANIFEST, &r) == 0) {
      mf_slice rec;
      for (int n = 0; n < 3 && wal_reader_read(r, &rec) == MAYFLY_OK; n++) {
        char name[340];
        snprintf(name, sizeof name, "%s-rec%d", names[i], n);
        save(is_log ? "fuzz_batch" : "fuzz_version_edit", name, rec.data, rec.len);
      }
      wal_reader_destroy(r);
    }
    env->close_readable(f);
  }
  env_free_names(names, count);
  env->destroy(env);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <out_dir>\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  mkdir(out_dir, 0777);
  mf_random_seed(&rnd, 20240601);
  mf_env *env;
  int rc = env_mem_create(&env);
  if (rc) die("env", rc);
  gen_wal(env);
  gen_blocks();
  gen_tables(env);
  gen_edits();
  gen_batches();
  gen_options();
  gen_from_db();
  gen_random_programs("fuzz_ops", 6, 3000);
  env->destroy(env);
  return 0;
}
