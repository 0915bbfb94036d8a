-- wrk script: a request authenticated by a browser's session cookie
-- (PARLEY_COOKIE, "parley_session=..."), with its CSRF token
-- (PARLEY_CSRF) when set; PARLEY_METHOD and PARLEY_BODY make it a write.
-- Used by scripts/bench/suite.py (session cookies beside Bearer tokens).
wrk.headers["Cookie"] = os.getenv("PARLEY_COOKIE")
local csrf = os.getenv("PARLEY_CSRF")
if csrf then
  wrk.headers["X-CSRF-Token"] = csrf
end
local method = os.getenv("PARLEY_METHOD")
if method then
  wrk.method = method
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = os.getenv("PARLEY_BODY")
end
