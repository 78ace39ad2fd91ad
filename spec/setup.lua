-- spec/setup.lua: busted's helper script (.busted: helper = "spec/setup.lua"). busted runs
-- it once, before it loads any spec file; what it registers here belongs to busted's root
-- block, so it runs around every test of every file, outside the file's own hooks:
--   * before each test: the watchdog (H.arm_watchdog), which kills busted if the test runs
--     longer than H.TEST_DEADLINE seconds. A file or a describe that needs longer calls
--     H.deadline(seconds) (spec/helper.lua);
--   * after each test: csock.onerror(nil), so a handler a test set never reaches the next
--     one; the files the test named with H.remove_after_test are removed; then the
--     watchdog is disarmed.
-- The root's before_each runs before a file's, and its after_each after a file's, so the
-- watchdog also covers the file's own before_each and after_each.
local busted = require "busted"
local H = require "helper"

busted.before_each(function() H.arm_watchdog() end)

busted.after_each(function()
  -- the csock of the file being run (each file requires its own: busted insulates files)
  local csock = package.loaded.csock
  if csock then csock.onerror(nil) end
  H.remove_test_files()
  H.disarm_watchdog()
end)
