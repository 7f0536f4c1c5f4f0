/* Name grammar of the distribution spec; each check returns 1 when valid. */
#ifndef AM_NAMES_H
#define AM_NAMES_H

#define NAME_MAX_REPO 256   /* bytes, including the NUL */
#define NAME_MAX_TAG 129    /* 128 characters + NUL */

int name_valid_repo(const char *s);    /* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/' */
int name_valid_tag(const char *s);     /* [A-Za-z0-9_][A-Za-z0-9._-]{0,127} */
int name_valid_digest(const char *s);  /* sha256:<64 lowercase hex> */
int name_is_tag_char(char c);

#endif
