-- wrk script: POST a chat message with a bearer token. PARLEY_TOKEN comes
-- from the environment; the body is {"content": "..."} of about 100 bytes of
-- words drawn at random from a small vocabulary (chat-like text, so that the
-- log's compression is not flattered by identical messages), or PARLEY_BODY
-- verbatim when it is set. Used by scripts/bench/suite.py.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PARLEY_TOKEN")
local fixed = os.getenv("PARLEY_BODY")
local words = {"the", "deploy", "is", "green", "again", "can", "someone", "review", "my",
  "pull", "request", "lunch", "at", "noon", "?", "thanks", "!", "server", "restarted",
  "fine", "here", "looks", "good", "to", "me", "meeting", "moved", "tomorrow", "coffee",
  "build", "failed", "on", "main", "fixed", "it", "now", "ok", "please", "ship", "bug",
  "report", "from", "users", "latency", "dropped", "nice", "work", "team", "weekend",
  "plans", "release", "notes", "updated", "docs", "channel", "new", "feature", "flag"}
math.randomseed(os.time())

request = function()
  if fixed then
    return wrk.format(nil, nil, nil, fixed)
  end
  local parts, len = {}, 0
  while len < 100 do
    local w = words[math.random(#words)]
    parts[#parts + 1] = w
    len = len + #w + 1
  end
  return wrk.format(nil, nil, nil, '{"content":"' .. table.concat(parts, " ") .. '"}')
end
