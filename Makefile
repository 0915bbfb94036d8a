# Parley build. `make run` and `make test` are the two commands a newcomer needs;
# both install missing Debian packages first (scripts/install-deps.sh).
#
# Variants share the sources and differ in compiler and flags; each builds into
# build/<variant>/:  release (gcc -O2 -g; the binary is copied to bin/parley),
# asan (clang, AddressSanitizer + UndefinedBehaviorSanitizer), tsan (clang,
# ThreadSanitizer, for the log's tests), fuzz (clang, libFuzzer + ASan + UBSan).

BUILD ?= release
PYTHON := /usr/bin/python3

ifeq ($(BUILD),release)
  CC := gcc
  OPT := -O2 -g
  SAN :=
else ifeq ($(BUILD),asan)
  CC := clang
  OPT := -O1 -g -fno-omit-frame-pointer
  SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
  # The test builds treat warnings as errors, so none can slip into main.
  OPT += -Werror
else ifeq ($(BUILD),tsan)
  CC := clang
  OPT := -O1 -g -fno-omit-frame-pointer -Werror
  SAN := -fsanitize=thread
else ifeq ($(BUILD),fuzz)
  CC := clang
  OPT := -O1 -g -fno-omit-frame-pointer
  SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  OPT += -Werror
else
  $(error BUILD must be release, asan, tsan or fuzz)
endif

OUT := build/$(BUILD)
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SAN) -pthread -MMD -MP $(CFLAGS)
LDLIBS_ALL := -Wl,--as-needed -lulfius -lorcania -lyder -lmicrohttpd -ljansson -ljwt -largon2 -lgnutls -lzstd -lmagic -lwslay -pthread $(LDLIBS)

# Include paths by folder, so that a wrong include fails the build: every
# file of src/ sees the public headers (include/parley/, include/wal/) and
# the private headers of its own folder only; wal/ sees only its own headers
# (it knows nothing of the server); tests, fuzz harnesses and benchmarks may
# reach private headers (-Isrc, -Iwal). scripts/check-layers.py checks what
# the public headers allow against the layer table of docs/architecture.md.
INC_PUBLIC := -Iinclude -Iinclude/wal
inc_for = $(if $(filter wal/%,$1),-Iinclude/wal -Iwal,$(if $(filter src/%,$1),$(INC_PUBLIC)$(if $(filter 3,$(words $(subst /, ,$1))), -I$(dir $1)),$(INC_PUBLIC) -Isrc -Iwal))

