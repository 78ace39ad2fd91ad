/*
 * A binary min-heap of deadlines: the engine's timers. Nodes live inside
 * their owners and know their own position, so cancelling one is
 * O(log n) and nothing stale piles up. Lua-free.
 */
#ifndef CSOCK_HEAP_H
#define CSOCK_HEAP_H

#include <stdint.h>

typedef struct csock_HeapNode {
  int64_t when;   /* monotonic nanoseconds */
  uint32_t seq;   /* ties fire in the order they were set (compared modulo 2^32) */
  int32_t index;  /* position in the heap, -1 when not in it */
} csock_HeapNode;

typedef struct csock_Heap {
  csock_HeapNode **nodes;
  int n, cap;
  uint32_t seq;
} csock_Heap;

static inline int csock_heap_has(const csock_HeapNode *node) { return node->index >= 0; }
static inline csock_HeapNode *csock_heap_top(const csock_Heap *h) { return h->n ? h->nodes[0] : 0; }

/* Inserts (or moves) node to fire at `when`; -ENOMEM when memory is short
 * (the node is then out of the heap). */
int csock_heap_set(csock_Heap *h, csock_HeapNode *node, int64_t when);
/* Takes node out if it is in. */
void csock_heap_remove(csock_Heap *h, csock_HeapNode *node);
void csock_heap_free(csock_Heap *h);

#endif
