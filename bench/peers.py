"""The tools a user would pick instead of archmerge, each making one 2-arch
index from two pushed per-arch tags: docker manifest, buildah manifest,
podman manifest, manifest-tool. Each peer: available(mode) -> note or None,
and run(mode, repo, version) timed by the caller."""

import json
import os
import shutil
import subprocess

MANIFEST_TOOL = os.environ.get("MANIFEST_TOOL", "/work/shared/peers/manifest-tool")


def _run(argv, env=None, timeout=120):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(p.stderr or p.stdout).strip()[-400:]}")


class Peer:
    name = ""

    def __init__(self, world, work):
        self.w, self.work = world, work

    def host(self, mode):
        return self.w.regs[mode].host

    def available(self, mode):
        return None


class Docker(Peer):
    name = "docker manifest create/annotate x2/push"

    def __init__(self, world, work):
        super().__init__(world, work)
        self.cfg = os.path.join(work, "docker-config")
        os.makedirs(self.cfg, exist_ok=True)
        with open(os.path.join(self.cfg, "config.json"), "w") as f:
            json.dump({"auths": {}}, f)
        self.env = dict(os.environ, DOCKER_CONFIG=self.cfg)

    def available(self, mode):
        if not shutil.which("docker"):
            return "docker CLI not installed"
        if mode == "tls":
            # docker's CLI treats every 127.0.0.0/8 registry as insecure and talks plain HTTP to it
            return "cannot: docker manifest pushes plain HTTP to any 127.0.0.0/8 registry"
        return None

    def run(self, mode, repo, v):
        ref = f"{self.host(mode)}/{repo}"
        for argv in (["docker", "manifest", "create", "--insecure", "--amend", f"{ref}:{v}",
                      f"{ref}:{v}-amd64", f"{ref}:{v}-arm64"],
                     ["docker", "manifest", "annotate", "--os", "linux", "--arch", "amd64", f"{ref}:{v}",
                      f"{ref}:{v}-amd64"],
                     ["docker", "manifest", "annotate", "--os", "linux", "--arch", "arm64", f"{ref}:{v}",
                      f"{ref}:{v}-arm64"],
                     ["docker", "manifest", "push", "--insecure", "--purge", f"{ref}:{v}"]):
            _run(argv, self.env)


class Containers(Peer):
    """buildah and podman share containers/image and the same manifest verbs."""
    tool = ""

    def __init__(self, world, work):
        super().__init__(world, work)
        self.root = os.path.join(work, self.tool)
        self.certs = os.path.join(work, self.tool + "-certs")
        os.makedirs(self.certs, exist_ok=True)
        shutil.copy(world.pki.ca_cert, os.path.join(self.certs, "ca.crt"))
        self.base = [self.tool, "--root", os.path.join(self.root, "root"), "--runroot",
                     os.path.join(self.root, "run"), "--storage-driver", "vfs"]
        os.makedirs(self.root, exist_ok=True)
        auth = os.path.join(self.root, "auth.json")
        with open(auth, "w") as f:
            json.dump({"auths": {}}, f)
        self.env = dict(os.environ, REGISTRY_AUTH_FILE=auth)

    def available(self, mode):
        return None if shutil.which(self.tool) else f"{self.tool} not installed"

    def tls_args(self, mode):
        if mode == "plain":
            return ["--tls-verify=false"]
        return ["--cert-dir", self.certs, "--creds", f"ci:{self.w.users['ci']}"]

    def run(self, mode, repo, v):
        ref = f"{self.host(mode)}/{repo}"
        lst = f"localhost/bench-list-{mode}-{v}"
        _run(self.base + ["manifest", "create", lst], self.env)
        try:
            for a in ("amd64", "arm64"):
                _run(self.base + ["manifest", "add"] + self.tls_args(mode) + [lst, f"docker://{ref}:{v}-{a}"],
                     self.env)
            _run(self.base + ["manifest", "push", "--all=false"] + self.tls_args(mode) +
                 [lst, f"docker://{ref}:{v}"], self.env)
        finally:
            subprocess.run(self.base + ["manifest", "rm", lst], env=self.env, capture_output=True)


class Buildah(Containers):
    name = "buildah manifest create/add x2/push"
    tool = "buildah"


class Podman(Containers):
    name = "podman manifest create/add x2/push"
    tool = "podman"


class ManifestTool(Peer):
    name = "manifest-tool v2.1.5 push from-args"

    def available(self, mode):
        return None if os.access(MANIFEST_TOOL, os.X_OK) else f"{MANIFEST_TOOL} not present"

    def run(self, mode, repo, v):
        ref = f"{self.host(mode)}/{repo}"
        argv = [MANIFEST_TOOL]
        env = dict(os.environ)
        if mode == "plain":
            argv += ["--plain-http"]
        else:
            argv += ["--username", "ci", "--password", self.w.users["ci"]]
            env["SSL_CERT_FILE"] = self.w.pki.ca_cert   # Go's crypto/x509 trusts this file
        argv += ["push", "from-args", "--platforms", "linux/amd64,linux/arm64",
                 "--template", f"{ref}:{v}-ARCH", "--target", f"{ref}:{v}"]
        _run(argv, env)


ALL = (ManifestTool, Docker, Buildah, Podman)
