# The README's two commands: `make run` and `make test`. Each installs what is missing (Debian
# packages via apt-get), configures, builds and runs. BUILD_DIR, JOBS and CONFIG can be overridden.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CONFIG    ?= configs/vit_fmnist_moe.toml
CMAKE_ARGS ?=

DEB_PACKAGES := build-essential cmake ninja-build pkg-config libopenblas-openmp-dev libtomlplusplus-dev \
  libsentencepiece-dev libopencv-dev nlohmann-json3-dev libcli11-dev libopenmpi-dev openmpi-bin \
  libgtest-dev zlib1g-dev dataset-fashion-mnist \
  fortunes fortunes-de fortunes-es fortunes-it fortunes-ru fortunes-pl fortunes-cs python3 wordnet-base dict-gcide

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps configure build test run bench clean

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
	rm -rf $(BUILD_DIR)
