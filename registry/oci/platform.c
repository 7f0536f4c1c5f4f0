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

/* Split "os(os.version)" off s (up to the first '/'); returns the length of the os part or -1. */
static int
split_os(const char *s, size_t len, struct platform *out)
{
	const char *open = memchr(s, '(', len);
	size_t vlen;

	if (open == NULL) {
		if (len >= sizeof(out->os))
			return -1;
		memcpy(out->os, s, len);
		return (int)len;
	}
	vlen = len - (size_t)(open - s) - 1;
	if (open == s || vlen < 2 || s[len - 1] != ')' || (size_t)(open - s) >= sizeof(out->os) ||
	    vlen - 1 >= sizeof(out->os_version) || memchr(open + 1, '(', vlen) != NULL)
		return -1;
	memcpy(out->os, s, (size_t)(open - s));
	memcpy(out->os_version, open + 1, vlen - 1);
	return (int)(open - s);
}

enum am_err
platform_parse(const char *s, struct platform *out, char *err, size_t errlen)
{
	const char *p1, *p2;
	size_t archlen;

	memset(out, 0, sizeof(*out));
	p1 = strchr(s, '/');
	if (p1 == NULL || p1 == s || split_os(s, (size_t)(p1 - s), out) < 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "platform \"%s\" is not os[(os.version)]/arch[/variant]", s);
	p2 = strchr(p1 + 1, '/');
	archlen = p2 ? (size_t)(p2 - p1 - 1) : strlen(p1 + 1);
	if (archlen == 0 || archlen >= sizeof(out->arch) ||
	    (p2 && (p2[1] == '\0' || strlen(p2 + 1) >= sizeof(out->variant) || strchr(p2 + 1, '/'))))
		return am_fail(err, errlen, AM_EINVAL,
		    "platform \"%s\" is not os[(os.version)]/arch[/variant]", s);
	memcpy(out->arch, p1 + 1, archlen);
	if (p2)
		set(out->variant, sizeof(out->variant), p2 + 1);
	platform_normalize(out);
	return AM_OK;
}

void
platform_format(const struct platform *p, char *buf, size_t len)
{
	char os[sizeof(p->os) + sizeof(p->os_version) + 2];

	if (p->os_version[0] != '\0')
		(void)am_fmt(os, sizeof(os), "%s(%s)", p->os, p->os_version);
	else
		(void)am_fmt(os, sizeof(os), "%s", p->os);
	if (p->variant[0] != '\0')
		(void)am_fmt(buf, len, "%s/%s/%s", os, p->arch, p->variant);
	else
		(void)am_fmt(buf, len, "%s/%s", os, p->arch);
}

/* "10.0.17763" is a prefix of "10.0.17763" and "10.0.17763.5458", not of "10.0.177630". */
static int
version_prefix(const char *actual, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(actual, prefix, n) == 0 && (actual[n] == '\0' || actual[n] == '.');
}

int
platform_satisfies(const struct platform *actual, const struct platform *expected)
{
	if (strcmp(actual->os, expected->os) != 0 || strcmp(actual->arch, expected->arch) != 0)
		return 0;
	if (expected->os_version[0] != '\0' && !version_prefix(actual->os_version, expected->os_version))
		return 0;
	return expected->variant[0] == '\0' || strcmp(actual->variant, expected->variant) == 0;
}

int
platform_equal(const struct platform *a, const struct platform *b)
{
	return strcmp(a->os, b->os) == 0 && strcmp(a->arch, b->arch) == 0 &&
	    strcmp(a->variant, b->variant) == 0 && strcmp(a->os_version, b->os_version) == 0;
}
