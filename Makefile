# qvec: the two commands are `make run` and `make test`; see README.md.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
SHELL := /bin/bash
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 6333
CMAKE_FLAGS ?=

.PHONY: all setup configure build run test bench bench-full format tidy clean thread-safety \
        test-asan test-tsan fuzz crash-test soak docs install dashboard-screenshots

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

configure: setup $(BUILD_DIR)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# `run` builds only the server, so that a fresh clone serves within minutes.
run: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS) --target qvec
	@mkdir -p $(DATA_DIR)
	$(BUILD_DIR)/bin/qvec serve --data $(DATA_DIR) --host $(HOST) --port $(PORT)

test: export QVEC_SETUP_TEST=1
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 900

bench: export QVEC_SETUP_BENCH=1
bench: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS) --target qvec-bench
	@OMP_WAIT_POLICY=PASSIVE $(BUILD_DIR)/bin/qvec-bench quick
	@mkdir -p bench/results
	@$(BUILD_DIR)/bin/qvec-bench latency | tee bench/results/latency.md

bench-full: export QVEC_SETUP_BENCH=1
bench-full: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS) --target qvec-bench
	@OMP_WAIT_POLICY=PASSIVE $(BUILD_DIR)/bin/qvec-bench full

# Clang's -Wthread-safety over the sources (also a test in `make test`).
thread-safety: configure
	@python3 scripts/thread_safety.py $(BUILD_DIR)

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

tidy: build
	@git ls-files 'engine/*.cc' 'index/*.cc' 'storage/*.cc' 'server/*.cc' | \
	  xargs clang-tidy -p $(BUILD_DIR) --quiet

# Sanitizer builds of the unit and integration suites. UBSan stops at the
# first report; TSan uses tests/tsan.supp (third-party false positives only,
# each documented there).
SAN_JOBS ?= 2
# Engine tests that fork() the multi-threaded test process and keep running
# threads in the child: TSan does not support that (the child dies). The
# server-level crash tests (tests/integration/crash_test.cc exec the real
# binary) cover crash recovery under TSan.
TSAN_EXCLUDE = ^CrashTest.NoAcknowledgedWriteIsLost$$|^IvfLifecycle.CrashDuringBuildRecovers$$
test-asan:
	@scripts/setup.sh
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQVEC_SANITIZE=address -DQVEC_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(SAN_JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  ctest --output-on-failure -j2 --timeout 1800

test-tsan:
	@scripts/setup.sh
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQVEC_SANITIZE=thread -DQVEC_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j$(SAN_JOBS)
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j2 --timeout 1800 -E '$(TSAN_EXCLUDE)'

# Crash recovery: 100 kill -9 / restart trials (10 run in `make test`).
CRASH_TRIALS ?= 100
crash-test: build
	@QVEC_CRASH_TRIALS=$(CRASH_TRIALS) $(BUILD_DIR)/bin/qvec_integration_test --gtest_filter='CrashTest.*'

# Mixed load for SOAK_SECONDS (a 20 s version runs in `make test`).
SOAK_SECONDS ?= 600
soak: build
	@QVEC_SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD_DIR)/bin/qvec_integration_test --gtest_filter='SoakTest.*'

# libFuzzer harnesses (clang 14, ASan + UBSan) in build-fuzz/, each run for
# FUZZ_SECONDS on a copy of the seed corpus (tests/fuzz/corpus/<harness>);
# crash inputs land in build-fuzz/findings/.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES = router json_request
fuzz: export QVEC_SETUP_FUZZ=1
fuzz:
	@scripts/setup.sh
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DQVEC_BUILD_FUZZ=ON -DQVEC_SANITIZE=address \
	  -DQVEC_BUILD_TESTS=OFF -DQVEC_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j$(SAN_JOBS) --target $(addprefix qvec_,$(addsuffix _fuzzer,$(FUZZ_HARNESSES)))
	@mkdir -p build-fuzz/findings
	@set -e; for h in $(FUZZ_HARNESSES); do \
	  mkdir -p build-fuzz/corpus/$$h; cp -n tests/fuzz/corpus/$$h/* build-fuzz/corpus/$$h/; \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  build-fuzz/bin/qvec_$${h}_fuzzer build-fuzz/corpus/$$h -dict=tests/fuzz/json.dict \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/findings/$$h- 2>&1 | tail -n 25; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

# The API reference of the public headers (include/qvec/) with Doxygen,
# into $(BUILD_DIR)/docs/html; any Doxygen warning fails it.
docs: export QVEC_SETUP_DOCS=1
docs: configure
	@mkdir -p $(BUILD_DIR)/docs
	@( cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD_DIR)/docs"; \
	   echo "INPUT = include/qvec $(BUILD_DIR)/include/qvec/version.h" ) | doxygen -
	@echo "docs: $(BUILD_DIR)/docs/html/index.html"

# docs/dashboard/*.png, the README's pictures: the dashboard on 10000
# Fashion-MNIST images (Debian's dataset-fashion-mnist) in headless chromium.
dashboard-screenshots: export QVEC_SETUP_BENCH=1
dashboard-screenshots: export QVEC_SETUP_TEST=1
dashboard-screenshots: build
	@mkdir -p $(BUILD_DIR)/node
	@cp tests/integration/package.json tests/integration/dashboard_screenshots.mjs $(BUILD_DIR)/node/
	@test -f $(BUILD_DIR)/node/node_modules/puppeteer-core/package.json || \
	  (cd $(BUILD_DIR)/node && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
	@cd $(BUILD_DIR)/node && node dashboard_screenshots.mjs $(abspath $(BUILD_DIR))/bin/qvec $(CURDIR)/docs/dashboard

# Installs the library, headers, CMake package, pkg-config file and the
# server under PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD_DIR) --prefix $(PREFIX)

clean:
	@rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
