#!/usr/bin/env bash
# Size report of a firmware image: flash and RAM of the whole image, and the
# phasecast core's share of flash.
#
# The core's code is counted by source line, not by symbol name: with LTO
# most of the core is inlined into the adapter's functions, so symbols named
# `phasecast_core::...` hold only part of it. The DWARF line table maps
# every instruction to the source line it came from, inlined or not; the
# bytes whose line is in core/src/ are the core's. Its read-only data (CRC
# table, constants) is counted by symbol name.
#
# usage: size-report.sh <elf> [budget-bytes]   (fails if the core is over budget)
set -euo pipefail
elf="$1"
budget="${2:-49152}"
here="$(cd "$(dirname "$0")" && pwd)"
core_src="$(cd "$here/../core/src" && pwd)/"

# binutils for Arm if installed (Debian: binutils-arm-none-eabi), else the
# host's, which read a foreign ELF's symbols and DWARF just as well.
p=""
command -v arm-none-eabi-size >/dev/null 2>&1 && p="arm-none-eabi-"

read -r text data bss _ < <("${p}size" -B "$elf" | awk 'NR == 2')

# (address, length) of every line-table row, then the file of each address.
rows="$(mktemp)"
trap 'rm -f "$rows"' EXIT
# (mawk has no strtonum: hex() parses addresses and sizes.)
hex='function hex(s,   i, n, c) { n = 0; s = tolower(s); sub(/^0x/, "", s); for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; n = n * 16 + c } return n }'
"${p}objdump" --dwarf=decodedline "$elf" | awk "$hex"'
    $3 ~ /^0x[0-9a-f]+$/ {
        a = hex($3)
        if (have && a > prev) printf "0x%x %d\n", prev, a - prev
        if ($2 == "-") { have = 0 } else { have = 1; prev = a }
    }' >"$rows"
core_code="$(cut -d' ' -f1 "$rows" | "${p}addr2line" -e "$elf" | paste -d' ' - "$rows" |
    awk -v dir="$core_src" 'index($1, dir) == 1 { n += $3 } END { print n + 0 }')"
covered="$(awk '{ n += $2 } END { print n + 0 }' "$rows")"
core_rodata="$("${p}nm" -C -S --size-sort "$elf" |
    awk "$hex"'$3 ~ /^[rR]$/ && /phasecast_core/ { n += hex($2) } END { print n + 0 }')"
core=$((core_code + core_rodata))

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
echo "== firmware size report: $(basename "$elf")"
printf '%-34s %8d bytes (%s)\n' "flash: text (code + rodata)" "$text" "$(kib "$text")"
printf '%-34s %8d bytes\n' "flash+RAM: data" "$data"
printf '%-34s %8d bytes (%s)\n' "RAM: bss" "$bss" "$(kib "$bss")"
printf '%-34s %8d bytes (%s)\n' "RAM: statics (data + bss)" "$((data + bss))" "$(kib $((data + bss)))"
printf '%-34s %8d bytes (%s of %s of code with line info)\n' \
    "core code (by source line)" "$core_code" "$(kib "$core_code")" "$(kib "$covered")"
printf '%-34s %8d bytes\n' "core rodata (by symbol)" "$core_rodata"
printf '%-34s %8d bytes (%s; budget %s)\n' "core flash" "$core" "$(kib "$core")" "$(kib "$budget")"
echo "largest RAM symbols:"
"${p}nm" -C -S --size-sort "$elf" | awk '$3 ~ /^[bBdD]$/' | tail -n 6 |
    awk "$hex"'{ s = hex($2); $1 = $2 = $3 = ""; printf "  %8d  %s\n", s, substr($0, 4) }'
if [ "$core" -gt "$budget" ]; then
    echo "FAIL: the core takes $core bytes of flash, over the budget of $budget" >&2
    exit 1
fi
