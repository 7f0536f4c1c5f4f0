#include "registry/assemble/plan.h"

#include <stdlib.h>
#include <string.h>

void
plan_clear(struct plan *p)
{
	if (p == NULL)
		return;
	free(p->archs);
	memset(p, 0, sizeof(*p));
}
