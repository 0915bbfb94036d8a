-- wrk script: GET with a bearer token (PARLEY_TOKEN), cycling through the
-- paths of PARLEY_PATHS (separated by "|"), one after the other on each
-- connection. Used by scripts/bench/suite.py (P15's user searches).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PARLEY_TOKEN")
local paths = {}
for p in string.gmatch(os.getenv("PARLEY_PATHS"), "[^|]+") do
  paths[#paths + 1] = p
end
local next_path = 0

request = function()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
