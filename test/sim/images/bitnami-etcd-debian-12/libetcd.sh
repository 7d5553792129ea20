#!/bin/bash
# Stand-in for the Bitnami etcd image's libetcd.sh, current generation (bitnami/containers
# bitnami/etcd/3.5/debian-12/rootfs/opt/bitnami/scripts/libetcd.sh and etcd-env.sh, the same in
# bitnami/etcd/3.6/debian-12), which the fixture's image tag 3.5.17-debian-12-r0 runs; written from
# what those scripts do, not copied from them. Only what decides over a member's data is modelled:
#  - no member_id file: a member's ID is looked up in `etcdctl member list` (asked of every member)
#    by its ETCD_INITIAL_ADVERTISE_PEER_URLS, so keeping files aside does not hide it;
#  - preStop (prestop.sh) removes that member and writes etcdctl's answer to member_removal.log in
#    the parent of the data dir; nothing reads that log any more;
#  - at start, with data from before and a healthy rest of the cluster, the script starts etcd
#    in the background and reads its log until it connects to a peer, or says it was removed or
#    its cluster ID does not match (3.6: or logs a fatal error); in every case but the first it
#    deletes the whole data dir (`rm -rf`, the dir itself), removes any member with its peer URL
#    and adds it again (`member add`, env written to data/new_member_envs);
#  - with data and no healthy quorum among the others, ETCD_DISASTER_RECOVERY=yes replaces the
#    data with the newest /snapshots/db-* (none there fails the start: "There was no snapshot to
#    restore!", exit 1); otherwise the data is kept;
#  - with no data and a cluster that answers, a member with its peer URL is removed and the
#    member added again.
# Differences: endpoints come from ETCD_INITIAL_CLUSTER (the real scripts count the IPs behind
# the headless Service's DNS name); no RBAC, TLS or config file; the background etcd serves
# clients on 127.0.0.1:12379 only and logs as zap (etcd 3.4 here; 3.5 logs so by default), and
# its log is read for at most 120 s (the real script waits as long as it takes).
set -o errexit -o nounset -o pipefail

# Hard-coded in the real etcd-env.sh: whatever ETCD_DATA_DIR the pod sets is overwritten.
export ETCD_VOLUME_DIR=/bitnami/etcd
export ETCD_DATA_DIR=$ETCD_VOLUME_DIR/data
export ETCD_NEW_MEMBERS_ENV_FILE=$ETCD_DATA_DIR/new_member_envs
export ETCD_SNAPSHOTS_DIR=/snapshots
export ETCD_DISASTER_RECOVERY=${ETCD_DISASTER_RECOVERY:-no}
export ETCD_DISABLE_PRESTOP=${ETCD_DISABLE_PRESTOP:-no}
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

# The ID the cluster's member list gives this member's peer URL (empty when none answers or none has it).
get_member_id() {
  etcdctl member list --endpoints="$(etcd_endpoints)" --dial-timeout=2s --command-timeout=5s 2>/dev/null \
    | grep -w -F -- "$ETCD_INITIAL_ADVERTISE_PEER_URLS" | cut -d, -f1 || true
}

is_data_dir_empty() { [[ -z "$(ls -A "$ETCD_DATA_DIR" 2>/dev/null | grep -v '^lost+found$' || true)" ]]; }

# etcd started on the data in the background until its log tells whether the cluster still knows it.
is_member_still_in_cluster() {
  local log pid verdict=unknown
  log=$(mktemp)
  ETCD_LOGGER=zap ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379 ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:12379 etcd >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    sleep 0.5
    if grep -Eq 'the member has been permanently removed from the cluster|ignored streaming request; ID mismatch|"error":"cluster ID mismatch"|"level":"fatal"' "$log"; then verdict=gone; break; fi
    if grep -q 'established TCP streaming connection with remote peer' "$log"; then verdict=member; break; fi
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
  if [[ $verdict == gone ]]; then info "The cluster no longer knows this member"; return 1; fi
  info "The member is still part of the cluster"
}

# Removes every member with this member's peer URL, then adds it as a new one.
readd_member() {
  local id out
  id=$(get_member_id)
  if [[ -n "$id" ]]; then
    info "Removing old member $id"
    etcdctl member remove "$id" --endpoints="$(etcd_endpoints)" >&2
  fi
  info "Adding new member to existing cluster"
  mkdir -p "$(dirname "$ETCD_NEW_MEMBERS_ENV_FILE")"
  out=$(etcdctl member add "$ETCD_NAME" --peer-urls="$ETCD_INITIAL_ADVERTISE_PEER_URLS" --endpoints="$(etcd_endpoints yes)")
  echo "$out" | grep '^ETCD_' | sed 's/^/export /' > "$ETCD_NEW_MEMBERS_ENV_FILE"
}
