/*
 * The distribution spec's grammar for repository names, tags and digests:
 * everything taken from a payload passes here before it reaches a URL or a log.
 */
#include "registry/oci/names.h"

#include <string.h>

static int
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
name_is_tag_char(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

int
name_valid_repo(const char *s)
{
	/* components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/' */
	size_t len = strlen(s), i = 0;

	if (len == 0 || len >= NAME_MAX_REPO)
		return 0;
	for (;;) {
		if (!is_lower_alnum(s[i]))
			return 0;
		while (is_lower_alnum(s[i]))
			i++;
		if (s[i] == '\0')
			return 1;
		if (s[i] == '/') {
			i++;
			continue;
		}
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (!is_lower_alnum(s[i]))
			return 0;
	}
}

int
name_valid_tag(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= NAME_MAX_TAG - 1 || !name_is_tag_char(s[i]))
			return 0;
	return 1;
}

int
name_valid_digest(const char *s)
{
	size_t i;

	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return 0;
	for (i = 7; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

