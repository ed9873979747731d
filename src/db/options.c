/* The options table.
 *
 * Every option mayfly knows is one row of `option_table` below: its name, its type, the
 * field of struct mayfly_options it lives in, its default as text, its range (numbers) or
 * its value names (enums), whether an open database may change it, and one line of
 * documentation. Everything else is derived from that row:
 *   - defaults: options_init_defaults parses each row's default text with the same parser
 *     users go through, so a default can never drift from what the parser accepts;
 *   - setting: options_set (and through it mayfly_options_set/parse, mayfly_set_option);
 *   - text dumps: options_to_text prints every value canonically (parsing it back gives the
 *     same struct, which is what the OPTIONS file relies on);
 *   - docs: options_write_markdown produces docs/options.md (tools/gen_options_doc.c), and
 *     tests/unit/test_options.c fails when the checked-in page is stale.
 *
 * Setting an option is all-or-nothing: the value is parsed and range-checked into a local
 * before the field is written, so a failed options_set leaves the struct untouched.
 * Cross-field rules (the L0 trigger ordering) are not checked per option, because users set
 * options one at a time and an intermediate state may legitimately violate them; callers
 * run options_validate once all options are in (open, mayfly_set_option).
 *
 * Text parsing uses strtod and printf("%g") for doubles, which follow LC_NUMERIC: an
 * embedder that switches the C locale to one with a decimal comma changes how doubles are
 * read and written. */
#include "db/options.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "table/format.h"
#include "util/error.h"
#include "util/slice.h"

enum option_type { OPT_BOOL, OPT_INT, OPT_SIZE, OPT_DOUBLE, OPT_ENUM, OPT_STRING };

struct option_desc {
  const char *name;
  enum option_type type;
  size_t offset;            /* of the field in struct mayfly_options */
  const char *default_text; /* parsed by the same code as user input */
  int64_t min, max;         /* OPT_INT and OPT_SIZE, inclusive */
  double dmin, dmax;        /* OPT_DOUBLE, inclusive */
  const char *values;       /* OPT_ENUM: "a|b|c"; the index of a name is the field value */
  bool runtime_mutable;
  const char *doc;
};

/* The field of every row must have the C type its option type stores (int for bool, int and
 * enum; uint64_t for size; double for double; a char[MF_OPTION_STRING_MAX] array for string,
 * which _Generic sees as char *). FIELD checks that at compile time: the array
 * size below is -1, a compile error, when the member's type differs from `ctype`. */
#define FIELD(f, ctype)                       \
  (offsetof(struct mayfly_options, f) +       \
   0 * sizeof(char[_Generic(((struct mayfly_options *)0)->f, ctype : 1, default : -1)]))

#define OPEN_TIME false
#define RUNTIME true

#define BOOL_OPTION(f, def, mut, text) \
  {.name = #f, .type = OPT_BOOL, .offset = FIELD(f, int), .default_text = def, \
   .runtime_mutable = mut, .doc = text}
#define INT_OPTION(f, def, lo, hi, mut, text) \
  {.name = #f, .type = OPT_INT, .offset = FIELD(f, int), .default_text = def, .min = lo, \
   .max = hi, .runtime_mutable = mut, .doc = text}
#define SIZE_OPTION(f, def, lo, hi, mut, text) \
  {.name = #f, .type = OPT_SIZE, .offset = FIELD(f, uint64_t), .default_text = def, \
   .min = (int64_t)(lo), .max = (int64_t)(hi), .runtime_mutable = mut, .doc = text}
#define DOUBLE_OPTION(f, def, lo, hi, mut, text) \
  {.name = #f, .type = OPT_DOUBLE, .offset = FIELD(f, double), .default_text = def, \
   .dmin = lo, .dmax = hi, .runtime_mutable = mut, .doc = text}
#define ENUM_OPTION(f, def, names, mut, text) \
  {.name = #f, .type = OPT_ENUM, .offset = FIELD(f, int), .default_text = def, \
   .values = names, .runtime_mutable = mut, .doc = text}
