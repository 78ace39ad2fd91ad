/*
 * The receive buffer behind read/lines/recv: bytes the kernel handed over
 * that the script has not taken yet. Lua-free. Allocated on first use,
 * reused after, compacted instead of grown when it can be.
 */
#ifndef CSOCK_BUFFER_H
#define CSOCK_BUFFER_H

#include <stddef.h>
#include <stdint.h>

/* Offsets are 32-bit (a buffer holds at most CSOCK_BUF_MAX bytes): every
 * socket has two buffers, and every idle connection a socket. */
typedef struct csock_Buffer {
  char *data;
  uint32_t start;   /* first unread byte */
  uint32_t end;     /* one past the last unread byte */
  uint32_t cap;
  uint32_t scanned; /* unread bytes already searched for a newline */
} csock_Buffer;

#define CSOCK_BUF_CHUNK 16384
#define CSOCK_POOL_MAX 256
#define CSOCK_FILL_MAX (1024 * 1024) /* the most one recv asks for */
#define CSOCK_BUF_MAX ((size_t)1 << 31) /* the most one buffer holds */

/* Spare CHUNK-sized blocks, so that a buffer emptied by every request and
 * filled by the next one costs no malloc/free (nor the brk calls behind
 * them), and an idle connection holds no buffer at all. */
typedef struct csock_BufPool {
  char *blocks[CSOCK_POOL_MAX];
  int n;
} csock_BufPool;

static inline size_t csock_buf_len(const csock_Buffer *b) { return b->end - b->start; }
/* The unread bytes ("" when nothing was ever allocated: no NULL arithmetic). */
static inline const char *csock_buf_head(const csock_Buffer *b) {
  return b->data ? b->data + b->start : "";
}

/* Drops n unread bytes from the front. */
void csock_buf_consume(csock_Buffer *b, size_t n);

/* Room for at least `want` bytes after the unread ones (compacting first,
 * growing only when it must; a new buffer comes from the pool). Returns the
 * free space and sets *avail, or NULL when memory is short (or the buffer
 * would outgrow CSOCK_BUF_MAX). */
char *csock_buf_reserve(csock_Buffer *b, size_t want, size_t *avail, csock_BufPool *pool);

/* Marks n bytes written into the space csock_buf_reserve gave. */
static inline void csock_buf_commit(csock_Buffer *b, size_t n) { b->end += (uint32_t)n; }

/* Offset of the first '\n' among the unread bytes, or -1. Bytes searched
 * once are not searched again when more arrive. */
ptrdiff_t csock_buf_findline(csock_Buffer *b);

/* Read formats, as sock:read names them: "l", "L", "a", a count. */
enum { CSOCK_FMT_LINE, CSOCK_FMT_LINE_KEEP, CSOCK_FMT_ALL, CSOCK_FMT_COUNT };
/* What the buffered bytes say about one format. */
enum { CSOCK_SCAN_DONE, CSOCK_SCAN_NEED, CSOCK_SCAN_EOF, CSOCK_SCAN_TOOLONG };

/* Decides one read format against the unread bytes: DONE (consume *take
 * bytes, the first *keep of which are the value), NEED (more bytes: *want
 * is a good amount to ask the kernel for), EOF (nothing will come: the
 * reader says "closed"), TOOLONG (more than `limit` bytes before a newline; nothing
 * is consumed). `eof`: the peer has ended the stream. A line loses its
 * "\n" (and a "\r" before it) with CSOCK_FMT_LINE. */
int csock_buf_scan(csock_Buffer *b, int fmt, size_t count, size_t limit, int eof,
                   size_t *take, size_t *keep, size_t *want);

/* Drops the contents and gives the memory back (to the pool if it is a
 * standard block and the pool has room); the buffer stays usable. */
void csock_buf_release(csock_Buffer *b, csock_BufPool *pool);
/* Gives the memory back only if nothing is buffered. */
static inline void csock_buf_trim(csock_Buffer *b, csock_BufPool *pool) {
  if (b->data != 0 && b->start == b->end) csock_buf_release(b, pool);
}
void csock_pool_free(csock_BufPool *pool);

#endif
