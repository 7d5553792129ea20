#!/bin/bash
# Stand-in for the Bitnami etcd image's run.sh (bitnami/etcd/3.5/debian-12/.../etcd/run.sh): the env a re-join wrote, then etcd.
. /opt/bitnami/scripts/libetcd.sh
# shellcheck disable=SC1090
[[ -f "$ETCD_NEW_MEMBERS_ENV_FILE" ]] && . "$ETCD_NEW_MEMBERS_ENV_FILE"
exec etcd
