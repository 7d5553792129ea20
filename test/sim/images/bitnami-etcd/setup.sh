#!/bin/bash
# Stand-in for the Bitnami etcd image's setup (etcd_initialize of the legacy libetcd.sh); see libetcd.sh.
. /opt/bitnami/scripts/libetcd.sh
mkdir -p "$ETCD_DATA_DIR"
size=$(cluster_size)
if is_data_dir_empty; then
  info "There is no data from previous deployments"
  store_member_id
  exit 0
fi
info "Detected data from previous deployments"
[[ $size -gt 1 ]] || exit 0
if ! is_healthy_etcd_cluster; then
  warn "Cluster not responding!"
  if is_boolean_yes "$ETCD_DISASTER_RECOVERY"; then
    latest=$(find "$ETCD_SNAPSHOTS_DIR" -maxdepth 1 -type f -name 'db-*' 2>/dev/null | sort | tail -n 1)
    # As the real etcd_initialize: no snapshot to restore fails the start (the container exits 1).
    [[ -n "$latest" ]] || { error "There was no snapshot to restore!"; exit 1; }
    info "Cluster not responding: restoring the newest snapshot $latest over the data dir"
    rm -rf "$ETCD_DATA_DIR"
    etcdctl snapshot restore "$latest" --name "$ETCD_NAME" --data-dir "$ETCD_DATA_DIR" \
      --initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-token "$ETCD_INITIAL_CLUSTER_TOKEN" \
      --initial-advertise-peer-urls "$ETCD_INITIAL_ADVERTISE_PEER_URLS" >&2
    exit 0
  fi
  warn "Disaster recovery is disabled, the cluster will try to recover on its own"
  exit 0
fi
if was_etcd_member_removed; then
  info "The member was removed from the cluster: adding it again"
  rm -rf "${ETCD_DATA_DIR:?}"/*
  out=$(etcdctl member add "$ETCD_NAME" --peer-urls="$ETCD_INITIAL_ADVERTISE_PEER_URLS" --endpoints="$(etcd_endpoints yes)")
  echo "$out" | grep '^ETCD_' | sed 's/^/export /' > "$ETCD_NEW_MEMBERS_ENV_FILE"
  echo 'export ETCD_INITIAL_CLUSTER_STATE=existing' >> "$ETCD_NEW_MEMBERS_ENV_FILE"
  # shellcheck disable=SC1090
  . "$ETCD_NEW_MEMBERS_ENV_FILE"
  store_member_id
  exit 0
fi
id=$(get_member_id)
if [[ -n "$id" ]]; then
  info "Updating the member $id"
  etcdctl member update "$id" --peer-urls="$ETCD_INITIAL_ADVERTISE_PEER_URLS" --endpoints="$(etcd_endpoints yes)" >&2
else
  warn "Member ID wasn't properly stored, the member will try to join the cluster by its own"
fi
