#!/bin/bash
# Stand-in for the Bitnami etcd image's prestop.sh: the member removes itself from the cluster
# and keeps etcdctl's answer beside the data dir, where setup.sh reads it at the next start.
. /opt/bitnami/scripts/libetcd.sh
endpoints=$(etcd_endpoints yes)
[[ -n "$endpoints" ]] || exit 0
etcdctl member remove "$(get_member_id)" --endpoints="$endpoints" --dial-timeout=2s --command-timeout=5s > "$ETCD_VOLUME_DIR/member_removal.log"
sync "$ETCD_VOLUME_DIR/member_removal.log" 2>/dev/null || sync
