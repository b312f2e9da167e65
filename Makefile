# qvec: the two commands are `make run` and `make test`; see README.md.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 6333
CMAKE_FLAGS ?=

.PHONY: all setup configure build run test bench bench-full format tidy clean \
        test-asan test-tsan fuzz crash-test soak

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

configure: setup $(BUILD_DIR)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	@mkdir -p $(DATA_DIR)
	$(BUILD_DIR)/bin/qvec serve --data $(DATA_DIR) --host $(HOST) --port $(PORT)

test: export QVEC_SETUP_TEST=1
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 900

bench: export QVEC_SETUP_BENCH=1
bench: build
	@OMP_WAIT_POLICY=PASSIVE $(BUILD_DIR)/bin/qvec-bench quick

bench-full: export QVEC_SETUP_BENCH=1
bench-full: build
	@OMP_WAIT_POLICY=PASSIVE $(BUILD_DIR)/bin/qvec-bench full

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

tidy: build
	@git ls-files 'engine/*.cc' 'index/*.cc' 'storage/*.cc' 'server/*.cc' | \
	  xargs clang-tidy -p $(BUILD_DIR) --quiet

test-asan:
	@scripts/setup.sh
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQVEC_SANITIZE=address -DQVEC_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ctest --output-on-failure -j2

test-tsan:
	@scripts/setup.sh
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQVEC_SANITIZE=thread -DQVEC_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	@cd build-tsan && ctest --output-on-failure -j2

clean:
	@rm -rf $(BUILD_DIR) build-asan build-tsan
