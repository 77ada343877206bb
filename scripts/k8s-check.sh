#!/usr/bin/env bash
# Validates the manifests in k8s/ without a cluster (see scripts/k8s_manifests.py):
#   scripts/k8s-check.sh validate | launchers
# Needs kubectl (Debian kubernetes-client) and python3-venv; the Python
# packages (kubernetes-validate, jsonschema, pyyaml) go into target/k8s-venv,
# installed from PyPI by name on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "kubectl not found: scripts/install-deps.sh --test installs kubernetes-client" >&2; exit 1; }
venv=target/k8s-venv
mkdir -p target
(
  flock 9 # parallel tests share one environment
  if ! "$venv/bin/python" -c "import kubernetes_validate, jsonschema, yaml" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate jsonschema pyyaml >&2
  fi
) 9>target/k8s-venv.lock
exec "$venv/bin/python" scripts/k8s_manifests.py "$@"
