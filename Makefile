# The two commands: `make demo` and `make test`. Everything else is a helper.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build demo test test-unit test-integration bench bench-quick format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/crmsync demo

test: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure --timeout 600

test-unit: build
	cd $(BUILD) && ctest -j$(JOBS) -L unit --output-on-failure

test-integration: build
	cd $(BUILD) && ctest -L integration --output-on-failure

# Full scenarios (about ten minutes on two cores); bench-quick runs a tenth.
bench: build
	./$(BUILD)/crmsync-bench --out $(BUILD)/bench/results.json

bench-quick: build
	./$(BUILD)/crmsync-bench --quick --out $(BUILD)/bench/results.json

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD)
