/*
 * Link header parsing (RFC 8288, the subset registries send) and resolution
 * of the next-page target. The registry chooses the URL, so it is treated as
 * untrusted input: one origin only, no dot segments, printable bytes only.
 */
#include "registry/client/pagelink.h"

#include <string.h>
#include <strings.h>

static int
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 token characters, enough to skip a parameter name. */
static int
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Does the relation list [s, e) (space separated) contain "next"? */
static int
rel_has_next(const char *s, const char *e)
{
	const char *w;

	while (s < e) {
		while (s < e && is_ws(*s))
			s++;
		w = s;
		while (s < e && !is_ws(*s))
			s++;
		if (s - w == 4 && strncasecmp(w, "next", 4) == 0)
			return 1;
	}
	return 0;
}

/*
 * Parse the parameters after "<...>" up to the next entry. Returns the
 * position of the ',' or NUL ending the entry, or NULL when malformed;
 * *next is set when a rel parameter names "next".
 */
static const char *
parse_params(const char *p, int *next)
{
	const char *name, *vs, *ve;
	size_t nlen;

	*next = 0;
	for (;;) {
		while (is_ws(*p))
			p++;
		if (*p == '\0' || *p == ',')
			return p;
		if (*p != ';')
			return NULL;
		p++;
		while (is_ws(*p))
			p++;
		name = p;
		while (is_tchar(*p))
			p++;
		nlen = (size_t)(p - name);
		if (nlen == 0)
			return NULL;
		while (is_ws(*p))
			p++;
		if (*p != '=') {
			continue;         /* a parameter without value */
		}
		p++;
		while (is_ws(*p))
			p++;
		if (*p == '"') {
			vs = ++p;
			while (*p != '"') {
				if (*p == '\0')
					return NULL;
				if (*p == '\\' && p[1] != '\0')
					p++;
				p++;
			}
			ve = p++;
		} else {
			vs = p;
			while (is_tchar(*p))
				p++;
			ve = p;
		}
		if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 && rel_has_next(vs, ve))
			*next = 1;
	}
}

int
pagelink_next(const char *header, char *url, size_t urllen)
{
	const char *p = header, *lt, *gt;
	int next;

	if (header == NULL)
		return 0;
	for (;;) {
		while (is_ws(*p) || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p != '<')
			return -1;
		lt = p + 1;
		if ((gt = strchr(lt, '>')) == NULL)
			return -1;
		if ((p = parse_params(gt + 1, &next)) == NULL)
			return -1;
		if (next) {
			if (gt == lt || (size_t)(gt - lt) >= urllen)
				return -1;
			memcpy(url, lt, (size_t)(gt - lt));
			url[gt - lt] = '\0';
			return 1;
		}
	}
}

/* scheme://authority split of an absolute URL; *rest points after the authority. */
struct origin {
	char scheme[8];
	char host[256];
	char port[8];             /* "" when absent or the scheme's default */
};

static int
split_origin(const char *url, struct origin *o, const char **rest)
{
	const char *sep = strstr(url, "://"), *auth, *end, *colon, *rb;
	size_t n;

	memset(o, 0, sizeof(*o));
	if (sep == NULL || (size_t)(sep - url) >= sizeof(o->scheme))
		return -1;
	memcpy(o->scheme, url, (size_t)(sep - url));
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return -1;                /* userinfo has no business in a page link */
	/* "[v6]:port": the port colon comes after the closing bracket. */
	rb = auth[0] == '[' ? memchr(auth, ']', (size_t)(end - auth)) : NULL;
	colon = memchr(rb != NULL ? rb : auth, ':', (size_t)(end - (rb != NULL ? rb : auth)));
	n = (size_t)((colon != NULL ? colon : end) - auth);
	if (n == 0 || n >= sizeof(o->host))
		return -1;
	memcpy(o->host, auth, n);
	if (colon != NULL) {
		n = (size_t)(end - colon - 1);
		if (n >= sizeof(o->port))
			return -1;
		memcpy(o->port, colon + 1, n);
		if (n == 0 || strspn(o->port, "0123456789") != n)
			return -1;
	}
	if ((strcasecmp(o->scheme, "https") == 0 && strcmp(o->port, "443") == 0) ||
	    (strcasecmp(o->scheme, "http") == 0 && strcmp(o->port, "80") == 0))
		o->port[0] = '\0';
	*rest = end;
	return 0;
}

