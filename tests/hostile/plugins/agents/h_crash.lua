-- A crash inside a plugin call (the fault point lua.crash: abort() as a C library would): the
-- server dies; after two such crashes the job is failed at start instead of resumed.
-- expect: crash
return require("hostile_base").agent("h_crash", "step", function()
  __fault_crash()
end)
