/*
 * omadm_certstore.h - the certificate CSPs on the crash-safe store.
 *
 * One store serves ./Vendor/MSFT/CertificateStore and
 * ./Device/Vendor/MSFT/CertificateStore (the same tree), and
 * ./Device/Vendor/MSFT/RootCATrustedCertificates (also unprefixed
 * ./Vendor/MSFT/...) and ./User/Vendor/MSFT/RootCATrustedCertificates.
 * RootCATrustedCertificates Root and CA are the same stores as
 * CertificateStore Root/System and CA/System.
 *
 * The store does file I/O in the directory it is given (see store/store.h
 * for the layout); changes of one server message become durable together
 * at the end of the message.
 */
#ifndef OMADM_CERTSTORE_H
#define OMADM_CERTSTORE_H

#include "omadm.h"

typedef struct omadm_certstore omadm_certstore_t;

/* Open the store in dir (created if missing; a journal left by a crash is
 * replayed).  On failure *why (may be NULL) gets a short static reason. */
omadm_error_t omadm_certstore_open(const char *dir, omadm_certstore_t **out, const char **why);
void omadm_certstore_close(omadm_certstore_t *cs);  /* NULL-safe; after omadm_free */

/* Register the CSPs on an engine.  cs must outlive the engine. */
omadm_error_t omadm_certstore_register(omadm_t *dm, omadm_certstore_t *cs);

/* The underlying store, for hosts that list, export or check it. */
struct store;
struct store *omadm_certstore_store(omadm_certstore_t *cs);

#endif
