#!/usr/bin/env python3
"""Checks the include graph of the server against the layer table of
docs/architecture.md (the rows between <!-- layers --> and <!-- /layers -->):

  | `layer` | paths (files or folders, in backticks) | what it holds | `may`, `use` |

Every file of src/, include/ and wal/ must belong to exactly one layer (the
longest path that holds it); every #include "..." from one layer to another
must be listed in the first one's "may use"; every "may use" listed must be
used (the table tells the truth both ways); the layers' graph must have no
cycle. The build already refuses a private header of another folder
(per-folder include paths, Makefile's inc_for); this adds what the public
headers may not show: which layer may use which.

Prints one line per problem and ends with "check-layers: N passed, M failed"
(one check per file, per layer edge and the cycle check). Exit 1 on any
failure. With --graph, prints the layer graph the code has.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
TICKS = re.compile(r"`([^`]+)`")


def read_table():
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    if not m:
        sys.exit("check-layers: docs/architecture.md has no <!-- layers --> table")
    layers = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        name = TICKS.findall(cells[0])[0]
        paths = [p.rstrip("/") for p in TICKS.findall(cells[1])]
        uses = set(TICKS.findall(cells[-1]))
        layers[name] = {"paths": paths, "uses": uses}
    return layers


def source_files():
    for top in ("src", "include", "wal"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def owner(path, layers):
    best, best_len = None, -1
    for name, layer in layers.items():
        for p in layer["paths"]:
            if (path == p or path.startswith(p + "/")) and len(p) > best_len:
                best, best_len = name, len(p)
    return best


def resolve(including, target):
    """The repository path an #include "target" in `including` names, as the
    compiler finds it (the file's own folder, then include/, include/wal/)."""
    for base in (os.path.dirname(including), "include", "include/wal"):
        p = os.path.normpath(os.path.join(base, target))
        if os.path.exists(os.path.join(ROOT, p)):
            return p
    return None


def find_cycle(graph):
    state = {}

    def visit(n, trail):
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return trail + [n, m]
            if state.get(m) is None:
                found = visit(m, trail + [n])
                if found:
                    return found
        state[n] = 2
        return None

    for n in sorted(graph):
        if state.get(n) is None:
            found = visit(n, [])
            if found:
                return found[found.index(found[-1]):]
    return None


def main():
    layers = read_table()
    passed, failed = 0, 0
    edges = {}  # (from, to) -> an example "file includes header"
    for path in sorted(source_files()):
        mine = owner(path, layers)
        if mine is None:
            print("check-layers: %s belongs to no layer of docs/architecture.md" % path)
            failed += 1
            continue
        ok = True
        text = open(os.path.join(ROOT, path), encoding="utf-8", errors="replace").read()
        for target in INCLUDE.findall(text):
            found = resolve(path, target)
            if found is None:
                print("check-layers: %s includes \"%s\", which is no file of the tree"
                      % (path, target))
                ok = False
                continue
            theirs = owner(found, layers)
            if theirs is None or theirs == mine:
                continue
            edges.setdefault((mine, theirs), "%s includes %s" % (path, found))
            if theirs not in layers[mine]["uses"]:
                print("check-layers: %s (layer %s) includes %s (layer %s), which %s may not use"
                      % (path, mine, found, theirs, mine))
                ok = False
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)

    for name, layer in sorted(layers.items()):
        for used in sorted(layer["uses"]):
            if used not in layers:
                print("check-layers: layer %s may use %s, which is no layer" % (name, used))
                failed += 1
            elif (name, used) not in edges:
                print("check-layers: the table says %s uses %s, but no file of %s includes %s's "
                      "headers: remove it from the table" % (name, used, name, used))
                failed += 1
            else:
                passed += 1

    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    cycle = find_cycle(graph)
    if cycle:
        print("check-layers: the layers include each other in a cycle: %s"
              % " -> ".join(cycle))
        failed += 1
    else:
        passed += 1

    if "--graph" in sys.argv:
        for (a, b), why in sorted(edges.items()):
            print("%-9s -> %-9s (%s)" % (a, b, why))
    print("check-layers: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
