/* The receive buffer (see buffer.h). No Lua here. */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

void csock_buf_consume(csock_Buffer *b, size_t n) {
  b->start += (uint32_t)n; /* n <= the unread bytes */
  b->scanned = b->scanned > n ? b->scanned - (uint32_t)n : 0;
  if (b->start == b->end) b->start = b->end = 0; /* empty: rewind for free */
}

char *csock_buf_reserve(csock_Buffer *b, size_t want, size_t *avail, csock_BufPool *pool) {
  size_t len = b->end - b->start;
  if (b->data == NULL && want <= CSOCK_BUF_CHUNK && pool != NULL && pool->n > 0) {
    b->data = pool->blocks[--pool->n];
    b->cap = CSOCK_BUF_CHUNK;
  }
  if (b->cap - b->end < want && b->start > 0) { /* slide unread bytes down */
    memmove(b->data, b->data + b->start, len);
    b->start = 0;
    b->end = (uint32_t)len;
  }
  if (b->cap - b->end < want) {
    size_t cap = b->cap ? b->cap : CSOCK_BUF_CHUNK;
    while (cap - len < want) {
      if (cap >= CSOCK_BUF_MAX) return NULL;
      cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (data == NULL) return NULL;
    b->data = data;
    b->cap = (uint32_t)cap;
  }
  *avail = b->cap - b->end;
  return b->data + b->end;
}

ptrdiff_t csock_buf_findline(csock_Buffer *b) {
  size_t len = b->end - b->start;
  if (len <= b->scanned) return -1; /* nothing new (perhaps nothing allocated yet) */
  const char *nl = memchr(b->data + b->start + b->scanned, '\n', len - b->scanned);
  if (nl == NULL) {
    b->scanned = (uint32_t)len;
    return -1;
  }
  return nl - (b->data + b->start);
}

int csock_buf_scan(csock_Buffer *b, int fmt, size_t count, size_t limit, int eof,
                   size_t *take, size_t *keep, size_t *want) {
  size_t len = b->end - b->start;
  *want = CSOCK_BUF_CHUNK;
  switch (fmt) {
    case CSOCK_FMT_LINE:
    case CSOCK_FMT_LINE_KEEP: {
      ptrdiff_t nl = csock_buf_findline(b);
      if (nl >= 0 && (size_t)nl <= limit) { /* a line of `limit` bytes, then "\n", is fine */
        *take = *keep = (size_t)nl + 1;
        if (fmt == CSOCK_FMT_LINE) {
          *keep = (size_t)nl;
          if (*keep > 0 && b->data[b->start + *keep - 1] == '\r') (*keep)--;
        }
        return CSOCK_SCAN_DONE;
      }
      if (nl >= 0 || len > limit) return CSOCK_SCAN_TOOLONG;
      if (!eof) return CSOCK_SCAN_NEED;
      if (len == 0) return CSOCK_SCAN_EOF;
      *take = *keep = len; /* the last line need not end in "\n" */
      return CSOCK_SCAN_DONE;
    }
    case CSOCK_FMT_COUNT:
      if (count == 0 && len == 0 && eof) return CSOCK_SCAN_EOF; /* as file:read(0) */
      if (len >= count) {
        *take = *keep = count;
        return CSOCK_SCAN_DONE;
      }
      if (!eof) {
        if (count - len > *want)
          *want = count - len > CSOCK_FILL_MAX ? CSOCK_FILL_MAX : count - len;
        return CSOCK_SCAN_NEED;
      }
      if (len == 0) return CSOCK_SCAN_EOF;
      *take = *keep = len;
      return CSOCK_SCAN_DONE;
    default: /* CSOCK_FMT_ALL */
      if (!eof) {
        if (len > *want) *want = len > CSOCK_FILL_MAX ? CSOCK_FILL_MAX : len; /* grow geometrically */
        return CSOCK_SCAN_NEED;
      }
      *take = *keep = len;
      return CSOCK_SCAN_DONE;
  }
}

void csock_buf_release(csock_Buffer *b, csock_BufPool *pool) {
  if (b->cap == CSOCK_BUF_CHUNK && pool != NULL && pool->n < CSOCK_POOL_MAX)
    pool->blocks[pool->n++] = b->data;
  else
    free(b->data);
  memset(b, 0, sizeof *b);
}

void csock_pool_free(csock_BufPool *pool) {
  while (pool->n > 0) free(pool->blocks[--pool->n]);
}
