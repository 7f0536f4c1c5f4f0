#!/usr/bin/python3
"""Checks of the deployment files that need no cluster and no container engine
(run by deploy/verify.sh, part of `make verify-deploy`).

- every Kubernetes manifest parses and has apiVersion, kind and a name;
- the Deployment keeps its promises: HTTPS probes on /healthz and /readyz,
  non-root, read-only root filesystem, no privilege escalation, all
  capabilities dropped, RuntimeDefault seccomp, resources;
- statefulset.yaml runs the same pod as deployment.yaml but for the state volume;
- the ConfigMap's archmerge.conf passes `archmerge check-config` (its file
  paths mapped to dummy files in a temporary directory);
- compose.yaml parses and joins Harbor's external network, mounts read-only;
- kubernetes/monitoring/: the PrometheusRule carries exactly the groups of
  prometheus/archmerge-rules.yml, the ServiceMonitor scrapes the Service's
  https port over HTTPS and its job label is the one the rules read.

usage: verify.py ARCHMERGE_BIN
"""

import copy
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S = os.path.join(HERE, "kubernetes")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def manifests():
    docs = {}
    for name in sorted(os.listdir(K8S)):
        if not name.endswith(".yaml"):
            continue
        for d in load_all(os.path.join(K8S, name)):
            check("apiVersion" in d and "kind" in d, f"{name}: apiVersion and kind")
            if d.get("kind") != "Kustomization":
                check(d.get("metadata", {}).get("name"), f"{name}: metadata.name")
            docs.setdefault(d["kind"], []).append((name, d))
    return docs


