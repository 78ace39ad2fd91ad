/* The deadline heap (see heap.h). No Lua here. */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>

static int before(const csock_HeapNode *a, const csock_HeapNode *b) {
  /* seq wraps: of two nodes set at most 2^31 settings apart, the first is first */
  return a->when < b->when || (a->when == b->when && (int32_t)(a->seq - b->seq) < 0);
}

static void place(csock_Heap *h, int i, csock_HeapNode *node) {
  h->nodes[i] = node;
  node->index = i;
}

static void sift_up(csock_Heap *h, int i) {
  csock_HeapNode *node = h->nodes[i];
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!before(node, h->nodes[parent])) break;
    place(h, i, h->nodes[parent]);
    i = parent;
  }
  place(h, i, node);
}

static void sift_down(csock_Heap *h, int i) {
  csock_HeapNode *node = h->nodes[i];
  for (;;) {
    int child = 2 * i + 1;
    if (child >= h->n) break;
    if (child + 1 < h->n && before(h->nodes[child + 1], h->nodes[child])) child++;
    if (!before(h->nodes[child], node)) break;
    place(h, i, h->nodes[child]);
    i = child;
  }
  place(h, i, node);
}

int csock_heap_set(csock_Heap *h, csock_HeapNode *node, int64_t when) {
  csock_heap_remove(h, node);
  if (h->n == h->cap) {
    int cap = h->cap ? h->cap * 2 : 64;
    csock_HeapNode **nodes = realloc(h->nodes, sizeof *nodes * (size_t)cap);
    if (nodes == NULL) return -ENOMEM;
    h->nodes = nodes;
    h->cap = cap;
  }
  node->when = when;
  node->seq = h->seq++;
  place(h, h->n++, node);
  sift_up(h, node->index);
  return 0;
}

void csock_heap_remove(csock_Heap *h, csock_HeapNode *node) {
  int i = node->index;
  if (i < 0) return;
  node->index = -1;
  csock_HeapNode *last = h->nodes[--h->n];
  if (i == h->n) return;
  place(h, i, last);
  if (i > 0 && before(last, h->nodes[(i - 1) / 2])) sift_up(h, i);
  else sift_down(h, i);
}

void csock_heap_free(csock_Heap *h) {
  free(h->nodes);
  h->nodes = NULL;
  h->n = h->cap = 0;
}