#define STRING_OPTION(f, def, mut, text) \
  {.name = #f, .type = OPT_STRING, .offset = FIELD(f, char *), .default_text = def, \
   .runtime_mutable = mut, .doc = text}
_Static_assert(sizeof(((struct mayfly_options *)0)->trace_dir) == MF_OPTION_STRING_MAX,
               "string options are char[MF_OPTION_STRING_MAX] fields");

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

/* ENUM_OPTION value lists are indexed by the C enums; keep them in step. */
_Static_assert(MF_COMPRESSION_NONE == 0 && MF_COMPRESSION_LZ4 == 1 && MF_COMPRESSION_ZSTD == 2,
               "compression value names below follow enum mf_compression");
_Static_assert(MF_WAL_POINT_IN_TIME == 0 && MF_WAL_ABSOLUTE == 1,
               "wal_recovery_mode value names below follow enum mf_wal_recovery_mode");

/* Doc lines end up in a Markdown table: no '|' and no newlines in them. */
static const struct option_desc option_table[] = {
    /* Open-time options: read once by mayfly_open. */
    BOOL_OPTION(create_if_missing, "true", OPEN_TIME,
                "Create the database if the directory holds none."),
    BOOL_OPTION(error_if_exists, "false", OPEN_TIME,
                "Fail mayfly_open with MAYFLY_EINVAL if a database already exists."),
    ENUM_OPTION(wal_recovery_mode, "point_in_time", "point_in_time|absolute", OPEN_TIME,
                "What recovery does with a damaged WAL record: point_in_time stops replay at "
                "the first bad record and keeps everything before it (the expected outcome of "
                "a crash during a write); absolute fails the open with MAYFLY_ECORRUPT. "
                "The property mayfly.recovery tells what a point_in_time open dropped."),
    BOOL_OPTION(use_fsync, "false", OPEN_TIME,
                "Make files durable with fsync instead of fdatasync."),
    INT_OPTION(max_open_files, "1000", 20, 1000000, OPEN_TIME,
               "How many table files the table cache keeps open."),
    SIZE_OPTION(block_cache_size, "32MiB", 0, TIB, OPEN_TIME,
                "Capacity of the block cache for uncompressed data blocks; 0 disables it."),
    INT_OPTION(max_background_jobs, "2", 1, 64, OPEN_TIME,
               "Background threads shared by flushes, compactions and blob garbage collection."),
    /* Runtime-mutable options: mayfly_set_option may change them on an open database. */
    SIZE_OPTION(write_buffer_size, "64MiB", 64 * KIB, 4 * GIB, RUNTIME,
                "Memtable size at which it is made immutable and scheduled for flush: the "
                "bytes of its entries and skiplist links (its filter, and the unused ends of its "
                "memory blocks, come on top)."),
    INT_OPTION(max_write_buffer_number, "2", 2, 64, RUNTIME,
               "Memtables (the active one plus those waiting to flush) before writes stop."),
    DOUBLE_OPTION(memtable_bloom_size_ratio, "0.01", 0, 0.25, RUNTIME,
                  "Size of a bloom filter over each new memtable's user keys, as a fraction of "
                  "write_buffer_size (memory on top of it); point lookups of keys it rules out "
                  "skip the memtable. 0 "
                  "turns it off. (RocksDB: memtable_prefix_bloom_size_ratio with "
                  "memtable_whole_key_filtering.)"),
    SIZE_OPTION(block_size, "4KiB", 256, MF_MAX_BLOCK_SIZE, RUNTIME,
                "Target uncompressed size of a table data block."),
    INT_OPTION(block_restart_interval, "16", 1, 1024, RUNTIME,
               "Keys between restart points in a data block (prefix compression resets there)."),
    INT_OPTION(bloom_bits_per_key, "10", 0, 64, RUNTIME,
               "Bloom filter bits per key in new tables; 0 writes no filter."),
    ENUM_OPTION(compression, "none", "none|lz4|zstd", RUNTIME,
                "Compression of new table blocks."),
    INT_OPTION(compression_level, "3", -5, 22, RUNTIME,
               "zstd compression level (negative levels are faster); ignored by lz4 and none."),
    INT_OPTION(level0_file_num_compaction_trigger, "4", 1, 1000, RUNTIME,
               "Number of L0 files that triggers an L0 compaction."),
    INT_OPTION(level0_slowdown_writes_trigger, "20", 1, 10000, RUNTIME,
               "Number of L0 files at which writes are delayed."),
    INT_OPTION(level0_stop_writes_trigger, "36", 1, 10000, RUNTIME,
               "Number of L0 files at which writes stop until compaction catches up."),
    SIZE_OPTION(target_file_size_base, "64MiB", 64 * KIB, 16 * GIB, RUNTIME,
                "Target size of table files written by compaction."),
    SIZE_OPTION(max_bytes_for_level_base, "256MiB", MIB, TIB, RUNTIME,
                "Target total size of L1."),
    DOUBLE_OPTION(max_bytes_for_level_multiplier, "10", 1.0001, 1000, RUNTIME,
                  "Each level below L1 targets this many times the size of the level above."),
    INT_OPTION(max_mem_compaction_level, "2", 0, MF_NUM_LEVELS - 1, RUNTIME,
               "Highest level a flushed table may be placed in directly when it overlaps "
               "nothing there (ignored with level_compaction_dynamic_level_bytes)."),
    BOOL_OPTION(level_compaction_dynamic_level_bytes, "false", OPEN_TIME,
                "Derive level targets from the size of the last level (RocksDB's meaning): "
                "levels above the base level stay empty and L0 compacts into the base level."),
    /* Key-value separation and blob garbage collection. */
    BOOL_OPTION(enable_blob_files, "true", RUNTIME,
                "Store values of at least min_blob_size in blob files (written at flush and "
                "compaction; the WAL keeps the full value)."),
    SIZE_OPTION(min_blob_size, "512", 0, 256 * MIB, RUNTIME,
                "Smallest value stored in a blob file; smaller values stay in the tables."),
    SIZE_OPTION(blob_file_size, "256MiB", 64 * KIB, 16 * GIB, RUNTIME,
                "A blob file is closed once it reaches this size."),
    ENUM_OPTION(blob_compression, "none", "none|lz4|zstd", RUNTIME,
                "Compression of values in new blob files."),
    INT_OPTION(blob_file_starting_level, "0", 0, MF_NUM_LEVELS - 1, RUNTIME,
               "Values are moved to blob files only by flushes and compactions whose output "
               "level is at least this."),
    BOOL_OPTION(enable_blob_garbage_collection, "true", RUNTIME,
                "Relocate live blobs out of old blob files during compaction."),
    DOUBLE_OPTION(blob_garbage_collection_age_cutoff, "0.25", 0, 1, RUNTIME,
                  "Policy age: the oldest fraction of blob files whose live blobs compaction "
                  "relocates."),
    DOUBLE_OPTION(blob_garbage_collection_force_threshold, "1", 0, 1, RUNTIME,
                  "Policy age: when the garbage ratio of the oldest batch of blob files (the "
                  "oldest file and the files after it that no table links to; it must lie "
                  "within the age cutoff) reaches this, the tables linked to the oldest blob "
                  "file are compacted (forced GC); 1 turns forcing off. Policy group: the "
                  "garbage ratio at which a group is collected."),
    ENUM_OPTION(blob_gc_policy, "age", "age|group", RUNTIME,
                "How blob garbage is reclaimed: age relocates blobs from the oldest files "
                "during compaction (RocksDB's integrated BlobDB); group keeps each flush's "
                "values in their own value-log group and rewrites a group when its garbage "
                "ratio passes the threshold."),
    SIZE_OPTION(blob_cache_size, "0", 0, TIB, OPEN_TIME,
                "Capacity of a separate cache of blob values; 0 shares the block cache."),
    INT_OPTION(max_bgerror_resume_count, "10", 0, 1000000, RUNTIME,
               "How many times in a row a flush or compaction that ran out of memory is "
               "abandoned and tried again before the error makes the database read-only "
               "(MAYFLY_ECLOSED until it is reopened); 0: never tried again. Other "
               "background errors are never retried."),
    INT_OPTION(bgerror_resume_retry_interval, "100000", 0, 60000000, RUNTIME,
               "Microseconds a background thread waits before retrying a flush or "
               "compaction that ran out of memory."),
    /* Lifetime tracing (docs/tracing.md). Changing any of them on an open database closes
     * the current trace session and, if trace_dir is set, starts a new one. */
    STRING_OPTION(trace_dir, "", RUNTIME,
                  "Directory for lifetime trace files (docs/tracing.md); empty turns tracing "
                  "off. Setting it on an open database starts a new trace session, clearing "
                  "it closes the trace files."),
    BOOL_OPTION(trace_key_hash, "false", RUNTIME,
                "Trace a 64-bit hash of each user key instead of the key (smaller traces; the "
                "analyzer then cannot count the compactions a key went through)."),
    BOOL_OPTION(trace_gets, "false", RUNTIME,
                "Trace every get too (the training export's reads since the last write)."),
};

