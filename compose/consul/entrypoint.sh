#!/bin/sh
# Runs a Consul -dev server on 127.0.0.1. Ports (defaults in brackets):
# CONSUL_HTTP_PORT [8500], CONSUL_SERVER_PORT [8300], CONSUL_SERF_LAN_PORT [8301],
# CONSUL_SERF_WAN_PORT [8302]; CONSUL_NODE [regshift-consul].
set -eu
exec consul agent -dev -node "${CONSUL_NODE:-regshift-consul}" \
  -bind 127.0.0.1 -client 127.0.0.1 -advertise 127.0.0.1 -data-dir /data \
  -http-port "${CONSUL_HTTP_PORT:-8500}" -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -https-port -1 \
  -serf-lan-port "${CONSUL_SERF_LAN_PORT:-8301}" -serf-wan-port "${CONSUL_SERF_WAN_PORT:-8302}" \
  -server-port "${CONSUL_SERVER_PORT:-8300}" -log-level "${CONSUL_LOG_LEVEL:-info}"
