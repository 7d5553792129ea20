#!/bin/bash
# Stand-in for the Bitnami etcd image's setup (etcd_initialize of bitnami/containers
# bitnami/etcd/3.5/debian-12/rootfs/opt/bitnami/scripts/libetcd.sh); see libetcd.sh here.
. /opt/bitnami/scripts/libetcd.sh
size=$(cluster_size)
if is_data_dir_empty; then
  info "There is no data from previous deployments"
  [[ $size -gt 1 ]] || exit 0
  if ! etcdctl endpoint status --cluster --endpoints="$(etcd_endpoints)" --dial-timeout=2s >/dev/null 2>&1; then
    info "Bootstrapping a new cluster"
    exit 0
  fi
  until is_healthy_etcd_cluster; do warn "Cluster not healthy, not adding self to cluster for now, keeping trying..."; sleep 10; done
  readd_member
  exit 0
fi
info "Detected data from previous deployments"
[[ "$(stat -c %a "$ETCD_DATA_DIR")" == *700 ]] || chmod -R 700 "$ETCD_DATA_DIR" || true
[[ $size -gt 1 ]] || exit 0
if ! is_healthy_etcd_cluster; then
  warn "Cluster not responding!"
  if is_boolean_yes "$ETCD_DISASTER_RECOVERY"; then
    latest=$(find /snapshots/ -maxdepth 1 -type f -name 'db-*' 2>/dev/null | sort | tail -n 1)
    [[ -n "$latest" ]] || { error "There was no snapshot to restore!"; exit 1; }
    info "Restoring etcd cluster from snapshot $latest"
    rm -rf "$ETCD_DATA_DIR"
    etcdctl snapshot restore "$latest" --name "$ETCD_NAME" --data-dir "$ETCD_DATA_DIR" \
      --initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-token "$ETCD_INITIAL_CLUSTER_TOKEN" \
      --initial-advertise-peer-urls "$ETCD_INITIAL_ADVERTISE_PEER_URLS" >&2
  else
    warn "Disaster recovery is disabled, the cluster will try to recover on its own"
  fi
  exit 0
fi
info "Cluster is healthy"
if ! is_member_still_in_cluster; then
  info "Deleting the data dir and adding the member again"
  rm -rf "$ETCD_DATA_DIR"
  readd_member
fi
