#!/bin/bash
# Stand-in for the Bitnami etcd image's prestop.sh (bitnami/containers
# bitnami/etcd/3.5/debian-12/rootfs/opt/bitnami/scripts/etcd/prestop.sh): the member's ID is found
# in the cluster's member list by its peer URL, and the member removed by the others; etcdctl's
# answer goes to member_removal.log beside the data dir. ETCD_DISABLE_PRESTOP=yes (in the env the
# running container started with) skips it (the real script then fails on a top-level `return`,
# removing nothing either).
. /opt/bitnami/scripts/libetcd.sh
! is_boolean_yes "$ETCD_DISABLE_PRESTOP" || exit 0
endpoints=$(etcd_endpoints yes)
[[ -n "$endpoints" ]] || exit 0
log="$(dirname "$ETCD_DATA_DIR")/member_removal.log"
etcdctl member remove "$(get_member_id)" --endpoints="$endpoints" --dial-timeout=2s --command-timeout=5s > "$log"
sync "$log" 2>/dev/null || sync