#define OPTION_COUNT (sizeof option_table / sizeof option_table[0])

static const char *type_name(enum option_type t) {
  switch (t) {
    case OPT_BOOL: return "bool";
    case OPT_INT: return "int";
    case OPT_SIZE: return "size";
    case OPT_DOUBLE: return "double";
    case OPT_ENUM: return "enum";
    case OPT_STRING: return "string";
  }
  return "?";
}

static const struct option_desc *find_option(const char *name) {
  for (size_t i = 0; i < OPTION_COUNT; i++)
    if (strcmp(option_table[i].name, name) == 0) return &option_table[i];
  return NULL;
}

static void *field_of(struct mayfly_options *o, const struct option_desc *d) {
  return (char *)o + d->offset;
}

static const void *const_field_of(const struct mayfly_options *o, const struct option_desc *d) {
  return (const char *)o + d->offset;
}

/* ---- formatting (canonical text; parsing it back gives the same value) ---- */

/* Sizes print with the largest binary suffix that divides them exactly ("64MiB", "4KiB"),
 * else as plain bytes, so the docs and the OPTIONS file stay readable. */
static void format_size(uint64_t v, char *buf, size_t n) {
  static const struct { const char *suffix; unsigned shift; } units[] = {
      {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
  for (size_t i = 0; v != 0 && i < sizeof units / sizeof units[0]; i++) {
    uint64_t unit = UINT64_C(1) << units[i].shift;
    if (v % unit == 0) {
      snprintf(buf, n, "%" PRIu64 "%s", v / unit, units[i].suffix);
      return;
    }
  }
  snprintf(buf, n, "%" PRIu64, v);
}

/* The shortest %g text that strtod reads back as exactly v ("1.0001", not
 * "1.0001000000000001"); 17 significant digits always round-trip a double. %g switches to
 * an exponent once the integer part has more digits than the precision ("1e+01"), so the
 * precision is raised to cover the integer digits while that stays within 17. */
static void format_double(double v, char *buf, size_t n) {
  int precision = 1;
  for (; precision < 17; precision++) {
    snprintf(buf, n, "%.*g", precision, v);
    if (strtod(buf, NULL) == v) break;
  }
  double magnitude = v < 0 ? -v : v; /* no libm: the library does not link it */
  if (magnitude >= 1 && magnitude < 1e17) {
    char integer_part[24];
    int digits = snprintf(integer_part, sizeof integer_part, "%" PRIu64, (uint64_t)magnitude);
    if (digits > precision) precision = digits;
  }
  snprintf(buf, n, "%.*g", precision, v);
}

/* Copies the index-th '|'-separated name of `values` into buf ("?" if there is none). */
static void enum_name(const char *values, int index, char *buf, size_t n) {
  const char *p = values;
  for (int i = 0; i < index && p; i++) {
    p = strchr(p, '|');
    if (p) p++;
  }
  if (!p || index < 0) {
    snprintf(buf, n, "?");
    return;
  }
  size_t len = strcspn(p, "|");
  snprintf(buf, n, "%.*s", (int)len, p);
}

static void format_value(const struct mayfly_options *o, const struct option_desc *d,
                         char *buf, size_t n) {
  const void *f = const_field_of(o, d);
  switch (d->type) {
    case OPT_BOOL: snprintf(buf, n, "%s", *(const int *)f ? "true" : "false"); break;
    case OPT_INT: snprintf(buf, n, "%d", *(const int *)f); break;
    case OPT_SIZE: format_size(*(const uint64_t *)f, buf, n); break;
    case OPT_DOUBLE: format_double(*(const double *)f, buf, n); break;
    case OPT_ENUM: enum_name(d->values, *(const int *)f, buf, n); break;
    case OPT_STRING: snprintf(buf, n, "%s", (const char *)f); break;
  }
}

/* ---- parsing ---- */

/* A parsed value before it is stored: the field is written only after every check passed. */
union option_value {
  int i;
  uint64_t u;
  double d;
  const char *s; /* OPT_STRING: the validated text itself */
};

static int out_of_range(const struct option_desc *d, const char *text) {
  if (d->type == OPT_DOUBLE) {
    char lo[40], hi[40];
    format_double(d->dmin, lo, sizeof lo);
    format_double(d->dmax, hi, sizeof hi);
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is out of range [%s, %s]", d->name,
                  text, lo, hi);
  }
  return MF_ERR(MAYFLY_EINVAL,
                "option %s: value \"%.200s\" is out of range [%" PRId64 ", %" PRId64 "]",
                d->name, text, d->min, d->max);
}

/* Reads the decimal digits at *p into *out, advancing *p. Returns how many digits there
 * were; *overflow is set when the number does not fit in 64 bits. */
static size_t scan_digits(const char **p, uint64_t *out, bool *overflow) {
  const char *s = *p;
  uint64_t v = 0;
  *overflow = false;
  while (*s >= '0' && *s <= '9') {
    unsigned digit = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - digit) / 10) *overflow = true;
    else v = v * 10 + digit;
    s++;
  }
  size_t n = (size_t)(s - *p);
  *p = s;
  *out = v;
  return n;
}

