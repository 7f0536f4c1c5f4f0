/*
 * Makes Debian bookworm's CivetWeb 1.15 work with OpenSSL 3.
 *
 * CivetWeb dlopen()s "libssl.so" and looks every function up by name. One of
 * them, SSL_get_peer_certificate, is only a macro in OpenSSL 3 (the exported
 * symbol is SSL_get1_peer_certificate), so CivetWeb stores a NULL pointer and
 * calls it on the first HTTPS request: the process crashes.
 *
 * The fix needs no extra file: the archmerge executable is linked with
 * DT_SONAME "libssl.so" (see the Makefile). glibc's dlopen() returns an
 * already loaded object whose SONAME equals the requested name, so
 * CivetWeb's handle is the executable itself, and lookups through it search
 * the executable and then its dependencies, the real libssl.so.3 among them.
 * The executable exports this one definition (tls_compat.list), which
 * therefore wins for that name and forwards to the OpenSSL 3 function with
 * the same contract (a new reference the caller frees).
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

X509 *
SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}
