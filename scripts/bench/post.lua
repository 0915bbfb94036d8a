-- wrk script: POST a JSON body with a bearer token (both from the environment:
-- PARLEY_TOKEN, PARLEY_BODY). Used by scripts/bench/suite.py.
wrk.method = "POST"
wrk.body = os.getenv("PARLEY_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PARLEY_TOKEN")