static int parse_bool(const struct option_desc *d, const char *text, union option_value *out) {
  static const char *const truthy[] = {"true", "1", "yes", "on"};
  static const char *const falsy[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, truthy[i]) == 0) {
      out->i = 1;
      return MAYFLY_OK;
    }
    if (strcasecmp(text, falsy[i]) == 0) {
      out->i = 0;
      return MAYFLY_OK;
    }
  }
  return MF_ERR(MAYFLY_EINVAL,
                "option %s: value \"%.200s\" is not a boolean (true/false/1/0/yes/no/on/off)",
                d->name, text);
}

static int parse_int(const struct option_desc *d, const char *text, union option_value *out) {
  const char *p = text;
  bool negative = false;
  if (*p == '-' || *p == '+') negative = (*p++ == '-');
  uint64_t magnitude;
  bool overflow;
  if (scan_digits(&p, &magnitude, &overflow) == 0 || *p != '\0')
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is not an integer", d->name, text);
  /* Every range lies inside int, so any magnitude beyond it is simply out of range. */
  if (overflow || magnitude > (uint64_t)INT64_MAX) return out_of_range(d, text);
  int64_t v = negative ? -(int64_t)magnitude : (int64_t)magnitude;
  if (v < d->min || v > d->max) return out_of_range(d, text);
  out->i = (int)v;
  return MAYFLY_OK;
}

