#!/usr/bin/env bash
# Runs a firmware image on QEMU's mps2-an386 (Cortex-M4) and decodes its
# defmt log. The image ends the run itself through semihosting; the exit
# status is the firmware's verdict (0 pass, 1 fail), or 124 on timeout.
#
# usage: qemu-run.sh <elf> [words for the firmware's command line]
#   (`inject-fault` makes one node miss a delivery: the verdict must fail)
#
# -icount shift=5,sleep=off: virtual time is counted in instructions (32 ns
# each, close to the board's 25 MHz) and idle time (WFI) is skipped. A run
# is deterministic — the same log every time, whatever the host load (no
# false failure suspicions on a busy CI machine) — and takes well under a
# second for 4.5 simulated seconds.
set -euo pipefail
elf="$1"
timeout "${QEMU_TIMEOUT:-120}" qemu-system-arm \
  -machine mps2-an386 -cpu cortex-m4 \
  -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native \
  -icount shift=5,sleep=off \
  -kernel "$elf" -append "${2:-}" \
  | defmt-print -e "$elf"
