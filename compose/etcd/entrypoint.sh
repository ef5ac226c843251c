#!/bin/sh
# Runs a single-member etcd on 127.0.0.1, data in /data. Ports (defaults in
# brackets): ETCD_PORT [2379] (clients), ETCD_PEER_PORT [2380]; ETCD_NAME
# [regshift-etcd]; ETCD_LOG_LEVEL [info].
set -eu
mkdir -p /data
chmod 700 /data # etcd refuses a data folder others can read
name="${ETCD_NAME:-regshift-etcd}"
client="http://127.0.0.1:${ETCD_PORT:-2379}"
peer="http://127.0.0.1:${ETCD_PEER_PORT:-2380}"
exec etcd --name "$name" --data-dir /data \
  --listen-client-urls "$client" --advertise-client-urls "$client" \
  --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
  --initial-cluster "$name=$peer" --initial-cluster-token "$name" \
  --auto-compaction-mode periodic --auto-compaction-retention 1h \
  --log-level "${ETCD_LOG_LEVEL:-info}"