static int parse_size(const struct option_desc *d, const char *text, union option_value *out) {
  static const struct { const char *suffix; unsigned shift; } suffixes[] = {
      {"", 0},     {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20}, {"mib", 20},
      {"g", 30},   {"gb", 30}, {"gib", 30}, {"t", 40},  {"tb", 40}, {"tib", 40}};
  if (text[0] == '-')
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is negative; sizes cannot be",
                  d->name, text);
  const char *p = text;
  uint64_t count;
  bool overflow;
  size_t digits = scan_digits(&p, &count, &overflow);
  int shift = -1;
  for (size_t i = 0; digits > 0 && i < sizeof suffixes / sizeof suffixes[0]; i++)
    if (strcasecmp(p, suffixes[i].suffix) == 0) shift = (int)suffixes[i].shift;
  if (shift < 0)
    return MF_ERR(MAYFLY_EINVAL,
                  "option %s: value \"%.200s\" is not a size (bytes, optionally with a suffix "
                  "K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB, all powers of 1024)",
                  d->name, text);
  if (overflow || count > (UINT64_MAX >> shift)) return out_of_range(d, text);
  uint64_t v = count << shift;
  if (v < (uint64_t)d->min || v > (uint64_t)d->max) return out_of_range(d, text);
  out->u = v;
  return MAYFLY_OK;
}

