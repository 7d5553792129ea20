#!/usr/bin/env bash
# The demo: a local test cluster with a 3-member etcd StatefulSet laid out like an Anthos user
# cluster; data in, backup, inspect, cluster down.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
export PATH="$PWD/bin:$PATH"
dir=$(mktemp -d /tmp/kubectl-etcd-demo.XXXXXX)
trap 'npm run --silent sim -- down --dir "$dir" >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start the local test cluster (fixture: anthos)"
npm run --silent sim -- up --dir "$dir" --fixture anthos
export KUBECONFIG="$dir/kubeconfig"
kubectl -n uc1 get pods -o wide

step "status"
kubectl etcd status -n uc1 || true
