/*
 * Fuzz target: naming rules. The input is newline-separated fields:
 *
 *   source template \n target template \n repository \n tag \n repository glob \n extra arch token
 *
 * (missing fields are empty; an empty glob means "*"). Both templates are
 * compiled, then the pushed repo:tag is matched against the rule.
 *
 * Properties: compiled tag literals hold tag characters only; an expansion that
 * succeeds is a valid tag; a source match round-trips (expanding the matched
 * version and architecture gives the pushed tag back, and the group's
 * repository gives the pushed repository back); a target tag built
 * from a version is recognised as a target, and a tag read back as a
 * published version expands to itself and is no per-architecture tag; the
 * semantic-version order of repository and tag (as two versions) is
 * antisymmetric and reflexive.
 */
#include "tests/fuzz/fuzz.h"

#include "config/rule.h"
#include "config/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const builtin_names[] = { "amd64", "arm64", "armv7", "386" };
#define N_BUILTIN (sizeof(builtin_names) / sizeof(builtin_names[0]))

static int
all_tag_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if (!name_is_tag_char(*s))
			return 0;
	return 1;
}

static void
check_tmpl(const struct tmpl *t, int source)
{
	/* Tag-part literals hold tag characters only; two placeholders always have
	 * a separator between them (in either part). */
	FUZZ_ASSERT(all_tag_chars(t->tag.pre) && all_tag_chars(t->tag.mid) && all_tag_chars(t->tag.suf));
	if (t->tag.v2 != TV_NONE)
		FUZZ_ASSERT(t->tag.mid[0] != '\0');
	if (t->repo.v2 != TV_NONE)
		FUZZ_ASSERT(t->repo.mid[0] != '\0');
	FUZZ_ASSERT(t->has_arch == source);
	if (!source)
		FUZZ_ASSERT(!t->arch_in_repo && t->tag.v2 == TV_NONE);
}

static void
check_expand(const struct tmpl *t, const char *version, const char *arch)
{
	char buf[RULE_MAX_TAG];

	if (tmpl_expand_tag(t, version, arch, buf, sizeof(buf)) == 0)
		FUZZ_ASSERT(name_valid_tag(buf));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size), err[512], tag[RULE_MAX_TAG], srepo[RULE_MAX_REPO];
	char ver[RULE_MAX_TAG];
	int ab, ba;
	const char *f[6];
	char *glob;
	struct rule r;
	struct rule_match m;
	struct arch_token archs[N_BUILTIN + 1];
	size_t i;

	fuzz_fields(in, f, 6);
	if (version_semver_cmp(f[2], f[3], &ab) == 0) {
		FUZZ_ASSERT(version_semver_cmp(f[3], f[2], &ba) == 0 && ab == -ba);
		FUZZ_ASSERT(version_semver_cmp(f[2], f[2], &ab) == 0 && ab == 0);
	}
	memset(&r, 0, sizeof(r));
	memset(archs, 0, sizeof(archs));
	for (i = 0; i < N_BUILTIN; i++) {
		(void)am_fmt(archs[i].name, sizeof(archs[i].name), "%s", builtin_names[i]);
		FUZZ_ASSERT(arch_builtin(builtin_names[i], &archs[i].platform));
	}
	r.n_archs = N_BUILTIN;
	/* An extra token as config.c would accept it: tag-safe, not a duplicate. */
	if (f[5][0] != '\0' && name_valid_tag(f[5]) &&
	    am_fmt(archs[N_BUILTIN].name, sizeof(archs[N_BUILTIN].name), "%s", f[5]) == 0) {
		for (i = 0; i < N_BUILTIN; i++)
			if (strcmp(builtin_names[i], f[5]) == 0)
				break;
		if (i == N_BUILTIN)
			r.n_archs++;
	}
	r.archs = archs;
	glob = (char *)(f[4][0] != '\0' ? f[4] : "*");
	r.repositories = &glob;
	r.n_repositories = 1;

	if (tmpl_compile(f[0], 1, &r.source, err, sizeof(err)) != AM_OK) {
		FUZZ_ASSERT(err[0] != '\0');
		goto done;
	}
	check_tmpl(&r.source, 1);
	if (tmpl_compile(f[1], 0, &r.target, err, sizeof(err)) != AM_OK) {
		FUZZ_ASSERT(err[0] != '\0');
		goto done;
	}
	check_tmpl(&r.target, 0);
	check_expand(&r.source, f[3], "amd64");
	check_expand(&r.target, f[3], NULL);

	if (rule_match_source(&r, f[2], f[3], &m)) {
		FUZZ_ASSERT(m.arch < r.n_archs);
		FUZZ_ASSERT(name_valid_tag(m.version));
		/* The group's repository is covered and maps back to the pushed one
		 * (itself, or e.g. "l" -> "l-amd64" for "{repo}-{arch}:..."). */
		FUZZ_ASSERT(rule_covers(&r, m.repo));
		FUZZ_ASSERT(rule_source_repo(&r, m.repo, m.arch, srepo, sizeof(srepo)) == 0);
		FUZZ_ASSERT(strcmp(srepo, f[2]) == 0);
		FUZZ_ASSERT(tmpl_expand_tag(&r.source, m.version, r.archs[m.arch].name,
		    tag, sizeof(tag)) == 0);
		FUZZ_ASSERT(strcmp(tag, f[3]) == 0);
		if (tmpl_expand_tag(&r.target, m.version, NULL, tag, sizeof(tag)) == 0)
			FUZZ_ASSERT(rule_match_target(&r, m.repo, tag));
	}
	(void)rule_match_target(&r, f[2], f[3]);
	if (rule_target_version(&r, f[2], f[3], ver, sizeof(ver))) {
		FUZZ_ASSERT(tmpl_expand_tag(&r.target, ver, NULL, tag, sizeof(tag)) == 0);
		FUZZ_ASSERT(strcmp(tag, f[3]) == 0);
		FUZZ_ASSERT(!rule_match_source(&r, f[2], f[3], &m));
	}
done:
	free(in);
	return 0;
}