static int
same_origin(const struct origin *a, const struct origin *b)
{
	return strcasecmp(a->scheme, b->scheme) == 0 && strcasecmp(a->host, b->host) == 0 &&
	    strcmp(a->port, b->port) == 0;
}

/* A path part that a server could normalise somewhere else: "." / ".." segments, escapes. */
static int
path_is_plain(const char *p)
{
	size_t n = strcspn(p, "?");
	const char *seg = p, *end = p + n, *slash;

	if (memchr(p, '%', n) != NULL || memchr(p, '\\', n) != NULL)
		return 0;
	while (seg < end) {
		slash = memchr(seg, '/', (size_t)(end - seg));
		if (slash == NULL)
			slash = end;
		if ((slash - seg == 1 && seg[0] == '.') ||
		    (slash - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		seg = slash + 1;
	}
	return 1;
}

enum am_err
pagelink_resolve(const char *base_url, const char *cur_path, const char *link,
    char *path, size_t pathlen, char *err, size_t errlen)
{
	struct origin bo, lo;
	const char *brest, *lrest, *q, *slash;
	char full[2048];
	size_t i, n, blen;
	int rc;

	for (i = 0; link[i] != '\0'; i++)
		if ((unsigned char)link[i] <= 0x20 || (unsigned char)link[i] >= 0x7f)
			return am_fail(err, errlen, AM_EINVAL,
			    "next-page link holds spaces or control characters");
	if (i == 0)
		return am_fail(err, errlen, AM_EINVAL, "next-page link is empty");
	if (split_origin(base_url, &bo, &brest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "registry URL %.200s has no origin", base_url);
	blen = strlen(brest);         /* a base path prefix ("https://h/prefix") */
	while (blen > 0 && brest[blen - 1] == '/')
		blen--;

	if ((link[0] == '/' && link[1] == '/') ||
	    strncasecmp(link, "http://", 7) == 0 || strncasecmp(link, "https://", 8) == 0) {
		/* Scheme-relative links take our scheme, then both forms must match our origin. */
		if (am_fmt(full, sizeof(full), "%s%s%s", link[0] == '/' ? bo.scheme : "",
		    link[0] == '/' ? ":" : "", link) != 0)
			return am_fail(err, errlen, AM_EINVAL, "next-page link too long");
		if (split_origin(full, &lo, &lrest) != 0)
			return am_fail(err, errlen, AM_EINVAL, "next-page link %.200s is malformed", link);
		if (!same_origin(&bo, &lo))
			return am_fail(err, errlen, AM_EDENIED,
			    "next-page link %.200s points at another origin than %.200s", link, base_url);
		if (lrest[0] != '/')
			return am_fail(err, errlen, AM_EINVAL, "next-page link %.200s has no path", link);
		link = lrest;
	}

	n = strcspn(link, "#");       /* a fragment never reaches the server */
	if (link[0] == '/') {
		/* Absolute paths include the base's own path prefix, which we add back. */
		if (blen > 0 && (strncmp(link, brest, blen) != 0 || link[blen] != '/'))
			return am_fail(err, errlen, AM_EDENIED,
			    "next-page link %.200s is outside the registry URL %.200s", link, base_url);
		rc = am_fmt(path, pathlen, "%.*s", (int)(n - blen), link + blen);
	} else if (link[0] == '?') {
		q = cur_path + strcspn(cur_path, "?");
		rc = am_fmt(path, pathlen, "%.*s%.*s", (int)(q - cur_path), cur_path, (int)n, link);
	} else {
		q = cur_path + strcspn(cur_path, "?");
		slash = q;
		while (slash > cur_path && slash[-1] != '/')
			slash--;
		rc = am_fmt(path, pathlen, "%.*s%.*s", (int)(slash - cur_path), cur_path, (int)n, link);
	}
	if (rc != 0)
		return am_fail(err, errlen, AM_EINVAL, "next-page link too long");
	if (path[0] != '/' || !path_is_plain(path))
		return am_fail(err, errlen, AM_EINVAL,
		    "next-page link %.200s has dot segments or escapes in its path", link);
	return AM_OK;
}