def container_security(name, c):
    sc = c.get("securityContext", {})
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
    check(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    check(sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities drop ALL")


def check_pod(where, spec):
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    check(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] != 0, f"{where}: numeric non-root runAsUser")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile RuntimeDefault")
    main = [c for c in spec["containers"] if c["name"] == "archmerge"]
    check(len(main) == 1, f"{where}: one archmerge container")
    if not main:
        return
    c = main[0]
    for c2 in spec["containers"] + spec.get("initContainers", []):
        container_security(f"{where}/{c2['name']}", c2)
    probes = {k: c.get(k, {}).get("httpGet", {}) for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    check(probes["livenessProbe"].get("path") == "/healthz", f"{where}: liveness /healthz")
    check(probes["readinessProbe"].get("path") == "/readyz", f"{where}: readiness /readyz")
    for k, p in probes.items():
        check(p.get("scheme") == "HTTPS", f"{where}: {k} scheme HTTPS")
    res = c.get("resources", {})
    check(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"), f"{where}: memory resources")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path, ro in (("/etc/archmerge", True), ("/run/archmerge/secrets", True), ("/var/lib/archmerge", False)):
        check(path in mounts, f"{where}: mounts {path}")
        if path in mounts:
            check(bool(mounts[path].get("readOnly")) == ro, f"{where}: {path} readOnly={ro}")


def pod_without_state(spec):
    s = copy.deepcopy(spec)
    s["volumes"] = [v for v in s.get("volumes", []) if v["name"] != "state"]
    return s


def check_config(binary, cm):
    conf = cm["data"]["archmerge.conf"]
    with tempfile.TemporaryDirectory(prefix="archmerge-verify-") as tmp:
        # Map the container paths to files in tmp: configuration files
        # readable, secret files mode 0600, as check-config requires.
        for prefix, dst in (("/run/archmerge/secrets/", "secrets"), ("/etc/archmerge/", "etc")):
            os.makedirs(os.path.join(tmp, dst), exist_ok=True)
            conf = conf.replace(prefix, os.path.join(tmp, dst) + "/")
        for name in ("tls.crt", "tls.key", "webhook-secret", "robot-secret"):
            p = os.path.join(tmp, "secrets", name)
            with open(p, "w") as f:
                f.write("dummy\n")
            os.chmod(p, 0o600)
        with open(os.path.join(tmp, "etc", "harbor-ca.crt"), "w") as f:
            f.write(cm["data"]["harbor-ca.crt"])
        path = os.path.join(tmp, "archmerge.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([binary, "check-config", "-c", path], capture_output=True, text=True)
        check(r.returncode == 0 and "configuration OK" in r.stdout,
              f"configmap.yaml archmerge.conf: check-config said: {r.stdout}{r.stderr}".strip())


def check_compose():
    with open(os.path.join(HERE, "compose.yaml")) as f:
        c = yaml.safe_load(f)
    svc = c.get("services", {}).get("archmerge", {})
    check(svc.get("user") == "10001:10001", "compose: runs as uid 10001")
    check(svc.get("read_only") is True, "compose: read-only root filesystem")
    check(svc.get("cap_drop") == ["ALL"], "compose: drops all capabilities")
    check("harbor" in svc.get("networks", []), "compose: joins the harbor network")
    net = c.get("networks", {}).get("harbor", {})
    check(net.get("external") is True and net.get("name") == "harbor_harbor", "compose: network harbor_harbor, external")
    vols = {v["target"]: v for v in svc.get("volumes", []) if isinstance(v, dict)}
    check(vols.get("/etc/archmerge", {}).get("read_only") is True, "compose: config mounted read-only")
    check(vols.get("/var/lib/archmerge", {}).get("type") == "volume", "compose: state in a volume")
    check(any("/healthz" in str(x) for x in svc.get("healthcheck", {}).get("test", [])), "compose: healthcheck on /healthz")


def check_monitoring(service):
    mon = os.path.join(K8S, "monitoring")
    docs = {}
    for name in sorted(os.listdir(mon)):
        if name.endswith(".yaml"):
            for d in load_all(os.path.join(mon, name)):
                check("apiVersion" in d and "kind" in d, f"monitoring/{name}: apiVersion and kind")
                docs[d.get("kind")] = d
    for kind in ("PrometheusRule", "ServiceMonitor", "Kustomization"):
        check(kind in docs, f"monitoring/: a {kind} manifest")
    if any(k not in docs for k in ("PrometheusRule", "ServiceMonitor", "Kustomization")):
        return
    with open(os.path.join(HERE, "prometheus", "archmerge-rules.yml")) as f:
        rules = yaml.safe_load(f)
    check(docs["PrometheusRule"]["spec"]["groups"] == rules["groups"],
          "monitoring/prometheusrule.yaml differs from prometheus/archmerge-rules.yml "
          "(run deploy/prometheus/prometheusrule.sh)")
    sm = docs["ServiceMonitor"]
    check(sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items(),
          "servicemonitor.yaml selects the archmerge Service")
    ports = [p["name"] for p in service["spec"]["ports"]]
    for ep in sm["spec"]["endpoints"]:
        check(ep.get("port") in ports, f"servicemonitor.yaml: port {ep.get('port')} is a port of the Service")
        check(ep.get("scheme") == "https" and ep.get("path") == "/metrics",
              "servicemonitor.yaml: scrapes /metrics over https")
    # ArchmergeDown reads up{job="archmerge"}; the operator's job label is the Service's name.
    check("jobLabel" not in sm["spec"] and service["metadata"]["name"] == "archmerge",
          "servicemonitor.yaml: the job label is archmerge")
    for r in docs["Kustomization"].get("resources", []):
        check(os.path.exists(os.path.join(mon, r)), f"monitoring/kustomization resource {r} exists")


def main():
    binary = sys.argv[1]
    docs = manifests()
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "Kustomization"):
        check(kind in docs, f"a {kind} manifest")
    dep = docs["Deployment"][0][1]
    sts = docs["StatefulSet"][0][1]
    check_pod("deployment.yaml", dep["spec"]["template"]["spec"])
    check_pod("statefulset.yaml", sts["spec"]["template"]["spec"])
    check(pod_without_state(dep["spec"]["template"]["spec"]) == sts["spec"]["template"]["spec"],
          "statefulset.yaml: pod differs from deployment.yaml beyond the state volume")
    check([t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])] == ["state"],
          "statefulset.yaml: volumeClaimTemplates state")
    svc = docs["Service"][0][1]
    check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "service selects the Deployment's pods")
    kust = docs["Kustomization"][0][1]
    for r in kust.get("resources", []):
        check(os.path.exists(os.path.join(K8S, r)), f"kustomization resource {r} exists")
    check_config(binary, docs["ConfigMap"][0][1])
    check_compose()
    check_monitoring(svc)
    if failures:
        for f in failures:
            print(f"FAIL {f}")
        sys.exit(1)
    print(f"kubernetes: {sum(len(v) for v in docs.values())} manifests OK; monitoring/ matches the rules; "
          "compose.yaml OK")


if __name__ == "__main__":
    main()
