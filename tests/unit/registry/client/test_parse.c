/*
 * Unit tests of registry/client/parse.c's readings of a refusal: the
 * errors[] body split into code and message, and which code a status means
 * with the method that met it (Harbor's project policy answers a manifest
 * read with 412 PROJECTPOLICYVIOLATION, a HEAD with a bare 412).
 */
#include "tests/unit/harness.h"

#include <stdlib.h>

#include "registry/client/internal.h"

static void
with_body(struct resp *rs, const char *body)
{
	memset(rs, 0, sizeof(*rs));
	rs->body = (char *)body;
	rs->body_len = body != NULL ? strlen(body) : 0;
}

static void
test_parts(void)
{
	struct resp rs;
	char code[48], msg[320], line[300];

	with_body(&rs, "{\"errors\":[{\"code\":\"PROJECTPOLICYVIOLATION\",\"message\":\"The image is not "
	    "signed by cosign.\"}]}");
	cl_registry_error_parts(&rs, code, sizeof(code), msg, sizeof(msg));
	CHECK_STR(code, "PROJECTPOLICYVIOLATION");
	CHECK_STR(msg, "The image is not signed by cosign.");
	cl_registry_error(&rs, line, sizeof(line));
	CHECK_STR(line, " PROJECTPOLICYVIOLATION: The image is not signed by cosign.");
	/* Control characters never reach a log line. */
	with_body(&rs, "{\"errors\":[{\"code\":\"X\",\"message\":\"a\\nb\"}]}");
	cl_registry_error_parts(&rs, code, sizeof(code), msg, sizeof(msg));
	CHECK_STR(msg, "a?b");
	/* No body (a HEAD), or no errors[]: both empty. */
	with_body(&rs, NULL);
	cl_registry_error_parts(&rs, code, sizeof(code), msg, sizeof(msg));
	CHECK(code[0] == '\0' && msg[0] == '\0');
	with_body(&rs, "not json");
	cl_registry_error_parts(&rs, code, sizeof(code), msg, sizeof(msg));
	CHECK(code[0] == '\0' && msg[0] == '\0');
}

static void
test_codes(void)
{
	CHECK(cl_reply_to_err(412, "GET", "PROJECTPOLICYVIOLATION") == AM_EPOLICY);
	CHECK(cl_reply_to_err(412, "HEAD", "") == AM_EPOLICY);
	CHECK(cl_reply_to_err(412, "GET", "") == AM_EPOLICY);
	/* An immutable tag refuses a PUT with 412 PRECONDITION: a permanent refusal. */
	CHECK(cl_reply_to_err(412, "PUT", "PRECONDITION") == AM_EDENIED);
	CHECK(cl_reply_to_err(412, "PUT", "") == AM_EDENIED);
	CHECK(cl_reply_to_err(412, "GET", "PRECONDITION") == AM_EDENIED);
	CHECK(cl_reply_to_err(404, "GET", "NOT_FOUND") == AM_ENOTFOUND);
	CHECK(cl_reply_to_err(503, "HEAD", "") == AM_ETRANSIENT);
	CHECK(cl_reply_to_err(200, "GET", "") == AM_OK);
	CHECK_STR(am_strerror(AM_EPOLICY), "policy");
}

static void
run_tests(void)
{
	test_parts();
	test_codes();
}

TEST_MAIN("client-parse")
