#!/bin/sh
# Writes deploy/kubernetes/monitoring/prometheusrule.yaml from archmerge-rules.yml:
# the same groups, comments and layout, under a PrometheusRule's spec.
# deploy/verify.py fails when the two differ; run this after editing the rules.
set -eu
cd "$(dirname "$0")/../.."
out=deploy/kubernetes/monitoring/prometheusrule.yaml
{
	cat <<'HEAD'
# The rules of deploy/prometheus/archmerge-rules.yml for the Prometheus Operator.
# Made by deploy/prometheus/prometheusrule.sh; edit the rules file, not this one.
# The release label must match your Prometheus' ruleSelector.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: archmerge
  labels:
    app.kubernetes.io/name: archmerge
    release: prometheus
spec:
HEAD
	sed -n '/^groups:/,$p' deploy/prometheus/archmerge-rules.yml | sed 's/^/  /; s/^  *$//'
} >"$out.tmp"
mv "$out.tmp" "$out"