LIB_SRC := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_ASM := src/api/openapi_blob.S
# The web client's files (src/web/, built by esbuild into build/web/) are
# linked in as bytes, like the OpenAPI document: see "the web client" below.
WEB_OBJ := $(OUT)/web/assets_blob.o $(OUT)/web/assets_table.o
LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/%.o) $(LIB_ASM:%.S=$(OUT)/%.o) $(WEB_OBJ)
MAIN_OBJ := $(OUT)/src/main.o
WAL_SRC := $(sort $(wildcard wal/*.c))
WAL_OBJ := $(WAL_SRC:%.c=$(OUT)/%.o)
WAL_TEST_SRC := tests/test_main.c $(sort $(wildcard tests/wal/*.c))
WAL_TEST_OBJ := $(WAL_TEST_SRC:%.c=$(OUT)/%.o)
# The unit tests use the file helpers of the log's tests (tests/unit/testutil.h).
UNIT_SRC := tests/test_main.c $(sort $(wildcard tests/unit/*.c)) tests/wal/wal_testutil.c
UNIT_OBJ := $(UNIT_SRC:%.c=$(OUT)/%.o)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(OUT)/%)

.PHONY: all build web test-web test-web-tls run test layers unit wal-test crash crash-smoke crash-server crash-server-smoke soak soak-smoke bench-wal e2e stress asan asan-test asan-unit asan-wal asan-e2e tsan-wal tsan-unit fuzz fuzz-smoke bench bench-plots testssl flake-hunt container-test deps test-deps clean
.DEFAULT_GOAL := all
.SECONDARY:

all: bin/parley

# ---- build -------------------------------------------------------------------

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(call inc_for,$<) -c $< -o $@

$(OUT)/%.o: %.S docs/openapi.json
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -c $< -o $@

# ---- the web client (src/web/) --------------------------------------------------
# npm installs the packages pinned by src/web/package-lock.json into
# src/web/node_modules (never committed); src/web/build.mjs bundles the client
# and the documentation pages with esbuild into build/web/dist/ and writes
# build/web/assets.S (the bytes) and assets.c (the table h_web.c serves).
WEB_NPM := src/web/node_modules/.package-lock.json
WEB_SRC := $(shell find src/web -path src/web/node_modules -prune -o -type f -print)

# npm ci runs once, then again only when package.json or the lockfile changes.
$(WEB_NPM): src/web/package.json src/web/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is missing (the web client's build needs node and npm): run scripts/install-deps.sh" >&2; exit 1; }
	@echo "npm ci (src/web): the packages pinned by src/web/package-lock.json"
	@cd src/web && npm ci --no-audit --no-fund --loglevel=error || { \
	  echo "make: npm ci failed in src/web: the web client's packages (src/web/package-lock.json) come from the npm registry once;" >&2; \
	  echo "      check the network or the proxy (npm config get registry: $$(npm config get registry)) and run make again." >&2; \
	  exit 1; }
	@touch $@

build/web/stamp: $(WEB_SRC) $(WEB_NPM)
	@mkdir -p build/web
	node src/web/build.mjs build/web
	@touch $@

$(OUT)/web/assets_blob.o: build/web/stamp
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -c build/web/assets.S -o $@

$(OUT)/web/assets_table.o: build/web/stamp src/api/web_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc/api -c build/web/assets.c -o $@

web: build/web/stamp

# The browser tests (tests/web/*.test.mjs): node's test runner, playwright-core
# driving Debian's chromium against the real binary. `make test` runs the smoke
# set (tests/web/smoke.test.mjs).
WEB_TESTS ?= $(sort $(wildcard tests/web/*.test.mjs))

test-web: bin/parley
	node --test --test-concurrency=1 $(WEB_TESTS)

# The same browser tests, every server started with TLS (a self-signed
# certificate; cookies Secure, wss:).
test-web-tls: bin/parley
	PARLEY_WEB_TLS=1 node --test --test-concurrency=1 $(WEB_TESTS)

$(OUT)/libparley.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# wal/ is its own library: it includes nothing from src/.
$(OUT)/libwal.a: $(WAL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/parley: $(MAIN_OBJ) $(OUT)/libparley.a $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/unit_tests: $(UNIT_OBJ) $(OUT)/libparley.a $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/wal_tests: $(WAL_TEST_OBJ) $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/wal_crash_writer: $(OUT)/tests/crash/wal_writer.o $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/wal_bench: $(OUT)/scripts/bench/wal_bench.o $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/bench_hello: $(OUT)/scripts/bench/baseline.o
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/bench_ws_client: $(OUT)/scripts/bench/ws_client.o
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/bench_ipblock: $(OUT)/scripts/bench/ipblock_bench.o $(OUT)/libparley.a $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/bench_seed_width: $(OUT)/scripts/bench/seed_width.o $(OUT)/libparley.a $(OUT)/libwal.a
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

$(OUT)/fuzz_%: $(OUT)/fuzz/fuzz_%.o $(OUT)/libparley.a $(OUT)/libwal.a
	$(CC) $(SAN) -fsanitize=fuzzer $^ -o $@ $(LDFLAGS) $(LDLIBS_ALL)

bin/parley: build/release/parley
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@

build: bin/parley

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- set-up and running ------------------------------------------------------

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

run: deps
	@$(MAKE) --no-print-directory bin/parley
	./bin/parley serve --bind 0.0.0.0 --port 7575 --data-dir ./data

# ---- tests -------------------------------------------------------------------

# Everything but long fuzzing: unit and e2e tests on the release build, the
# same under ASan/UBSan, and a short fuzz run of every harness; the last line
# adds them up (scripts/run-tests.sh).
test: test-deps
	@scripts/run-tests.sh

# The include graph against the layer table of docs/architecture.md.
layers:
	$(PYTHON) scripts/check-layers.py

unit: build/release/unit_tests
	build/release/unit_tests

wal-test: build/release/wal_tests
	build/release/wal_tests

e2e: bin/parley build/release/wal_crash_writer
	PARLEY_BIN=bin/parley PARLEY_WAL_WRITER=build/release/wal_crash_writer \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

asan:
	@$(MAKE) --no-print-directory BUILD=asan build/asan/parley build/asan/unit_tests \
	  build/asan/wal_tests build/asan/wal_crash_writer

# The sanitizers make any memory error, leak or undefined behaviour fatal,
# and the e2e fixture fails a test whose server did not exit cleanly.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

asan-test: asan-unit asan-wal asan-e2e tsan-wal tsan-unit

asan-unit: asan
	$(SAN_ENV) build/asan/unit_tests

asan-wal: asan
	$(SAN_ENV) build/asan/wal_tests

# The log's threads (appenders, writer, waiters, snapshots) under
# ThreadSanitizer: any data race fails the test it happens in.
tsan-wal:
	@$(MAKE) --no-print-directory BUILD=tsan build/tsan/wal_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/wal_tests

# The unit tests under ThreadSanitizer: the store's, the event ring's and the
# limiters' concurrency tests are among them.
tsan-unit:
	@$(MAKE) --no-print-directory BUILD=tsan build/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/unit_tests

asan-e2e: asan
	$(SAN_ENV) PARLEY_BIN=build/asan/parley PARLEY_SANITIZED=1 \
	  PARLEY_WAL_WRITER=build/asan/wal_crash_writer \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

# The full WebSocket stress of issue 7: 1,000 simultaneous connections and 64
# clients connecting and disconnecting for a minute, against the ASan build.
stress: asan
	$(SAN_ENV) PARLEY_BIN=build/asan/parley PARLEY_SANITIZED=1 PARLEY_STRESS=full \
	  $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/e2e/test_realtime_load.py -k burst

FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 5

fuzz:
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke:
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins
	scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BIN)

# The log under SIGKILL at random moments: every acknowledged record must
# survive (scripts/crash-wal.sh). `make test` runs a short version.
CRASH_ROUNDS ?= 300
CRASH_SMOKE_ROUNDS ?= 25

crash: build/release/wal_crash_writer
	scripts/crash-wal.sh $(CRASH_ROUNDS)

crash-smoke: build/release/wal_crash_writer
	scripts/crash-wal.sh $(CRASH_SMOKE_ROUNDS)

# The whole server under SIGKILL at random moments, mixed load from several
# threads (posts, edits, deletes, reactions, uploads, registrations) on one
# data directory; every acknowledged write is checked after each restart
# (tests/crash/crash_server.py). CRASH_ROUNDS=N on the command line sets the
# rounds (default 200); `make test` runs 5.
CRASH_SERVER_ROUNDS := $(if $(filter command line environment,$(origin CRASH_ROUNDS)),$(CRASH_ROUNDS),200)
CRASH_SERVER_SMOKE_ROUNDS ?= 5

crash-server: bin/parley
	$(PYTHON) tests/crash/crash_server.py $(CRASH_SERVER_ROUNDS)

crash-server-smoke: bin/parley
	$(PYTHON) tests/crash/crash_server.py $(CRASH_SERVER_SMOKE_ROUNDS)

# SOAK_SECONDS (default 600) of mixed load with WebSocket and SSE churn
# against one server, its RSS and descriptors sampled; prints the curve and
# fails on growth after warm-up, descriptors not back to baseline, or any
# error (scripts/soak.py). soak-smoke: 20 s (not part of `make test`).
SOAK_SECONDS ?= 600

soak: bin/parley
	$(PYTHON) scripts/soak.py $(SOAK_SECONDS)

soak-smoke: bin/parley
	$(PYTHON) scripts/soak.py 20

# Durable appends per second with 1, 8 and 64 appenders against the raw
# write+fdatasync rate of the same disk, and the compression ratio.
bench-wal: build/release/wal_bench
	build/release/wal_bench

# The node baselines of make bench (P3's plain `ws` broadcast server):
# packages pinned by scripts/bench/node/package-lock.json, installed by npm ci
# into scripts/bench/node/node_modules (never committed), again only when the
# lockfile changes.
BENCH_NPM := scripts/bench/node/node_modules/.package-lock.json
$(BENCH_NPM): scripts/bench/node/package.json scripts/bench/node/package-lock.json
	@echo "npm ci (scripts/bench/node): the packages pinned by its package-lock.json"
	@cd scripts/bench/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench:
	@scripts/install-deps.sh --bench
	@$(MAKE) --no-print-directory bin/parley $(BENCH_NPM)
	@$(MAKE) --no-print-directory build/release/bench_hello build/release/bench_ws_client \
	  build/release/bench_ipblock build/release/bench_seed_width
	scripts/bench/run.sh

# Redraws docs/bench/*.svg (gnuplot) from the data of the last `make bench`
# in build/bench/, without measuring anything.
bench-plots:
	@scripts/install-deps.sh --bench
	/usr/bin/python3 scripts/bench/plots.py

# Debian's testssl.sh against the TLS port of a server started for it
# (scripts/testssl.sh; minutes, so not in `make test`): fails on any weak
# protocol or cipher; the report is build/testssl.txt.
testssl: bin/parley
	scripts/testssl.sh

# make test N times back to back with one core kept busy (FLAKE_SCOPE=e2e:
# only the e2e and asan-e2e suites); ends "flake-hunt: N passed, M failed".
FLAKE_RUNS ?= 5
FLAKE_SCOPE ?= all

flake-hunt: test-deps
	scripts/flake-hunt.sh $(FLAKE_RUNS) $(FLAKE_SCOPE)

# Builds the production image with podman and checks it end to end (about a
# minute the first time; not part of `make test`).
container-test:
	scripts/container-test.sh

clean:
	rm -rf build bin
