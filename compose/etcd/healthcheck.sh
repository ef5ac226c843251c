#!/bin/bash
# Healthy once etcd's /health on 127.0.0.1:${ETCD_PORT:-2379} answers
# {"health":"true"}: a leader serves reads.
set -euo pipefail
exec 3<>"/dev/tcp/127.0.0.1/${ETCD_PORT:-2379}"
printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
grep '"health":"true"' <&3 >/dev/null