static int parse_double(const struct option_desc *d, const char *text, union option_value *out) {
  /* strtod skips leading blanks; we want the value exactly as given, like the other types. */
  char *end = NULL;
  double v = isspace((unsigned char)text[0]) ? 0 : strtod(text, &end);
  if (!end || end == text || *end != '\0')
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is not a number", d->name, text);
  if (!isfinite(v))
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is not a finite number", d->name,
                  text);
  if (v < d->dmin || v > d->dmax) return out_of_range(d, text);
  out->d = v;
  return MAYFLY_OK;
}

static int parse_enum(const struct option_desc *d, const char *text, union option_value *out) {
  size_t len = strlen(text);
  int index = 0;
  for (const char *p = d->values; p; index++) {
    size_t n = strcspn(p, "|");
    if (n == len && strncasecmp(p, text, n) == 0) {
      out->i = index;
      return MAYFLY_OK;
    }
    p = p[n] ? p + n + 1 : NULL;
  }
  return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" is not one of %s", d->name, text,
                d->values);
}

/* Strings must survive options_to_text and mayfly_options_parse unchanged: that text is
 * "name=value" lines, joined with ';' and trimmed of blanks, so a value may not contain ';' or
 * control characters, nor start or end with a blank. The empty string is a value. */
static int parse_string(const struct option_desc *d, const char *text, union option_value *out) {
  size_t len = strlen(text);
  if (len >= MF_OPTION_STRING_MAX)
    return MF_ERR(MAYFLY_EINVAL, "option %s: value of %zu bytes is longer than %d bytes",
                  d->name, len, MF_OPTION_STRING_MAX - 1);
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f || text[i] == ';')
      return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" contains ';' or a control "
                    "character", d->name, text);
  if (len > 0 && (text[0] == ' ' || text[len - 1] == ' '))
    return MF_ERR(MAYFLY_EINVAL, "option %s: value \"%.200s\" starts or ends with a blank",
                  d->name, text);
  out->s = text;
  return MAYFLY_OK;
}

static int parse_value(const struct option_desc *d, const char *text, union option_value *out) {
  if (d->type == OPT_STRING) return parse_string(d, text, out);
  if (text[0] == '\0') return MF_ERR(MAYFLY_EINVAL, "option %s: empty value", d->name);
  switch (d->type) {
    case OPT_BOOL: return parse_bool(d, text, out);
    case OPT_INT: return parse_int(d, text, out);
    case OPT_SIZE: return parse_size(d, text, out);
    case OPT_DOUBLE: return parse_double(d, text, out);
    case OPT_ENUM: return parse_enum(d, text, out);
    case OPT_STRING: break; /* handled above */
  }
  return MF_ERR(MAYFLY_EINVAL, "option %s: unknown option type", d->name);
}

static void store_value(struct mayfly_options *o, const struct option_desc *d,
                        const union option_value *v) {
  void *f = field_of(o, d);
  switch (d->type) {
    case OPT_BOOL:
    case OPT_INT:
    case OPT_ENUM: *(int *)f = v->i; break;
    case OPT_SIZE: *(uint64_t *)f = v->u; break;
    case OPT_DOUBLE: *(double *)f = v->d; break;
    case OPT_STRING: memmove(f, v->s, strlen(v->s) + 1); break; /* length checked on parse */
  }
}

