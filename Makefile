# csock: `make` builds csock/core.so; `make demo` and `make test` also
# install what a fresh Debian 12 machine lacks.

LUA        ?= lua5.4
LUA_INCDIR ?= /usr/include/lua5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
ifneq ($(WERROR)$(filter true,$(CI)),)
WARN       += -Werror
endif
ALL_CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden $(WARN) -I$(LUA_INCDIR) $(CFLAGS)
LIBFLAG    ?= -shared
LDFLAGS    ?=

SRCS := $(wildcard csrc/*.c)
OBJS := $(SRCS:csrc/%.c=build/%.o)
ASAN_OBJS := $(SRCS:csrc/%.c=build/asan/%.o)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
HDRS := $(wildcard csrc/*.h)

# Where `make install` puts things (the rockspec passes its own).
PREFIX     ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4

export LUA_PATH  := lua/?.lua;lua/?/init.lua;spec/?.lua;;
export LUA_CPATH := ./?.so;;

DEBIAN_PKGS := lua5.4 liblua5.4-dev luarocks lua-busted make gcc clang libclang-rt-14-dev python3

.PHONY: all clean deps demo test check asan install
all: csock/core.so

build/%.o: csrc/%.c $(HDRS)
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The sanitizer build lives apart (build/asan/csock/core.so), so it never
# disturbs the normal one.
build/asan/%.o: csrc/%.c $(HDRS)
	@mkdir -p build/asan
	clang -std=gnu11 -fPIC $(WARN) -I$(LUA_INCDIR) $(ASAN_FLAGS) -c $< -o $@

build/asan/csock/core.so: $(ASAN_OBJS)
	@mkdir -p build/asan/csock
	clang -shared -fsanitize=address,undefined -o $@ $(ASAN_OBJS) -pthread

csock/core.so: $(OBJS)
	@mkdir -p csock
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) -pthread

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
	$(MAKE) all
	busted

# lua5.4 itself is not instrumented, so the ASan runtime is preloaded.
# Leak checking is for valgrind: Lua's own exit-time frees confuse LSan.
asan: deps
	$(MAKE) build/asan/csock/core.so
	LUA_CPATH='build/asan/?.so;;' CSOCK_SPEC_CPATH='build/asan/?.so' \
	LD_PRELOAD="$$(clang -print-file-name=libclang_rt.asan-x86_64.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	busted --cpath='build/asan/?.so'

install: all
	install -d $(INST_LIBDIR)/csock $(INST_LUADIR)/csock
	install -m 755 csock/core.so $(INST_LIBDIR)/csock/core.so
	install -m 644 lua/csock/*.lua $(INST_LUADIR)/csock/

clean:
	rm -rf build csock
