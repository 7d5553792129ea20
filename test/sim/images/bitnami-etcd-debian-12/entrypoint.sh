#!/bin/bash
# Stand-in for the Bitnami etcd image's entrypoint (bitnami/etcd/3.5/debian-12/.../etcd/entrypoint.sh): setup, then the command (run.sh).
set -o errexit
/opt/bitnami/scripts/etcd/setup.sh
exec "$@"
