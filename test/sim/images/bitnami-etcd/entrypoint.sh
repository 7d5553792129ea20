#!/bin/bash
# Stand-in for the Bitnami etcd image's entrypoint: setup, then the command (run.sh).
set -o errexit
/opt/bitnami/scripts/etcd/setup.sh
exec "$@"
