/*
 * The status page (GET /ui): server-rendered HTML built from the same
 * document GET /status answers with, so the page and the JSON never
 * disagree. Pure: no HTTP, no globals; every value is HTML-escaped.
 */
#ifndef AM_UI_H
#define AM_UI_H

#include <stddef.h>
#include <jansson.h>

#define UI_MAX_BYTES (2u << 20)   /* a page never grows past this (a note says what was left out) */
#define UI_REFRESH_S 5

struct ui_opts {
	const char *json_href;    /* link to the same data as JSON, e.g. "/status" */
	int refresh_s;            /* meta refresh; 0: none */
	size_t max_bytes;         /* 0: UI_MAX_BYTES; raised to 4096 at least */
};

/*
 * Render status (borrowed; the /status document, fields it lacks are left
 * out). Returns a NUL-terminated page of at most max_bytes including the
 * NUL; caller frees. *len (may be NULL) gets its length.
 */
char *ui_render(const json_t *status, const struct ui_opts *o, size_t *len);

/*
 * The page's Content-Security-Policy: its one style sheet and one script
 * allowed by their SHA-256 hashes (nothing else inline runs), no framing,
 * no <base>, forms only to this origin. 0, or -1 when buf is too small.
 */
int ui_csp(char *buf, size_t len);

/* s HTML-escaped (& < > " ' become entities); caller frees. */
char *ui_escape(const char *s);

#endif
