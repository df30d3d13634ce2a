# The README's two commands: `make run` and `make test`. Each installs what is missing (Debian
# packages via apt-get), configures, builds and runs. BUILD_DIR, JOBS and CONFIG can be overridden.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CONFIG    ?= configs/vit_fmnist_moe.toml
CMAKE_ARGS ?=

DEB_PACKAGES := build-essential cmake ninja-build pkg-config libopenblas-openmp-dev libtomlplusplus-dev \
  libsentencepiece-dev libopencv-dev nlohmann-json3-dev libcli11-dev libopenmpi-dev openmpi-bin \
  libgtest-dev zlib1g-dev dataset-fashion-mnist \
  fortunes fortunes-de fortunes-es fortunes-it fortunes-ru fortunes-pl fortunes-cs python3 wordnet-base dict-gcide \
  xz-utils zstd p7zip-full

SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps configure build test run bench clean fuzz test-sanitize gpu-check

# Install only what is missing; apt-get runs only when a package is absent.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "moelab: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && OMP_NUM_THREADS=$(JOBS) ctest --output-on-failure -j $(JOBS) --timeout 900

run: build
	./$(BUILD_DIR)/moelab run $(CONFIG)

bench: build
	./$(BUILD_DIR)/moelab bench ops

clean:
	rm -rf $(BUILD_DIR) build-fuzz build-sanitize build-gpu

# ---- hardening (docs/hardening.md) ----

# libFuzzer targets of tests/fuzz, built with clang in build-fuzz/, each run FUZZ_SECONDS on its seed
# corpus (new inputs go to build-fuzz/corpus/<target>/, crashes to build-fuzz/crashes/).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_safetensors fuzz_idx fuzz_config fuzz_tfevents fuzz_trace_actions fuzz_sentencepiece
fuzz: DEB_PACKAGES += clang libclang-rt-14-dev
fuzz: deps
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOELAB_FUZZ=ON -DMOELAB_CUDA=OFF -DMOELAB_MPI=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CMAKE_ARGS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	@mkdir -p build-fuzz/crashes
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ./build-fuzz/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crashes/$$t- build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E "^(stat::|==|SUMMARY|artifact_prefix|Done|INFO: -max_total_time)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz: $$t found a crash (see build-fuzz/crashes/)"; exit 1; }; \
	done

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off) in build-sanitize/.
# MOELAB_SANITIZED=1 lets long tests shorten themselves; none is skipped.
SANITIZE_JOBS ?= $(JOBS)
test-sanitize: deps
	@cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOELAB_CUDA=OFF \
	  -DMOELAB_SANITIZE=address,undefined $(CMAKE_ARGS) >/dev/null
	@cmake --build build-sanitize -j $(SANITIZE_JOBS)
	cd build-sanitize && MOELAB_SANITIZED=1 OMP_NUM_THREADS=$(JOBS) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 1800 $(CTEST_ARGS)

# Everything that needs a GPU, in one command: the CUDA build, the CUDA tests, the MoE bench on the
# device and a short vision run there; one summary at the end. Run it whenever a GPU is at hand.
gpu-check: deps
	@./.ci/gpu_check.sh
