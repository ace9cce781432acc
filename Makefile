# Entry points for newcomers and CI. Every target installs the Debian
# packages it needs first (scripts/install-deps.sh is idempotent).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: deps build test demo clean

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1500

demo: build
	$(BUILD_DIR)/bin/shrink demo

clean:
	rm -rf $(BUILD_DIR)
