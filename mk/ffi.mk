# ffi-c/: the C ABI (libphasecast.a/.so, phasecast.h), its C tests, the
# example daemons and `make demo`. Included from the top Makefile.
#
#   make demo             3 kvnode replicas + kvbench; kills a member, then the sequencer
#   make ffi-test         header checks, C tests (plain and ASan/UBSan), install, short demo cluster
#   make ffi-header       regenerate ffi-c/include/phasecast.h (commit it)
#   make ffi-examples     build kvnode, kvbench, tobbench (release library)
#   make ffi-bench        the tobbench and kvbench cases of docs/BENCHMARKS.md
#   make install PREFIX=/usr/local [DESTDIR=…]   library, header, pkg-config file

FFI_DIR     := ffi-c
FFI_TARGET  := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
FFI_OUT     := $(FFI_TARGET)/ffi-c
FFI_INC     := $(FFI_DIR)/include
FFI_HDR     := $(FFI_INC)/phasecast.h
FFI_LIB_DBG := $(FFI_TARGET)/debug/libphasecast.a
FFI_LIB_REL := $(FFI_TARGET)/release/libphasecast.a
FFI_SO_DBG  := $(FFI_TARGET)/debug/libphasecast.so
# What a static libphasecast needs from the system (rustc --print native-static-libs).
FFI_SYSLIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
CC  ?= cc
CXX ?= c++
FFI_WARN    := -Wall -Wextra -Werror -pedantic
FFI_CFLAGS  := -std=c99 $(FFI_WARN) -I$(FFI_INC) -g
FFI_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FFI_EXAMPLES := kvnode kvbench tobbench
FFI_EX_SRC  := $(wildcard $(FFI_DIR)/examples/*.c $(FFI_DIR)/examples/*.h) $(FFI_HDR)
FFI_TESTS   := api_misuse cluster_mem latency_mem
FFI_TEST_SRC := $(FFI_DIR)/tests/c/harness.h $(FFI_HDR)
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include

.PHONY: demo ffi-install-check ffi-test ffi-header ffi-header-check ffi-header-compile ffi-ctest \
        ffi-demo-check ffi-examples ffi-lib ffi-lib-debug ffi-bench install uninstall

# --- libraries -------------------------------------------------------------

ffi-lib:
	$(CARGO) build --release -p phasecast-ffi

ffi-lib-debug:
	$(CARGO) build -p phasecast-ffi

$(FFI_LIB_REL): ffi-lib ; @:
$(FFI_LIB_DBG) $(FFI_SO_DBG): ffi-lib-debug ; @:

# --- header ----------------------------------------------------------------

ffi-header:
	PHASECAST_BLESS=1 $(CARGO) test -q -p phasecast-ffi --test header

# Fails when the committed header differs from what the source generates.
ffi-header-check:
	$(CARGO) test -q -p phasecast-ffi --test header

# The header compiles cleanly as C99, C11, C++11 and C++17 with every warning
# an error, and a typical use of it links and runs from C and from C++.
FFI_HDR_USE := $(FFI_DIR)/tests/c/header_use.c
ffi-header-compile: $(FFI_LIB_DBG) | $(FFI_OUT)
	$(CC) -std=c99 $(FFI_WARN) -Wundef -Wstrict-prototypes -I$(FFI_INC) -fsyntax-only -include phasecast.h -x c /dev/null
	$(CC) -std=c11 $(FFI_WARN) -Wundef -I$(FFI_INC) -fsyntax-only -include phasecast.h -x c /dev/null
	$(CXX) -std=c++11 $(FFI_WARN) -Wundef -I$(FFI_INC) -fsyntax-only -include phasecast.h -x c++ /dev/null
	$(CXX) -std=c++17 $(FFI_WARN) -Wundef -I$(FFI_INC) -fsyntax-only -include phasecast.h -x c++ /dev/null
	$(CC) -std=c99 $(FFI_WARN) -Wundef -I$(FFI_INC) $(FFI_HDR_USE) $(FFI_LIB_DBG) $(FFI_SYSLIBS) -o $(FFI_OUT)/header_use_c
	$(CXX) -std=c++11 $(FFI_WARN) -Wundef -I$(FFI_INC) -x c++ $(FFI_HDR_USE) -x none $(FFI_LIB_DBG) $(FFI_SYSLIBS) -o $(FFI_OUT)/header_use_cxx
	$(FFI_OUT)/header_use_c
	$(FFI_OUT)/header_use_cxx

$(FFI_OUT):
	mkdir -p $@

# --- C tests (plain and sanitised), against the debug library ------------

$(FFI_OUT)/%.plain: $(FFI_DIR)/tests/c/%.c $(FFI_TEST_SRC) $(FFI_LIB_DBG) | $(FFI_OUT)
	$(CC) $(FFI_CFLAGS) -O1 $< $(FFI_LIB_DBG) $(FFI_SYSLIBS) -o $@

$(FFI_OUT)/%.asan: $(FFI_DIR)/tests/c/%.c $(FFI_TEST_SRC) $(FFI_LIB_DBG) | $(FFI_OUT)
	$(CC) $(FFI_CFLAGS) -O1 $(FFI_SAN) $< $(FFI_LIB_DBG) $(FFI_SYSLIBS) -o $@

# The shared library links and runs too (api_misuse against libphasecast.so,
# found through its soname libphasecast.so.0).
$(FFI_OUT)/api_misuse.shared: $(FFI_DIR)/tests/c/api_misuse.c $(FFI_TEST_SRC) $(FFI_SO_DBG) | $(FFI_OUT)
	mkdir -p $(FFI_OUT)/so && ln -sf $(FFI_SO_DBG) $(FFI_OUT)/so/libphasecast.so.0 && ln -sf $(FFI_SO_DBG) $(FFI_OUT)/so/libphasecast.so
	$(CC) $(FFI_CFLAGS) -O1 -pthread $< -L$(FFI_OUT)/so -Wl,-rpath,$(FFI_OUT)/so -lphasecast -o $@

ffi-ctest: $(foreach t,$(FFI_TESTS),$(FFI_OUT)/$(t).plain $(FFI_OUT)/$(t).asan) $(FFI_OUT)/api_misuse.shared
	@set -e; for t in $(FFI_TESTS); do \
	  echo "== $$t (plain)"; $(FFI_OUT)/$$t.plain; \
	  echo "== $$t (address,undefined)"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(FFI_OUT)/$$t.asan; \
	done; echo "== api_misuse (libphasecast.so)"; $(FFI_OUT)/api_misuse.shared

# --- examples (release library) -------------------------------------------

$(FFI_OUT)/%: $(FFI_DIR)/examples/%.c $(FFI_EX_SRC) $(FFI_LIB_REL) | $(FFI_OUT)
	$(CC) $(FFI_CFLAGS) -O2 $< $(FFI_LIB_REL) $(FFI_SYSLIBS) -o $@

ffi-examples: $(addprefix $(FFI_OUT)/,$(FFI_EXAMPLES))

# --- demo ------------------------------------------------------------------

demo: ffi-examples
	$(FFI_DIR)/scripts/demo.sh $(FFI_OUT)

# A short run of the demo cluster (no crash) in `make test`: identical stores.
ffi-demo-check: ffi-examples
	$(FFI_DIR)/scripts/demo.sh --quick $(FFI_OUT)

ffi-bench: ffi-examples
	$(FFI_DIR)/scripts/bench.sh $(FFI_OUT)

# `make install` into a scratch prefix; a program builds from pkg-config alone.
ffi-install-check: | $(FFI_OUT)
	rm -rf $(FFI_OUT)/inst
	$(MAKE) --no-print-directory install PREFIX=$(FFI_OUT)/inst
	PKG_CONFIG_PATH=$(FFI_OUT)/inst/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  $(CC) -std=c99 $(FFI_WARN) $(FFI_HDR_USE) $$(pkg-config --cflags --libs phasecast) \
	    -Wl,-rpath,$(FFI_OUT)/inst/lib -o $(FFI_OUT)/inst/header_use
	$(FFI_OUT)/inst/header_use

ffi-test: ffi-header-check ffi-header-compile ffi-ctest ffi-install-check ffi-demo-check
	@echo "ffi: all checks passed"

# --- install ---------------------------------------------------------------

install: ffi-lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 644 $(FFI_LIB_REL) $(DESTDIR)$(LIBDIR)/libphasecast.a
	install -m 755 $(FFI_TARGET)/release/libphasecast.so $(DESTDIR)$(LIBDIR)/libphasecast.so.0
	ln -sf libphasecast.so.0 $(DESTDIR)$(LIBDIR)/libphasecast.so
	install -m 644 $(FFI_HDR) $(DESTDIR)$(INCDIR)/phasecast.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)|' \
	    -e 's|@SYSLIBS@|$(FFI_SYSLIBS)|' \
	    $(FFI_DIR)/phasecast.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/phasecast.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libphasecast.a $(DESTDIR)$(LIBDIR)/libphasecast.so \
	      $(DESTDIR)$(LIBDIR)/libphasecast.so.0 $(DESTDIR)$(INCDIR)/phasecast.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/phasecast.pc
