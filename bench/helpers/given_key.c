/* SPDX-License-Identifier: Apache-2.0 */
/*
 * given_key.c - a ready key for the enrollment of bench/dmclient-given-key,
 * so that bench/scep-enroll.sh can time our SCEP exchange without the key
 * generation, as it times scepclient with a ready key.pem (row A').
 *
 * bench/dmclient-given-key is dmclient's sources and the library's objects linked
 * with -Wl,--wrap=rsa_keygen and this file (SConscript): the one call that
 * makes an enrollment's key (csp/scep_msg.c -> csp/rsa_keygen.c) comes
 * here.  With OMADM_BENCH_KEY naming a PEM private key (PKCS#1 or PKCS#8,
 * RSA, of the bits asked for), that key is read and handed over instead of
 * a new one; without it the real generator runs.  Everything else (start-up,
 * store, GetCACert, GetCACaps, PKCSReq, CertRep, install) is the code of
 * dmclient.  Neither dmclient nor libomadm contains this file: no server
 * can make them use a ready key.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

EVP_PKEY *__real_rsa_keygen(unsigned bits);
EVP_PKEY *__wrap_rsa_keygen(unsigned bits);

EVP_PKEY *__wrap_rsa_keygen(unsigned bits)
{
    const char *path = getenv("OMADM_BENCH_KEY");
    if (!path || !*path)
        return __real_rsa_keygen(bits);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "dmclient-given-key: cannot open %s\n", path);
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) != (int)bits) {
        fprintf(stderr, "dmclient-given-key: %s is not an RSA-%u private key\n", path, bits);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}
