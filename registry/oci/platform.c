/*
 * Platform normalisation: the aliases found in image configs and in the
 * wild mapped to the names OCI indexes use (containerd's table).
 */
#include "registry/oci/platform.h"

#include <string.h>
#include <strings.h>

static void
set(char *dst, size_t len, const char *src)
{
	(void)am_fmt(dst, len, "%s", src);
}

void
platform_normalize(struct platform *p)
{
	char *a = p->arch, *v = p->variant;
	size_t i;

	for (i = 0; p->os[i] != '\0'; i++)
		if (p->os[i] >= 'A' && p->os[i] <= 'Z')
			p->os[i] = (char)(p->os[i] - 'A' + 'a');
	for (i = 0; a[i] != '\0'; i++)
		if (a[i] >= 'A' && a[i] <= 'Z')
			a[i] = (char)(a[i] - 'A' + 'a');

	if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0 || strcmp(a, "amd64") == 0) {
		set(a, sizeof(p->arch), "amd64");
		/* containerd: amd64 variants are v1..v4, and v1 is the baseline. */
		if (strcmp(v, "v1") == 0)
			v[0] = '\0';
	} else if (strcmp(a, "i386") == 0 || strcmp(a, "i686") == 0) {
		set(a, sizeof(p->arch), "386");
	} else if (strcmp(a, "aarch64") == 0 || strcmp(a, "arm64") == 0) {
		set(a, sizeof(p->arch), "arm64");
		if (strcmp(v, "8") == 0 || strcmp(v, "v8") == 0)
			v[0] = '\0';
	} else if (strcmp(a, "armhf") == 0) {
		set(a, sizeof(p->arch), "arm");
		set(v, sizeof(p->variant), "v7");
	} else if (strcmp(a, "armel") == 0) {
		set(a, sizeof(p->arch), "arm");
		set(v, sizeof(p->variant), "v6");
	} else if (strcmp(a, "arm") == 0) {
		if (v[0] == '\0' || strcmp(v, "7") == 0)
			set(v, sizeof(p->variant), "v7");
		else if (strcmp(v, "5") == 0 || strcmp(v, "6") == 0 || strcmp(v, "8") == 0) {
			char tmp[4] = { 'v', v[0], '\0', '\0' };
			set(v, sizeof(p->variant), tmp);
		}
	}
}

enum am_err
platform_parse(const char *s, struct platform *out, char *err, size_t errlen)
{
	const char *p1, *p2;
	size_t oslen, archlen;

	memset(out, 0, sizeof(*out));
	p1 = strchr(s, '/');
	if (p1 == NULL || p1 == s)
		return am_fail(err, errlen, AM_EINVAL, "platform \"%s\" is not os/arch[/variant]", s);
	oslen = (size_t)(p1 - s);
	p2 = strchr(p1 + 1, '/');
	archlen = p2 ? (size_t)(p2 - p1 - 1) : strlen(p1 + 1);
	if (oslen >= sizeof(out->os) || archlen == 0 || archlen >= sizeof(out->arch) ||
	    (p2 && (p2[1] == '\0' || strlen(p2 + 1) >= sizeof(out->variant) || strchr(p2 + 1, '/'))))
		return am_fail(err, errlen, AM_EINVAL, "platform \"%s\" is not os/arch[/variant]", s);
	memcpy(out->os, s, oslen);
	memcpy(out->arch, p1 + 1, archlen);
	if (p2)
		set(out->variant, sizeof(out->variant), p2 + 1);
	platform_normalize(out);
	return AM_OK;
}

void
platform_format(const struct platform *p, char *buf, size_t len)
{
	if (p->variant[0] != '\0')
		(void)am_fmt(buf, len, "%s/%s/%s", p->os, p->arch, p->variant);
	else
		(void)am_fmt(buf, len, "%s/%s", p->os, p->arch);
}

int
platform_satisfies(const struct platform *actual, const struct platform *expected)
{
	if (strcmp(actual->os, expected->os) != 0 || strcmp(actual->arch, expected->arch) != 0)
		return 0;
	return expected->variant[0] == '\0' || strcmp(actual->variant, expected->variant) == 0;
}

int
platform_equal(const struct platform *a, const struct platform *b)
{
	return strcmp(a->os, b->os) == 0 && strcmp(a->arch, b->arch) == 0 &&
	    strcmp(a->variant, b->variant) == 0 && strcmp(a->os_version, b->os_version) == 0;
}
