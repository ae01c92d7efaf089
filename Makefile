# phasecast — build, test and demo entry points.
#   make test   everything CI checks (fmt, clippy, tests, no_std thumbv7em build, fuzz build)
#   make demo   3 replicas of the C key-value daemon on loopback (see mk/ffi.mk)
SHELL := /bin/bash
CARGO ?= cargo
THUMB := thumbv7em-none-eabihf

.PHONY: test fmt clippy unit thumb fuzz-check demo-rust bench callgrind fuzz

test: fmt clippy unit thumb fuzz-check
test: firmware-test
test: ffi-test
test: py-test
	@echo "make test: all checks passed"

fmt:
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# The core must build for a Cortex-M4F with no std and no alloc, with and
# without defmt logging.
thumb:
	@rustup target list --installed | grep -qx $(THUMB) || rustup target add $(THUMB)
	$(CARGO) build -p phasecast-core --release --target $(THUMB) --no-default-features
	$(CARGO) build -p phasecast-core --release --target $(THUMB) --no-default-features --features defmt

# The fuzz crate lives outside the workspace (cargo-fuzz layout); make sure it
# keeps compiling. Running it needs nightly and cargo-fuzz: see `make fuzz`.
fuzz-check:
	CARGO_TARGET_DIR=target/fuzz-check $(CARGO) check --manifest-path fuzz/Cargo.toml --bins

fuzz:
	cd fuzz && $(CARGO) +nightly fuzz run decode_frame -- -max_total_time=60
	cd fuzz && $(CARGO) +nightly fuzz run handle_datagram -- -max_total_time=60

# The Rust host loop of the core (three threads, one process).
demo-rust:
	$(CARGO) run --release -q -p phasecast-core --example loopback_cluster

bench:
	$(CARGO) bench -p phasecast-core

callgrind:
	$(CARGO) build --release -p phasecast-core --example wire_callgrind
	valgrind --tool=callgrind --callgrind-out-file=/tmp/phasecast.callgrind target/release/examples/wire_callgrind

include mk/firmware.mk
include mk/ffi.mk
include mk/py.mk
