/*
 * One registry request with authentication: the first try, the auth dance
 * after a 401, one retry, and the reply or the error line.
 */
#include "registry/client/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

static void
cl_fill_reply(struct reg_reply *out, struct resp *rs, int give_body)
{
	out->status = rs->status;
	cl_copy_bounded(out->media_type, sizeof(out->media_type), rs->content_type,
	    strlen(rs->content_type));
	cl_copy_bounded(out->digest, sizeof(out->digest), rs->digest, strlen(rs->digest));
	out->length = rs->length;
	out->retry_after_ms = (rs->status == 429 || rs->status == 503) ?
	    cl_retry_after_ms(rs->retry_after) : -1;
	cl_copy_bounded(out->location, sizeof(out->location), rs->location, strlen(rs->location));
	cl_registry_error_parts(rs, out->error_code, sizeof(out->error_code), out->error_message,
	    sizeof(out->error_message));
	if (give_body) {
		/* Steal the body: the reply owns it from now on. */
		out->body = rs->body != NULL ? rs->body : xstrdup("");
		out->body_len = rs->body_len;
		rs->body = NULL;
		rs->body_len = rs->body_cap = 0;
	}
}

/* Authentication of one registry call, carried from the first try to the retry. */

static enum am_err
fail_status(struct reg_client *c, const struct req *rq, const struct resp *rs,
    const struct auth_state *st, const char *what, char *err, size_t errlen)
{
	char regerr[300], who[300], code[64], msg[8];
	enum am_err rc;

	cl_registry_error_parts(rs, code, sizeof(code), msg, sizeof(msg));
	rc = cl_reply_to_err(rs->status, rq->method, code);
	cl_registry_error(rs, regerr, sizeof(regerr));
	if (rs->status == 401 && st->kind == SEND_BEARER) {
		cl_describe_rejection(c, st->key, who, sizeof(who));
		return am_fail(err, errlen, rc, "%s: 401%s: %s", what, regerr, who);
	}
	if (rs->status == 401 && st->kind == SEND_BASIC)
		return am_fail(err, errlen, rc, "%s: 401%s: Basic credentials of user \"%.100s\" were rejected",
		    what, regerr, c->username ? c->username : "");
	return am_fail(err, errlen, rc, "%s: %ld%s", what, rs->status, regerr);
}

/*
 * Send rq, going through the auth dance once when the registry answers 401:
 * at most two requests to the registry and two token fetches per call.
 */
/* A fresh capture for one try; a file sink starts afresh too. */
static enum am_err
start_try(const struct req *rq, struct resp *rs, const char *what, char *err, size_t errlen)
{
	cl_resp_free(rs);
	cl_resp_init(rs, rq->max, rq->keep_body);
	if (rq->sink == NULL)
		return AM_OK;
	rewind(rq->sink);
	if (ftruncate(fileno(rq->sink), 0) != 0 ||
	    EVP_DigestInit_ex(rq->sink_md, EVP_sha256(), NULL) != 1)
		return am_fail(err, errlen, AM_EIO, "%s: cannot reset the temporary file", what);
	rs->sink = rq->sink;
	rs->sink_md = rq->sink_md;
	return AM_OK;
}

/* The final answer: the Link header, the reply, or the error line. */
static enum am_err
finish(struct reg_client *c, const struct req *rq, struct resp *rs, const struct auth_state *st,
    const char *what, struct reg_reply *out, char *err, size_t errlen)
{
	enum am_err rc = cl_status_to_err(rs->status);

	if (rc == AM_OK && rq->link != NULL) {
		if (rs->link_overflow || strlen(rs->link) >= rq->link_len)
			return am_fail(err, errlen, AM_EINVAL, "%s: Link header longer than %zu bytes",
			    what, rq->link_len - 1);
		memcpy(rq->link, rs->link, strlen(rs->link) + 1);
	}
	if (out != NULL)
		cl_fill_reply(out, rs, rc == AM_OK && rq->keep_body);
	if (rc != AM_OK) {
		if (rs->status == 401 && st->kind == SEND_BEARER)
			cl_token_drop(c, st->key, st->token);   /* useless: do not offer it again */
		rc = fail_status(c, rq, rs, st, what, err, errlen);
	}
	return rc;
}

enum am_err
cl_do_request(struct reg_client *c, const struct req *rq, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct auth_state st;
	struct resp rs;
	struct send sd;
	char url[URL_MAX], what[PATH_LEN + 16];
	int attempt, retry;
	enum am_err rc;

	memset(&st, 0, sizeof(st));
	cl_resp_init(&rs, rq->max, rq->keep_body);
	if (am_fmt(url, sizeof(url), "%s%s", c->url, rq->path) != 0 ||
	    am_fmt(what, sizeof(what), "%s %s", rq->method, rq->path) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s %.200s...: URL too long", rq->method, rq->path);
		goto done;
	}
	if ((rc = cl_own_scope(c, rq, st.scope, sizeof(st.scope), err, errlen)) != AM_OK ||
	    (rc = cl_auth_start(c, &st, err, errlen)) != AM_OK)
		goto done;
	memset(&sd, 0, sizeof(sd));
	sd.url = url;
	sd.what = what;
	for (attempt = 0; attempt < 2; attempt++) {
		sd.auth = st.kind;
		sd.bearer = st.token;
		if ((rc = start_try(rq, &rs, what, err, errlen)) != AM_OK ||
		    (rc = cl_exchange(c, rq, &sd, &rs, err, errlen)) != AM_OK)
			goto done;
		if (rs.status != 401 || attempt == 1)
			break;
		if ((rc = cl_auth_after_401(c, rq, &rs, &st, what, &retry, err, errlen)) != AM_OK)
			goto done;
		if (!retry)
			break;
	}
	rc = finish(c, rq, &rs, &st, what, out, err, errlen);
done:
	cl_auth_state_clear(&st);
	cl_resp_free(&rs);
	return rc;
}
