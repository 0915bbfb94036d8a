-- wrk script: GET with a bearer token (PARLEY_TOKEN from the environment).
-- Used by scripts/bench/suite.py.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PARLEY_TOKEN")
