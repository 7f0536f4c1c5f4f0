"""Integration-test harness for archmerge: PKI, token service, registry,
registry client, Harbor webhook payloads and wrappers for real CLI tools.

Everything here listens on, and talks to, 127.0.0.1 only.
"""
