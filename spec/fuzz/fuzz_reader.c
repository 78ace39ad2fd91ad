/*
 * libFuzzer harness for the buffered reader (csrc/buffer.c): a stream of
 * bytes arrives in chunks of fuzzer-chosen sizes, read formats of
 * fuzzer-chosen kinds and counts consume it under a fuzzer-chosen line
 * limit, and a simple model checks every decision: the bytes handed out
 * are the bytes fed in, in order, nothing lost or invented; lines lose only
 * their "\n" (and a "\r" before it); "line too long" only when there is no
 * newline within the limit; memory stays within the limit plus a chunk.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

typedef struct Source {
  const uint8_t *p;
  size_t n;
} Source;

static unsigned take_byte(Source *s) {
  if (s->n == 0) return 0;
  s->n--;
  return *s->p++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 8) return 0;
  /* The first 8 bytes steer; the rest is the stream. */
  Source ctl = {data, 8};
  size_t limit = 1 + take_byte(&ctl) % 48 + (take_byte(&ctl) & 1) * 1000;
  unsigned chunk_seed = take_byte(&ctl), fmt_seed = take_byte(&ctl);
  unsigned count_seed = take_byte(&ctl) | (take_byte(&ctl) << 8);
  const uint8_t *stream = data + 8;
  size_t len = size - 8, fed = 0, consumed = 0;
  csock_Buffer b = {0};
  int eof = 0;
  for (int step = 0; step < 100000; step++) {
    fmt_seed = fmt_seed * 1103515245u + 12345u;
    int fmt = (int)((fmt_seed >> 16) % 4);
    count_seed = count_seed * 69069u + 1u;
    size_t count = (count_seed >> 16) % 64;
    size_t take = 0, keep = 0, want = 0;
    int r = csock_buf_scan(&b, fmt, count, limit, eof, &take, &keep, &want);
    size_t buffered = csock_buf_len(&b);
    CHECK(buffered == fed - consumed);
    if (r == CSOCK_SCAN_NEED) {
      CHECK(!eof && want > 0);
      if (fed == len) {
        eof = 1; /* the peer closed */
        continue;
      }
      chunk_seed = chunk_seed * 1664525u + 1013904223u;
      size_t n = 1 + (chunk_seed >> 8) % 300, avail;
      if (n > len - fed) n = len - fed;
      char *p = csock_buf_reserve(&b, n, &avail, NULL);
      CHECK(p != NULL && avail >= n);
      memcpy(p, stream + fed, n);
      csock_buf_commit(&b, n);
      fed += n;
      /* memory: a line reader never needs much more than the limit */
      if (fmt <= CSOCK_FMT_LINE_KEEP) CHECK(b.cap <= 2 * (limit + 300) + CSOCK_BUF_CHUNK);
      continue;
    }
    const uint8_t *expect = stream + consumed;
    const char *nl = memchr(csock_buf_head(&b), '\n', buffered);
    if (r == CSOCK_SCAN_DONE) {
      CHECK(keep <= take && take <= buffered);
      CHECK(memcmp(csock_buf_head(&b), expect, keep) == 0);
      if (fmt == CSOCK_FMT_COUNT) {
        CHECK(take == keep && (take == count || (eof && take == buffered && take < count)));
      } else if (fmt == CSOCK_FMT_ALL) {
        CHECK(eof && take == buffered && keep == take);
      } else if (nl != NULL) { /* a whole line */
        size_t line = (size_t)(nl - csock_buf_head(&b));
        CHECK(take == line + 1 && line <= limit);
        if (fmt == CSOCK_FMT_LINE_KEEP) CHECK(keep == take);
        else CHECK(keep == line || (keep + 1 == line && expect[keep] == '\r'));
        CHECK(memchr(expect, '\n', line) == NULL);
      } else { /* the last, unterminated line */
        CHECK(eof && take == buffered && keep == take && buffered <= limit);
      }
      csock_buf_consume(&b, take);
      consumed += take;
      continue;
    }
    if (r == CSOCK_SCAN_TOOLONG) {
      CHECK(fmt <= CSOCK_FMT_LINE_KEEP);
      CHECK(nl == NULL ? buffered > limit : (size_t)(nl - csock_buf_head(&b)) > limit);
      size_t skip = limit + 1; /* as a script would: read(n) it away */
      csock_buf_consume(&b, skip);
      consumed += skip;
      continue;
    }
    CHECK(r == CSOCK_SCAN_EOF);
    CHECK(eof && buffered == 0);
    if (fmt != CSOCK_FMT_COUNT || count == 0) break;
    break;
  }
  CHECK(!eof || consumed == fed); /* everything fed was handed out */
  csock_buf_release(&b, NULL);
  return 0;
}
