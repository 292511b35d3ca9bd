# The two commands: `make demo` and `make test`. Everything else is a helper.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build check format-check dup-check demo demo-kafka test test-kafka test-unit test-integration bench bench-quick bench-kafka callgrind format clean

all: build

deps:
	@bash scripts/install-deps.sh

# Warnings are errors (CRMSYNC_WERROR, ON unless a build says otherwise).
$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCRMSYNC_WERROR=ON

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/crmsync-demo

# The same demo against a real Apache Kafka broker (KRaft, one node) that
# scripts/kafka-broker.sh starts for it and stops afterwards.
KAFKA_DEMO_DIR ?= $(BUILD)/kafka-demo
demo-kafka: build
	@rm -rf $(KAFKA_DEMO_DIR); bash scripts/kafka-broker.sh start $(KAFKA_DEMO_DIR) >/dev/null
	@./$(BUILD)/crmsync-demo --bootstrap "$$(cat $(KAFKA_DEMO_DIR)/bootstrap)"; \
	  status=$$?; bash scripts/kafka-broker.sh stop $(KAFKA_DEMO_DIR); exit $$status

test-kafka: build
	cd $(BUILD) && ctest -L kafka --output-on-failure

# What CI keeps so: formatted code, no new duplicate block (jscpd, allow-list
# in .jscpd-baseline.json), a build without a single warning, and a worker
# binary without the simulator or the mock cluster (scripts/layer-check.sh).
format-check: deps
	bash scripts/format-check.sh

dup-check: deps
	bash scripts/dup-check.sh

check: format-check dup-check configure
	cmake -S . -B $(BUILD) -DCRMSYNC_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)
	bash scripts/layer-check.sh $(BUILD)/crmsync

test: check
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

# The scenarios with a Python baseline, the backlog, the steady load and the
# crash, against a real Apache Kafka broker (KRaft, one node, fully JIT-compiled
# and with a larger heap than the tests' broker) and 16-partition topics.
KAFKA_BENCH_DIR ?= $(BUILD)/kafka-bench
KAFKA_BENCH_SCENARIOS ?= zero-latency latency-100ms backlog steady-100ms crash
bench-kafka: build
	@rm -rf $(KAFKA_BENCH_DIR); KAFKA_HEAP="-Xmx1g -Xms256m" KAFKA_JVM_FLAGS="-XX:+UseParallelGC" \
	  bash scripts/kafka-broker.sh start $(KAFKA_BENCH_DIR) >/dev/null
	@./$(BUILD)/crmsync-bench --bootstrap "$$(cat $(KAFKA_BENCH_DIR)/bootstrap)" --partitions 16 \
	  $(foreach s,$(KAFKA_BENCH_SCENARIOS),--scenario $(s)) --out $(BUILD)/bench/results-kafka.json; \
	  status=$$?; bash scripts/kafka-broker.sh stop $(KAFKA_BENCH_DIR); rm -rf $(KAFKA_BENCH_DIR); exit $$status

# Instructions per event for each pipeline stage (valgrind's callgrind).
callgrind: build
	bash scripts/callgrind-stages.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD)
