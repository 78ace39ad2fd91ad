# csock: `make` builds the Lua module (csock/core.so), the static library
# for embedders (build/libcsock.a) and the executable (bin/csock).
# `make demo` and `make test` also install what a fresh Debian 12 lacks.

LUA        ?= lua5.4
LUA_INCDIR ?= /usr/include/lua5.4
LUA_LIB    ?= -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
ifneq ($(WERROR)$(filter true,$(CI)),)
WARN       += -Werror
endif
ALL_CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden $(WARN) -I$(LUA_INCDIR) $(CFLAGS)
LIBFLAG    ?= -shared
LDFLAGS    ?=
LIBS       := -pthread -ldl

SRCS      := $(wildcard csrc/*.c)
HOST_SRCS := $(wildcard csrc/host/*.c)
HDRS      := $(wildcard csrc/*.h csrc/host/*.h)
LUA_MODS  := csock=lua/csock/init.lua csock.host=lua/csock/host.lua
OBJS      := $(SRCS:csrc/%.c=build/%.o) build/embedded.o
HOST_OBJS := $(HOST_SRCS:csrc/host/%.c=build/host/%.o)
# The engine and what it uses, no Lua: its harness (spec/fuzz/fuzz_engine.c) links only these.
ENGINE_SRCS := csrc/engine.c csrc/heap.c csrc/poll_epoll.c csrc/poll_poll.c csrc/sys.c
ENGINE_HDRS := csrc/engine.h csrc/heap.h csrc/poller.h csrc/sys.h

# The sanitizer build lives apart (build/asan/), so it never disturbs the normal one.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_OBJS  := $(OBJS:build/%=build/asan/%)
ASAN_HOST  := $(HOST_OBJS:build/%=build/asan/%)

# Where `make install` puts things (the rockspec passes its own).
PREFIX      ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4
INST_BINDIR ?= $(PREFIX)/bin

export LUA_PATH  := lua/?.lua;lua/?/init.lua;spec/?.lua;;
export LUA_CPATH := ./?.so;;

DEBIAN_PKGS := lua5.4 liblua5.4-dev luarocks lua-busted make gcc clang libclang-rt-14-dev \
               python3 nodejs valgrind
# busted, once per poll backend; names under .invalid are answered by a
# preloaded shim, so the spec never sends a DNS query off the machine
NODNS := $(CURDIR)/build/spec/slowdns.so
SPEC := LD_PRELOAD=$(NODNS) CSOCK_BACKEND=epoll busted && LD_PRELOAD=$(NODNS) CSOCK_BACKEND=poll busted
SHELL := /bin/bash

.PHONY: all clean deps demo test asan valgrind install examples bench fuzz
all: csock/core.so build/libcsock.a bin/csock

build/embedded.c: csrc/embed_lua.lua lua/csock/init.lua lua/csock/host.lua
	@mkdir -p build
	$(LUA) csrc/embed_lua.lua $@ $(LUA_MODS)

build/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -c $< -o $@

build/embedded.o: build/embedded.c csrc/embedded.h
	$(CC) $(ALL_CFLAGS) -Icsrc -c $< -o $@

csock/core.so: $(OBJS)
	@mkdir -p csock
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

build/libcsock.a: $(OBJS)
	rm -f $@ # made anew: a renamed source must not leave its old object inside
	ar rcs $@ $(OBJS)

bin/csock: $(HOST_OBJS) build/libcsock.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(HOST_OBJS) build/libcsock.a $(LUA_LIB) -lm -ldl $(LIBS)

build/asan/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -fPIC $(WARN) -I$(LUA_INCDIR) -Icsrc $(ASAN_FLAGS) -c $< -o $@

build/asan/embedded.o: build/embedded.c csrc/embedded.h
	@mkdir -p build/asan
	clang -std=gnu11 -fPIC -I$(LUA_INCDIR) -Icsrc $(ASAN_FLAGS) -c $< -o $@

build/asan/csock/core.so: $(ASAN_OBJS)
	@mkdir -p build/asan/csock
	clang -shared -fsanitize=address,undefined -o $@ $(ASAN_OBJS) $(LIBS)

# The shared ASan runtime, the one preloaded for lua5.4 when the spec runs it.
build/asan/bin/csock: $(ASAN_HOST) $(ASAN_OBJS)
	@mkdir -p build/asan/bin
	clang -fsanitize=address,undefined -shared-libasan -rdynamic \
	  -Wl,-rpath,$$(dirname $$(clang -print-file-name=libclang_rt.asan-x86_64.so)) \
	  -o $@ $(ASAN_HOST) $(ASAN_OBJS) $(LUA_LIB) -lm -ldl $(LIBS)

build/examples/embed: examples/embed/embed.c build/libcsock.a csrc/csock.h
	@mkdir -p build/examples
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -I$(LUA_INCDIR) -Icsrc -o $@ examples/embed/embed.c \
	  build/libcsock.a $(LUA_LIB) -lm -ldl $(LIBS)

examples: build/examples/embed

$(NODNS): spec/tools/slowdns.c
	@mkdir -p build/spec
	$(CC) -shared -fPIC -O2 -o $@ spec/tools/slowdns.c -ldl

# The engine's harness without libFuzzer: seeded random programs
# (`engine_test COUNT SEED`, or `engine_test -f FILE...` to replay), run by
# spec/engine_spec.lua; `make asan` hands it the sanitized build
# (CSOCK_ENGINE_TEST).
ENGINE_TEST      := build/spec/engine_test
ENGINE_TEST_ASAN := build/asan/spec/engine_test
$(ENGINE_TEST): spec/fuzz/fuzz_engine.c $(ENGINE_SRCS) $(ENGINE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -Icsrc -DENGINE_MAIN -o $@ spec/fuzz/fuzz_engine.c $(ENGINE_SRCS)
$(ENGINE_TEST_ASAN): spec/fuzz/fuzz_engine.c $(ENGINE_SRCS) $(ENGINE_HDRS)
	@mkdir -p $(dir $@)
	clang -std=gnu11 $(WARN) $(ASAN_FLAGS) -Icsrc -DENGINE_MAIN -o $@ spec/fuzz/fuzz_engine.c $(ENGINE_SRCS)

# libFuzzer harnesses (spec/fuzz/): the reader, addresses and the engine
# (random programs of watches, timers, work and hooks, on both backends) on
# their Lua-free layers, options and RESP (readresp/writeresp) through the
# Lua API. Seeds live in
# spec/fuzz/corpus/NAME, reproducers of fixed crashes in spec/fuzz/crashes/
# (replayed first); new finds go to build/fuzz/.
FUZZ_SECONDS ?= 20
FUZZ_FLAGS   := -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$(LUA_INCDIR) -Icsrc
FUZZERS      := reader addr options resp engine
build/fuzz/fuzz_reader: spec/fuzz/fuzz_reader.c csrc/buffer.c csrc/buffer.h
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_reader.c csrc/buffer.c
build/fuzz/fuzz_addr: spec/fuzz/fuzz_addr.c csrc/sockaddr.c csrc/sockaddr.h
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_addr.c csrc/sockaddr.c
build/fuzz/fuzz_engine: spec/fuzz/fuzz_engine.c $(ENGINE_SRCS) $(ENGINE_HDRS)
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_engine.c $(ENGINE_SRCS)
build/fuzz/fuzz_options: spec/fuzz/fuzz_options.c $(SRCS) build/embedded.c $(HDRS)
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_options.c $(SRCS) build/embedded.c $(LUA_LIB) -lm -ldl $(LIBS)
build/fuzz/fuzz_resp: spec/fuzz/fuzz_resp.c $(SRCS) build/embedded.c $(HDRS)
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_resp.c $(SRCS) build/embedded.c $(LUA_LIB) -lm -ldl $(LIBS)

fuzz: deps $(FUZZERS:%=build/fuzz/fuzz_%)
	@set -e; for f in $(FUZZERS); do \
	  mkdir -p spec/fuzz/corpus/$$f build/fuzz/new-$$f build/fuzz/crashes; \
	  crashes=$$(ls spec/fuzz/crashes/$$f-* 2>/dev/null || true); \
	  if [ -n "$$crashes" ]; then build/fuzz/fuzz_$$f $$crashes; fi; \
	  echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$f- build/fuzz/new-$$f spec/fuzz/corpus/$$f \
	    2>&1 | grep -E '^(stat::number_of_executed_units|#[0-9]+ +DONE)|ERROR|SUMMARY|^==' ; \
	  test $${PIPESTATUS[0]:-0} -eq 0 || exit 1; \
	done

# Installs the Debian packages the build and the tests need, if missing.
deps:
	@missing=""; for p in $(DEBIAN_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

demo: deps
	$(MAKE) all
	$(LUA) examples/demo.lua

test: deps
	$(MAKE) all examples $(NODNS) $(ENGINE_TEST)
	$(SPEC)

# lua5.4 itself is not instrumented, so the ASan runtime is preloaded.
# Leak checking is for valgrind: Lua's own exit-time frees confuse LSan.
ASAN_ENV := LUA_CPATH='build/asan/?.so;;' CSOCK_SPEC_CPATH='build/asan/?.so' CSOCK_BIN=build/asan/bin/csock \
	CSOCK_ENGINE_TEST=$(ENGINE_TEST_ASAN) \
	LD_PRELOAD="$$(clang -print-file-name=libclang_rt.asan-x86_64.so):$(NODNS)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan: deps
	$(MAKE) all build/asan/csock/core.so build/asan/bin/csock examples $(NODNS) $(ENGINE_TEST_ASAN)
	$(ASAN_ENV) CSOCK_BACKEND=epoll busted --cpath='build/asan/?.so'
	$(ASAN_ENV) CSOCK_BACKEND=poll busted --cpath='build/asan/?.so'

# memcheck over the whole spec on both backends: any error, or memory
# definitely lost, fails. busted is run in this process (--ignore-lua), or
# it would start lua5.4 again outside valgrind.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite
valgrind: deps
	$(MAKE) all examples $(NODNS) $(ENGINE_TEST)
	LD_PRELOAD=$(NODNS) CSOCK_BACKEND=epoll $(VALGRIND) $(LUA) /usr/bin/busted --ignore-lua
	LD_PRELOAD=$(NODNS) CSOCK_BACKEND=poll $(VALGRIND) $(LUA) /usr/bin/busted --ignore-lua

bench: deps
	bench/run

install: all
	install -d $(INST_LIBDIR)/csock $(INST_LUADIR)/csock $(INST_BINDIR)
	install -m 755 csock/core.so $(INST_LIBDIR)/csock/core.so
	install -m 644 lua/csock/*.lua $(INST_LUADIR)/csock/
	install -m 755 bin/csock $(INST_BINDIR)/csock

clean:
	rm -rf build csock bin
