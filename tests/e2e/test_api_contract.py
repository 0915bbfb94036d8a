"""docs/api.md (the HTTP contract) and docs/openapi.json (this build's
document) stay in step: every endpoint the contract names is in the OpenAPI
document, except those on NOT_BUILT, each with the issue that builds it; an
endpoint on that list that the document has is an error too (take it off the
list). No server is needed: both are files of the repository."""
import json
import os
import re

from conftest import ROOT

METHODS = "GET|POST|PUT|PATCH|DELETE"
ENDPOINT = re.compile(r"\b((?:%s)(?:\|(?:%s))*) (/[^\s`,)|]*|\?[^\s`,)|]*)" % (METHODS, METHODS))

# Named by the contract, built by a later issue.
NOT_BUILT = {}


def normalise(path):
    """/a/{id}/ and /a/{user_id} are the same endpoint."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/") or "/")


def contract_endpoints():
    """{"METHOD /path"} named by docs/api.md. A section's heading gives the
    base of its relative paths ("## Auth — `/api/v1/auth`")."""
    found = set()
    base = ""
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        for line in f:
            heading = re.match(r"^## (.*)", line)
            if heading:
                title = heading.group(1)
                b = re.search(r"`(/[^`]+)`", title)
                base = "" if title.startswith("Outside") or not b else b.group(1)
                continue
            for m in ENDPOINT.finditer(line):
                path = m.group(2).split("?")[0]
                if not path.startswith("/api/") and base:
                    path = base + ("" if path in ("", "/") else path)
                for method in m.group(1).split("|"):
                    found.add("%s %s" % (method, normalise(path)))
    return found


def openapi_endpoints():
    with open(os.path.join(ROOT, "docs", "openapi.json"), encoding="utf-8") as f:
        doc = json.load(f)
    return {"%s %s" % (m.upper(), normalise(p))
            for p, ops in doc["paths"].items() for m in ops
            if m.upper() in METHODS.split("|")}


def test_every_endpoint_of_the_contract_is_in_the_openapi_document():
    contract, built = contract_endpoints(), openapi_endpoints()
    later = {e for group in NOT_BUILT.values() for e in group}
    assert len(contract) > 60, "the contract parser found too little: %s" % sorted(contract)
    missing = sorted(contract - built - later)
    assert not missing, "in docs/api.md, not in docs/openapi.json: %s" % missing


def test_the_not_built_list_only_holds_what_is_not_built():
    contract, built = contract_endpoints(), openapi_endpoints()
    for why, group in NOT_BUILT.items():
        for e in group:
            assert e in contract, "%s (%s) is not in docs/api.md" % (e, why)
            assert e not in built, "%s is built now: take it off NOT_BUILT (%s)" % (e, why)
