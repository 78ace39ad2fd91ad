rockspec_format = "3.0"
package = "csock"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "BSD sockets, buffered io and a poll loop for Lua 5.4, in C",
  detailed = [[
csock exposes BSD sockets to Lua 5.4 with the io library's conventions:
blocking calls with timeouts, nil/message/errno errors, buffered read/write/lines in C.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
