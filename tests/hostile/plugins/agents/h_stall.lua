-- A C call that does not come back to Lua for a minute (the fault point lua.stall stands for a
-- C function that loops where the hook cannot stop it): the watchdog abandons the call, fails
-- the job and replaces the worker.
-- expect: failed: abandoned
return require("hostile_base").agent("h_stall", "step", function()
  __fault_stall(60)
end)
