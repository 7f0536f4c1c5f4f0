#!/usr/bin/python3
"""make check-layers: every #include in product code points down the house.

The layers, bottom to top (README "The house"). A file may include headers of
its own layer and of the layers below it, never above. Folders named on one
line are one layer: they may include each other.
"""
import os
import re
import sys

LAYERS = [
    ("base", ["server/base/"]),
    ("oci", ["registry/oci/"]),
    ("client", ["registry/client/"]),
    ("sign", ["registry/sign/"]),
    ("harbor", ["registry/harbor/"]),
    ("assemble", ["registry/assemble/"]),
    ("config", ["config/"]),
    ("handlers", ["handlers/"]),
    ("observe/queue", ["server/observe/", "server/queue/", "server/outbox/"]),
    ("service", ["server/service/"]),
    ("reconcile", ["server/reconcile/"]),
    ("front", ["server/http", "server/endpoints", "server/conncap", "server/closing", "server/tls_compat", "server/cmd/"]),
]

# Known arrows against the layering, each to be removed; the list only shrinks.
KNOWN = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(path.startswith(p) for p in prefixes):
            return rank
    return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    bad, unplaced, seen = [], [], set()
    for top in ("server", "handlers", "registry", "config"):
        for d, _, files in os.walk(top):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(d, f)
                me = layer_of(path)
                if me is None:
                    unplaced.append(path)
                    continue
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                for inc in INCLUDE.findall(text):
                    if inc.startswith("../") or "/../" in inc:
                        bad.append(f"{path}: includes \"{inc}\": write it root-relative")
                        continue
                    if not os.path.exists(inc):
                        bad.append(f"{path}: includes \"{inc}\", which is not a root-relative path")
                        continue
                    them = layer_of(inc)
                    if them is None or them <= me:
                        continue
                    key = (path, inc)
                    seen.add(key)
                    if key in KNOWN:
                        continue
                    bad.append(f"{path} ({LAYERS[me][0]}) includes {inc} ({LAYERS[them][0]}), a layer above it")
    for key in sorted(KNOWN - seen):
        bad.append(f"check-layers.py: KNOWN lists {key[0]} -> {key[1]}, which no longer exists: remove it")
    for path in unplaced:
        bad.append(f"{path}: in no layer (add its folder to LAYERS in tests/check-layers.py)")
    for line in bad:
        print(line)
    print(f"check-layers: {len(bad)} problem(s), {len(KNOWN & seen)} known arrow(s) against the layering")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
