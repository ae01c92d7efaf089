# Firmware for a Cortex-M4F (embedded-demo/, outside the workspace: its own
# .cargo/config.toml, Cargo.lock and target directory). `firmware-test`
# builds it in release mode, prints its size report (fails if the core
# takes more than 48 KiB of flash), runs it on QEMU's mps2-an386 board and
# takes the firmware's verdict from QEMU's exit status (0 only if the three
# nodes delivered the same sequence); a second run with a fault injected
# (one node misses a delivery) must fail, so the verdict itself is checked.
#   make firmware        build the image
#   make firmware-test   build, size report, run under QEMU
FIRMWARE_DIR := embedded-demo
# The firmware keeps its own target directory even when CARGO_TARGET_DIR is
# set for the workspace (a host target dir must not mix with thumb builds
# of other profiles, and the scripts below need the image's path).
FIRMWARE_TARGET := $(CURDIR)/$(FIRMWARE_DIR)/target
FIRMWARE_ELF := $(FIRMWARE_TARGET)/$(THUMB)/release/phasecast-embedded-demo
DEFMT_PRINT_VERSION := 1.2.0
CORE_FLASH_BUDGET := 49152

.PHONY: firmware firmware-test firmware-tools

# qemu-system-arm and Arm binutils from Debian (installed when missing and
# running as root, as in CI); defmt-print decodes the firmware's log.
firmware-tools:
	@rustup target list --installed | grep -qx $(THUMB) || rustup target add $(THUMB)
	@if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-size >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends qemu-system-arm binutils-arm-none-eabi >/dev/null; \
	  else \
	    echo "firmware-test needs qemu-system-arm and binutils-arm-none-eabi (apt-get install ...)"; exit 1; \
	  fi; \
	fi
	@command -v defmt-print >/dev/null || \
	  $(CARGO) install defmt-print --version $(DEFMT_PRINT_VERSION) --locked --debug --quiet

firmware: firmware-tools
	cd $(FIRMWARE_DIR) && CARGO_TARGET_DIR=$(FIRMWARE_TARGET) $(CARGO) build --release --locked

firmware-test: firmware
	cd $(FIRMWARE_DIR) && $(CARGO) fmt --check
	$(FIRMWARE_DIR)/size-report.sh $(FIRMWARE_ELF) $(CORE_FLASH_BUDGET)
	$(FIRMWARE_DIR)/qemu-run.sh $(FIRMWARE_ELF)
	@echo "== the verdict must catch a node that misses one delivery:"
	@$(FIRMWARE_DIR)/qemu-run.sh $(FIRMWARE_ELF) inject-fault 2>&1 | grep -E 'fault injected|VERDICT'; \
	  test "$${PIPESTATUS[0]}" = 1 || { echo "firmware-test: the injected fault was not caught"; exit 1; }
	@echo "firmware-test: passed"