/* ---- the header's functions ---- */

void options_init_defaults(struct mayfly_options *o) {
  assert(o);
  memset(o, 0, sizeof *o);
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    union option_value v;
    int rc = parse_value(&option_table[i], option_table[i].default_text, &v);
    /* A default the parser rejects is a bug in the table; test_options checks every row. */
    assert(rc == MAYFLY_OK);
    if (rc == MAYFLY_OK) store_value(o, &option_table[i], &v);
  }
  o->env = env_posix();
}

int options_set(struct mayfly_options *o, const char *name, const char *value,
                int runtime_only) {
  if (!o || !name || !value)
    return MF_ERR(MAYFLY_EINVAL, "options_set: NULL %s", !o ? "options" : !name ? "name" : "value");
  const struct option_desc *d = find_option(name);
  if (!d) return MF_ERR(MAYFLY_EINVAL, "unknown option \"%.200s\"", name);
  if (runtime_only && !d->runtime_mutable)
    return MF_ERR(MAYFLY_ENOTSUP, "option %s cannot be changed on an open database", d->name);
  union option_value v;
  int rc = parse_value(d, value, &v);
  if (rc == MAYFLY_OK) store_value(o, d, &v);
  return rc;
}

int options_validate(const struct mayfly_options *o) {
  if (!o) return MF_ERR(MAYFLY_EINVAL, "options_validate: NULL options");
  if (o->level0_file_num_compaction_trigger > o->level0_slowdown_writes_trigger ||
      o->level0_slowdown_writes_trigger > o->level0_stop_writes_trigger)
    return MF_ERR(MAYFLY_EINVAL,
                  "options must satisfy level0_file_num_compaction_trigger (%d) <= "
                  "level0_slowdown_writes_trigger (%d) <= level0_stop_writes_trigger (%d)",
                  o->level0_file_num_compaction_trigger, o->level0_slowdown_writes_trigger,
                  o->level0_stop_writes_trigger);
  return MAYFLY_OK;
}

/* NULL restores the default (env_posix()). The options do not own the env: the caller keeps
 * it alive while any database opened with these options is open. */
void options_set_env(struct mayfly_options *o, mf_env *env) {
  assert(o);
  o->env = env ? env : env_posix();
}

/* Appends one "name=value\n" line per option, in table order, to out (existing content is
 * kept). Returns MAYFLY_OK, MAYFLY_ENOMEM (out may then hold a partial dump) or
 * MAYFLY_EINVAL for NULL arguments. */
int options_to_text(const struct mayfly_options *o, struct mf_buf *out) {
  if (!o || !out) return MF_ERR(MAYFLY_EINVAL, "options_to_text: NULL argument");
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    char value[MF_OPTION_STRING_MAX + 64], line[MF_OPTION_STRING_MAX + 160];
    format_value(o, &option_table[i], value, sizeof value);
    int n = snprintf(line, sizeof line, "%s=%s\n", option_table[i].name, value);
    if (n < 0 || (size_t)n >= sizeof line) /* cannot happen with the table's names */
      return MF_ERR(MAYFLY_EINVAL, "options_to_text: option %s does not fit a line",
                    option_table[i].name);
    int rc = mf_buf_append(out, line, (size_t)n);
    if (rc) return MF_ERR(rc, "options_to_text: out of memory");
  }
  return MAYFLY_OK;
}

