/* archmerge's version, defined once (the Makefile's VERSION). */
#ifndef AM_VERSION_H
#define AM_VERSION_H

const char *am_version(void);      /* "0.1.0" */
const char *am_user_agent(void);   /* "archmerge/0.1.0": every HTTP request archmerge sends */

#endif
