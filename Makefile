# A thin driver over CMake. The two commands a new user needs:
#   make demo   builds mayfly and runs the example program (database in ./demo-db)
#   make test   builds release and ASan+UBSan trees and runs every test in both
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-asan demo test test-release test-asan bench docs clean

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

demo: build
	bash scripts/demo.sh --build=build

test-release: build
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  MAYFLY_MODEL_OPS=$${MAYFLY_MODEL_OPS_ASAN:-30000} ctest --output-on-failure -j $(JOBS)

test: test-release test-asan

bench: build
	./build/bench/mayfly_bench --engine=all

docs: build
	./build/gen_options_doc > docs/options.md

clean:
	rm -rf build build-asan