/* The "range / values" column of the Markdown table. */
static void format_range(const struct option_desc *d, char *buf, size_t n) {
  char lo[40], hi[40];
  switch (d->type) {
    case OPT_BOOL: snprintf(buf, n, "`true`, `false`"); return;
    case OPT_STRING:
      snprintf(buf, n, "text, at most %d bytes, no `;`", MF_OPTION_STRING_MAX - 1);
      return;
    case OPT_INT:
      snprintf(buf, n, "[%" PRId64 ", %" PRId64 "]", d->min, d->max);
      return;
    case OPT_SIZE:
      format_size((uint64_t)d->min, lo, sizeof lo);
      format_size((uint64_t)d->max, hi, sizeof hi);
      snprintf(buf, n, "[%s, %s]", lo, hi);
      return;
    case OPT_DOUBLE:
      format_double(d->dmin, lo, sizeof lo);
      format_double(d->dmax, hi, sizeof hi);
      snprintf(buf, n, "[%s, %s]", lo, hi);
      return;
    case OPT_ENUM: {
      /* Pipes would split the Markdown cell, so list the names as code spans. */
      size_t used = 0;
      buf[0] = '\0';
      for (const char *p = d->values; p && used < n;) {
        size_t len = strcspn(p, "|");
        int w = snprintf(buf + used, n - used, "%s`%.*s`", used ? ", " : "", (int)len, p);
        if (w < 0) break;
        used += (size_t)w;
        p = p[len] ? p + len + 1 : NULL;
      }
      return;
    }
  }
}

static const char markdown_intro[] =
    "# mayfly options\n"
    "\n"
    "<!-- Generated from the options table in src/db/options.c by tools/gen_options_doc.c;\n"
    "     do not edit. Regenerate with: build/gen_options_doc > docs/options.md -->\n"
    "\n"
    "Every option is set by name with a text value. `mayfly_options_create` returns the\n"
    "defaults below; `mayfly_options_set(opt, \"write_buffer_size\", \"128MiB\")` sets one\n"
    "option, and `mayfly_options_parse(opt, \"name=value;name=value\")` sets several (blanks\n"
    "around names and values and empty segments are ignored; on error the options are left\n"
    "unchanged). Booleans accept `true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off`; enums\n"
    "take one of the listed names; both ignore case. Sizes are a byte count, optionally\n"
    "followed by `K`, `KB`, `KiB`, `M`, `MB`, `MiB`, `G`, `GB`, `GiB`, `T`, `TB` or `TiB`\n"
    "(case-insensitive, all powers of 1024: `4k` is 4096, `64MiB` is 67108864). Integers and\n"
    "sizes must be whole numbers without trailing text; doubles must be finite. A value out\n"
    "of range fails with `MAYFLY_EINVAL` and a message naming the option and the range.\n"
    "Strings are taken literally, without quotes; they may be empty but may not contain `;`\n"
    "or control characters, nor begin or end with a blank.\n"
    "\n"
    "Options marked runtime-mutable can also be changed on an open database with\n"
    "`mayfly_set_option(db, name, value)`; the others are read once by `mayfly_open`, and\n"
    "`mayfly_set_option` refuses them with `MAYFLY_ENOTSUP`. The L0 triggers must satisfy\n"
    "`level0_file_num_compaction_trigger <= level0_slowdown_writes_trigger <=\n"
    "level0_stop_writes_trigger`; this is checked when the database is opened and when one of\n"
    "them is changed at runtime.\n"
    "\n"
    "| name | type | default | range / values | runtime-mutable | description |\n"
    "|---|---|---|---|---|---|\n";

/* Returns MAYFLY_OK, or MAYFLY_EIO if writing to out failed. */
int options_write_markdown(FILE *out) {
  if (!out) return MF_ERR(MAYFLY_EINVAL, "options_write_markdown: NULL stream");
  struct mayfly_options defaults;
  options_init_defaults(&defaults);
  fputs(markdown_intro, out);
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const struct option_desc *d = &option_table[i];
    char value[MF_OPTION_STRING_MAX + 64], cell[MF_OPTION_STRING_MAX + 72], range[160];
    format_value(&defaults, d, value, sizeof value);
    format_range(d, range, sizeof range);
    /* An empty code span would not render: say "empty". */
    if (value[0]) snprintf(cell, sizeof cell, "`%s`", value);
    else snprintf(cell, sizeof cell, "empty");
    fprintf(out, "| `%s` | %s | %s | %s | %s | %s |\n", d->name, type_name(d->type), cell,
            range, d->runtime_mutable ? "yes" : "no", d->doc);
  }
  if (fflush(out) != 0 || ferror(out))
    return MF_ERR(MAYFLY_EIO, "options_write_markdown: write failed");
  return MAYFLY_OK;
}
