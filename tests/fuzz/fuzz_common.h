/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_common.h - what the libFuzzer targets in tests/fuzz/ share: a
 * deterministic platform table, the engine's storage in memory, a scratch
 * certificate store on tmpfs, and the invariant check that stops a run.
 *
 * Every target is built by `scons fuzz` (docs/testing.md, "Fuzzing") with
 * clang -fsanitize=fuzzer,address,undefined.  A broken invariant is a
 * crash like any sanitizer report: FUZZ_CHECK prints what was expected and
 * aborts, so libFuzzer keeps the input.
 *
 * No allocation fails in these runs (AddressSanitizer aborts instead of
 * returning NULL), so OMADM_E_NOMEM (or SCEP_E_NOMEM, "out of memory")
 * from the library is always a wrong cause and breaks an invariant.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

/* Stop the run when an invariant does not hold. */
#define FUZZ_CHECK(cond, ...)                                  \
    do {                                                       \
        if (!(cond))                                           \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)

__attribute__((noreturn, format(printf, 4, 5))) void fuzz_fail(const char *file, int line,
                                                                const char *cond,
                                                                const char *fmt, ...);

/* The clock every target runs at (2027-01-01T00:00:00Z): inside the
 * validity of tests/data/pki and of the certificates the harnesses make. */
#define FUZZ_NOW ((int64_t)1798761600)

/* A platform table with a clock at FUZZ_NOW (until a harness moves it) and
 * a pseudo-random generator that fuzz_platform_reset() restarts, so that
 * one input always runs the same way; malloc/realloc/free, no logging.  Every hook is set,
 * so it also serves the internal layers that take a filled-in table. */
const omadm_platform_t *fuzz_platform(void);
/* Restart the generator and set the clock back to FUZZ_NOW. */
void fuzz_platform_reset(void);
/* Move fuzz_platform()'s clock (until the next fuzz_platform_reset): a
 * harness that steps background work makes its retries fall due. */
void fuzz_clock_set(int64_t now);

#define FUZZ_RANDOM_PINS 2
/* From now on, fuzz_platform()'s random hook gives these len bytes (copied)
 * for every request of exactly len bytes, whatever the generator's state
 * (at most FUZZ_RANDOM_PINS lengths; fuzz_platform_reset keeps them).  A
 * recorded exchange replays this way: what the device drew then (a
 * request signer's serial number, a nonce) it draws again. */
void fuzz_random_pin(const uint8_t *bytes, size_t len);

/* ---- the engine's storage, in memory ---- */

/* "session", "auth", the tree's manifest "tree" and its buckets
 * "tree.<i>.a" / "tree.<i>.b" (omadm/dmtree.h: DMTREE_BUCKETS of them) */
#define FUZZ_MEM_KEYS 1040

typedef struct fuzz_mem {
    struct {
        char key[16];
        uint8_t *data;       /* NULL: absent */
        size_t len;
    } slot[FUZZ_MEM_KEYS];
} fuzz_mem_t;

/* A table on m (zeroed by the caller); keys beyond FUZZ_MEM_KEYS fail to
 * save. */
omadm_storage_t fuzz_mem_storage(fuzz_mem_t *m);
/* Put a value directly (a persisted record the engine did not write). */
void fuzz_mem_put(fuzz_mem_t *m, const char *key, const uint8_t *data, size_t len);
/* Forget every value (m stays usable, zeroed). */
void fuzz_mem_clear(fuzz_mem_t *m);

/* An engine (dev_id "omadm-device", the default limits) on the storage m,
 * with fuzz_platform().  It must be created: what a run saved must load
 * again. */
omadm_t *fuzz_engine(fuzz_mem_t *m);

/* The engines' max_msg_size (the default). */
#define FUZZ_MAX_MSG_SIZE ((size_t)4 << 20)

/* ---- the certificate store ---- */

/* The process's store directory: "store" in a private directory made on
 * first use in $FUZZ_TMPDIR, else /dev/shm, else /tmp (omadm-fuzz.<pid>,
 * removed at exit). */
const char *fuzz_store_dir(void);
/* Make the store directory hold an empty store (the layout an open
 * creates), so that every input starts from the same store.  Only a store
 * that changed since is emptied and made again: every batch the store
 * makes durable goes through its journal in the store directory
 * (store.h), and inotify on that directory sees it. */
void fuzz_store_fresh(void);

struct omadm_certstore;
/* The store, open, with its CSPs registered on dm (both must work).  It
 * stays open from run to run while no run changes it (opening it again
 * would find the same); a run that changed it is followed by a new open.
 * Free dm, then hand the store back with fuzz_store_done. */
struct omadm_certstore *fuzz_store_open(omadm_t *dm);
/* After a run (its engine freed): if the store changed since it was last
 * checked (or made fresh), omadm_certstore_check must find nothing (the
 * problems are printed and the run stops otherwise), and the store is
 * closed, to be opened again by the next run.  what: when in the input's
 * run (for the report). */
void fuzz_store_done(struct omadm_certstore *cs, const char *what);

/* ---- messages ---- */

/* A message the engine wrote must be in the encoding that was due (wbxml:
 * WBXML, else XML) and decode with the engine's own codecs, unless it is
 * above FUZZ_MAX_MSG_SIZE. */
void fuzz_reply_decodes(omadm_t *dm, const uint8_t *reply, size_t len, bool wbxml);

#endif
