#include "server/base/version.h"

/* The Makefile passes -DARCHMERGE_VERSION; a build without it says "dev". */
#ifndef ARCHMERGE_VERSION
#define ARCHMERGE_VERSION "dev"
#endif

const char *
am_version(void)
{
	return ARCHMERGE_VERSION;
}

const char *
am_user_agent(void)
{
	return "archmerge/" ARCHMERGE_VERSION;
}
