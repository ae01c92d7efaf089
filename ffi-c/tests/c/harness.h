/* Tiny assertion helpers of the C tests (no framework: a failed check
 * prints where and exits 1, so `make ffi-test` stops). */
#ifndef PC_TEST_HARNESS_H
#define PC_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "phasecast.h"

static int checks_passed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
            exit(1);                                                                     \
        }                                                                                \
        checks_passed++;                                                                 \
    } while (0)

/* The call must return `want`. */
#define EXPECT(expr, want)                                                               \
    do {                                                                                 \
        phasecast_status got_ = (expr);                                                  \
        if (got_ != (phasecast_status)(want)) {                                          \
            fprintf(stderr, "%s:%d: %s\n  returned %u (%s: %s), wanted %s\n", __FILE__, \
                    __LINE__, #expr, (unsigned)got_, phasecast_status_str(got_),          \
                    phasecast_last_error_detail(), #want);                               \
            exit(1);                                                                     \
        }                                                                                \
        checks_passed++;                                                                 \
    } while (0)

#endif
