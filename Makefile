# A thin driver over CMake. The two commands a new user needs:
#   make demo   builds mayfly and runs the example program (database in ./demo-db)
#   make test   builds release, ASan+UBSan and TSan trees and runs every test in each
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-asan build-tsan demo test test-release test-asan test-tsan bench docs clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAYFLY_SANITIZE=ON \
	  -DMAYFLY_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAYFLY_SANITIZE_THREAD=ON \
	  -DMAYFLY_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)

demo: build
	bash scripts/demo.sh --build=build

test-release: build
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  MAYFLY_MODEL_OPS=$${MAYFLY_MODEL_OPS_ASAN:-30000} ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer: every test, for races between background jobs and callers.
test-tsan: build-tsan
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  MAYFLY_MODEL_OPS=$${MAYFLY_MODEL_OPS_TSAN:-30000} ctest --output-on-failure -j $(JOBS)

test: test-release test-asan test-tsan

bench: build
	./build/bench/mayfly_bench --engine=all

docs: build
	./build/gen_options_doc > docs/options.md

clean:
	rm -rf build build-asan
