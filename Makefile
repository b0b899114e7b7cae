# The two commands of the README's Quickstart, and a few conveniences around CMake.
#   make demo   install what is missing, build, classify the sample images
#   make test   install what is missing (PyTorch too), build, run every test
# CI (.ci/run) also runs `make sanitize`.
BUILD     ?= build/release
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_DEPS = libeigen3-dev libstb-dev nlohmann-json3-dev catch2 libjpeg62-turbo-dev libpng-dev zlib1g-dev
TEST_DEPS  = python3-torch python3-numpy python3-pil python3-onnx libonnx-testdata python3-opencv libopenblas0-pthread \
             python3-h5py python3-torchvision python3-skimage python3-dask python3-distributed dataset-fashion-mnist

FUZZ_DEPS  = clang libclang-rt-14-dev
FORMAT_DEPS = clang-format black python3-flake8
FUZZ_SECONDS ?= 60

.PHONY: demo test build format portable sanitize tsan fuzz clean

demo:
	tools/install_deps.sh $(BUILD_DEPS)
	$(MAKE) --no-print-directory build
	tools/demo.sh $(BUILD)/gapnet

test:
	tools/install_deps.sh $(BUILD_DEPS) $(TEST_DEPS)
	$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DGAPNET_WERROR=ON
	cmake --build $(BUILD) -j $(JOBS)

# Every tracked C++ file as .clang-format lays it out (Debian 12's clang-format 14), every Python file as black
# lays it out and flake8 passes it (pyproject.toml, .flake8);
# `tools/check_format.sh --fix` rewrites the files that differ.
format:
	tools/install_deps.sh $(FORMAT_DEPS)
	tools/check_format.sh

# A build for any x86-64 (no -march=native: GCC's generic vector code instead of AVX-512), and its
# C++ suite.
portable:
	tools/install_deps.sh $(BUILD_DEPS)
	cmake -S . -B build/portable -DCMAKE_BUILD_TYPE=Release -DGAPNET_NATIVE=OFF -DGAPNET_WERROR=ON
	cmake --build build/portable -j $(JOBS)
	build/portable/tests/gapnet_tests

# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize:
	tools/install_deps.sh $(BUILD_DEPS) $(TEST_DEPS)
	cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGAPNET_SANITIZE=ON -DGAPNET_WERROR=ON
	cmake --build build/sanitize -j $(JOBS)
	cd build/sanitize && ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E 'image_bounds|endless_sources|endless_model|classify_files_from'

# The C++ suite and the command-line tests under ThreadSanitizer (inference runs on a thread pool).
tsan:
	tools/install_deps.sh $(BUILD_DEPS)
	cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGAPNET_TSAN=ON -DGAPNET_WERROR=ON
	cmake --build build/tsan -j $(JOBS)
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(JOBS) -E 'export_pytorch|onnx|parity_generator|bench_peers|keras_import|torchvision|image_bounds|endless_sources|endless_model|importer_confinement|classify_files_from|classify_dask|readme_examples'

# The libFuzzer harnesses (clang, ASan + UBSan), each run for FUZZ_SECONDS on its committed corpus.
fuzz:
	tools/install_deps.sh $(BUILD_DEPS) $(FUZZ_DEPS)
	CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Release -DGAPNET_FUZZ=ON -DGAPNET_BUILD_TESTS=OFF
	cmake --build build/fuzz -j $(JOBS) --target fuzz_model fuzz_image fuzz_classify
	tests/fuzz/run_fuzzers.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
