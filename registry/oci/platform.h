/*
 * Platforms (os/architecture/variant) of images, normalised the way
 * containerd does so that "aarch64" in an image config and "arm64" in a rule
 * compare equal.
 */
#ifndef AM_PLATFORM_H
#define AM_PLATFORM_H

#include <stddef.h>
#include "server/base/common.h"

struct platform {
	char os[32];
	char arch[32];
	char variant[16];
	char os_version[64];     /* Windows images; "" when absent */
	char os_features[128];   /* comma separated; "" when absent */
};

/* Normalise arch/variant in place (x86_64 -> amd64, aarch64 -> arm64, arm -> arm/v7 ...). */
void platform_normalize(struct platform *p);

/*
 * Parse "os[(os.version)]/arch[/variant]" (containerd's syntax for an
 * os.version, e.g. "windows(10.0.17763)/amd64") and normalise it.
 */
enum am_err platform_parse(const char *s, struct platform *out, char *err, size_t errlen);

/* "linux/arm/v7", "windows(10.0.17763.5458)/amd64" */
void platform_format(const struct platform *p, char *buf, size_t len);

/*
 * Does the (normalised) platform read from an image satisfy what a rule
 * expects? os and arch must be equal; a variant the rule names must be equal;
 * an os.version the rule names must be a prefix of the image's, on a dot
 * ("10.0.17763" takes "10.0.17763.5458").
 */
int platform_satisfies(const struct platform *actual, const struct platform *expected);

/* Same os, arch, variant and os.version (duplicate detection). */
int platform_equal(const struct platform *a, const struct platform *b);

#endif
