/*
 * Signatures in assembly: sign a published index (cosign's layout, see
 * registry/sign/sign.h), and check that a child carries a valid signature
 * by one of the rule's trusted keys before it goes into an index.
 */
#ifndef AM_ASM_SIGNING_H
#define AM_ASM_SIGNING_H

#include "registry/assemble/api.h"

/*
 * Make sure repo's index digest carries a signature by the rule's key
 * (sign.key_file: key_file), appending to the signatures already there. *made = 1
 * when a signature was written, 0 when one by this key was there already.
 * key_file "": AM_OK, nothing done.
 */
enum am_err asm_sign_index(const struct reg_api *api, const char *key_file, const char *repo,
    const char *digest, int *made, char *err, size_t errlen);

/*
 * Does image digest of repo carry a valid signature by one of the n public
 * key files keys (require_signed_children), naming this digest and this repository?
 * AM_OK: yes. AM_EMISMATCH: no (err says why). Other codes: registry faults.
 */
enum am_err asm_child_signed(const struct reg_api *api, const char (*keys)[512], size_t n,
    const char *repo,
    const char *digest, char *err, size_t errlen);

#endif
