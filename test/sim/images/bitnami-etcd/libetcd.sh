#!/bin/bash
# Stand-in for the Bitnami etcd image's libetcd.sh, legacy generation (bitnami/containers
# bitnami/etcd/3.4/debian-11/rootfs/opt/bitnami/scripts/libetcd.sh, which the fixture's image tag
# 3.4.23-debian-11-r0 runs), written from what those scripts do, not copied from them. Only the
# parts that decide over a member's data are modelled:
#  - the member ID is kept in the file $ETCD_DATA_DIR/member_id;
#  - preStop removes the member from the cluster and writes etcdctl's answer to
#    $ETCD_VOLUME_DIR/member_removal.log (the parent of the data dir, the volume root);
#  - at start, with data from before and a healthy rest of the cluster, a member whose removal
#    log says it was removed wipes $ETCD_DATA_DIR/* and joins again with `member add`; one with a
#    stored member ID runs `member update ID` (an ID the cluster does not know fails the start);
#  - with data from before and no healthy quorum among the others, ETCD_DISASTER_RECOVERY=yes
#    replaces the data with the newest /snapshots/db-* (and tells the other members to do the
#    same through /snapshots/.disaster_recovery), and with no snapshot there the start fails
#    ("There was no snapshot to restore!", exit 1); otherwise the data is kept.
# Differences: endpoints come from ETCD_INITIAL_CLUSTER (the real scripts count the IPs behind
# the headless Service's DNS name); no RBAC or TLS set-up; logs are shorter; the short-lived etcd
# that stores the member ID serves clients on 127.0.0.1:12379 only, so the fixture's quick readiness
# probe (the chart's waits 60 s) sees the member only once run.sh's etcd runs.
set -o errexit -o nounset -o pipefail

# Hard-coded in the real etcd-env.sh: whatever ETCD_DATA_DIR the pod sets is overwritten.
export ETCD_VOLUME_DIR=/bitnami/etcd
export ETCD_DATA_DIR=$ETCD_VOLUME_DIR/data
export ETCD_NEW_MEMBERS_ENV_FILE=$ETCD_DATA_DIR/new_member_envs
export ETCD_SNAPSHOTS_DIR=${ETCD_SNAPSHOTS_DIR:-/snapshots}
export ETCD_DISASTER_RECOVERY=${ETCD_DISASTER_RECOVERY:-no}
export ETCDCTL_API=3

info() { echo "etcd $(date +%H:%M:%S.%2N) INFO  ==> $*" >&2; }
warn() { echo "etcd $(date +%H:%M:%S.%2N) WARN  ==> $*" >&2; }
error() { echo "etcd $(date +%H:%M:%S.%2N) ERROR ==> $*" >&2; }

# A setting is on as the image's libvalidations.sh reads it: 1, or yes or true in any case.
is_boolean_yes() { local v=${1:-}; [[ "$v" == 1 || "${v,,}" == yes || "${v,,}" == true ]]; }

# Client URLs of the members (all, or only the others), from the initial cluster.
etcd_endpoints() {
  local only_others=${1:-no} entry name url host out=""
  for entry in ${ETCD_INITIAL_CLUSTER//,/ }; do
    name=${entry%%=*}
    url=${entry#*=}
    [[ "$only_others" == yes && "$name" == "$ETCD_NAME" ]] && continue
    host=${url#*://}
    host=${host%%:*}
    out+="${out:+,}http://${host}:2379"
  done
  echo "$out"
}

cluster_size() { local e; e=(${ETCD_INITIAL_CLUSTER//,/ }); echo "${#e[@]}"; }

# The rest of the cluster answers with a quorum: (size+1)/2 of the other members healthy.
# With ETCD_DISASTER_RECOVERY=yes the answer also goes through $ETCD_SNAPSHOTS_DIR/.disaster_recovery,
# the members still to recover (the real is_healthy_etcd_cluster): the first member to find no
# quorum lists the others there; while the list exists every starting member counts the cluster
# as down (so it restores the newest snapshot too), strikes itself and members no longer in the
# cluster off, and the last one deletes it.
is_healthy_etcd_cluster() {
  local size healthy=0 ep marker=$ETCD_SNAPSHOTS_DIR/.disaster_recovery
  size=$(cluster_size)
  if is_boolean_yes "$ETCD_DISASTER_RECOVERY" && [[ -f "$marker" ]]; then
    grep -v -x -F -e "$(own_endpoint)" "$marker" | grep -x -F -f <(etcd_endpoints | tr ',' '\n') > "$marker.tmp" || true
    if [[ -s "$marker.tmp" ]]; then mv -f "$marker.tmp" "$marker"; else rm -f "$marker" "$marker.tmp"; fi
    return 1
  fi
  for ep in $(etcd_endpoints yes | tr ',' ' '); do
    if etcdctl endpoint health --endpoints="$ep" >/dev/null 2>&1; then healthy=$((healthy + 1)); fi
  done
  [[ $healthy -ge $(((size + 1) / 2)) ]] && return 0
  if is_boolean_yes "$ETCD_DISASTER_RECOVERY"; then etcd_endpoints yes | tr ',' '\n' > "$marker" 2>/dev/null || true; fi
  return 1
}

# This member's client URL, as etcd_endpoints writes it.
own_endpoint() {
  local ep
  for ep in $(etcd_endpoints | tr ',' ' '); do
    [[ ",$(etcd_endpoints yes)," == *",$ep,"* ]] || { echo "$ep"; return; }
  done
}

get_member_id() { [[ -s "$ETCD_DATA_DIR/member_id" ]] && cat "$ETCD_DATA_DIR/member_id" || true; }

was_etcd_member_removed() {
  local id log=$ETCD_VOLUME_DIR/member_removal.log ret=1
  id=$(get_member_id)
  if [[ -n "$id" && -f "$log" ]] && grep -Eq "^Member[[:space:]]+${id}[[:space:]]+removed[[:space:]]+from[[:space:]]+cluster[[:space:]]+[A-Fa-f0-9]+$" "$log"; then
    ret=0
  elif [[ ! -d "$ETCD_DATA_DIR/member/snap" && -z "$id" ]]; then
    ret=0
  fi
  rm -f "$log"
  return $ret
}

is_data_dir_empty() { [[ -z "$(ls -A "$ETCD_DATA_DIR" 2>/dev/null | grep -v '^lost+found$' || true)" ]]; }

# Stores the member's ID in $ETCD_DATA_DIR/member_id, as the legacy etcd_store_member_id does:
# etcd is started in the background until the member list names this member, then stopped.
store_member_id() {
  local pid line
  ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379 ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:12379 etcd >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    sleep 1
    line=$(etcdctl member list --endpoints=http://127.0.0.1:12379 --dial-timeout=2s 2>/dev/null | grep ", ${ETCD_NAME}, " || true)
    if [[ -n "$line" ]]; then
      echo "${line%%,*}" > "$ETCD_DATA_DIR/member_id"
      info "Stored member ID ${line%%,*}"
      break
    fi
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
