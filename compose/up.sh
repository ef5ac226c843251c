#!/usr/bin/env bash
# Writes what the compose stack mounts (configs, the coordinator's key pair,
# each agent's node key pair, the operator's key and roles, the locked-down
# Kafka's CA, certificate and passwords, the Consul interface package, a
# rollout plan) into REGSHIFT_COMPOSE_DIR, starts compose/docker-compose.yml
# and waits until the coordinator leads and every agent answers. With
# --rollout it then migrates the sample fleet from ZooKeeper to Consul with a
# signed request over SASL_SSL and waits for the rollout to finalize.
#
# Usage: compose/up.sh [--rollout]      (make compose-up runs it without)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${REGSHIFT_COMPOSE_DIR:-${REGSHIFT_RUN_DIR:-$ROOT/.run}/compose}"
COMPOSE="${COMPOSE:-docker-compose}"
export REGSHIFT_COMPOSE_DIR="$DIR"
KAFKA_PORT="${COMPOSE_KAFKA_PORT:-19092}"
ZK_PORT="${COMPOSE_ZK_PORT:-12181}"
CONSUL_PORT="${COMPOSE_CONSUL_HTTP_PORT:-18500}"
ETCD_PORT="${COMPOSE_ETCD_PORT:-12379}"
COORD_PORT="${COMPOSE_COORDINATOR_PORT:-17080}"
AGENT_PORT0="${COMPOSE_AGENT_PORT_BASE:-17100}"  # agent APIs: +1..+4
SERVICE_PORT0="${COMPOSE_SERVICE_PORT_BASE:-18080}" # provider service ports: +1, +2

say() { printf 'compose: %s\n' "$*"; }
die() { printf 'compose: %s\n' "$*" >&2; exit 1; }

# Kafka's material (CA, broker certificate, SCRAM passwords, client
# settings) is scripts/kafka-secure.sh's, kept in $DIR/kafka-secure for this
# stack alone (its port differs from make up's).
RUN="$DIR" REGSHIFT_KAFKA_SECURE_DIR="$DIR/kafka-secure"
# shellcheck source=scripts/kafka-secure.sh
. "$ROOT/scripts/kafka-secure.sh"
OPERATOR_KAFKA="$KAFKA_SECURE_DIR/clients/operator.kafka.yaml"

command -v "$COMPOSE" >/dev/null || die "$COMPOSE missing: run 'make images' (installs it) or set COMPOSE"
mkdir -p "$DIR"/{conf,keys,secrets,nodes,identity,operators,packages,pkg-consul}
BIN="$DIR/regshift"
(cd "$ROOT" && go build -o "$BIN" ./cmd/regshift)

if [[ ! -f "$DIR/secrets/coordinator.key" ]]; then
  "$BIN" keys generate -id coordinator -out "$DIR/secrets" >/dev/null
fi
cp "$DIR/secrets/coordinator.pub" "$DIR/keys/coordinator.pub"
# Enrol each agent's node: its key pair in identity/<node>/ (mounted into
# that agent only), its public key in nodes/, which the coordinator trusts.
for node in p1 p2 c1 c2; do
  if [[ ! -f "$DIR/identity/$node/$node.key" ]]; then
    "$BIN" keys generate -id "$node" -out "$DIR/identity/$node" >/dev/null
  fi
  cp "$DIR/identity/$node/$node.pub" "$DIR/nodes/$node.pub"
done
# The operator signs requests: an admin (create, abort, finalize) in the
# keyring the coordinator trusts (operators/). Its private key stays on the
# host (operator/, mounted nowhere). Nothing unsigned is accepted.
if [[ ! -f "$DIR/operator/operator.key" ]]; then
  "$BIN" keys generate -id operator -out "$DIR/operator" >/dev/null
fi
cp "$DIR/operator/operator.pub" "$DIR/operators/operator.pub"
echo "operator admin" >"$DIR/operators/roles"

# Kafka: what the broker mounts stays in kafka-secure/; the coordinator and
# the agents each get the CA and their own principal's password.
kafka_secure_material
for user in coordinator agent; do
  mkdir -p "$DIR/kafka/$user"
  chmod 700 "$DIR/kafka/$user"
  cp "$KAFKA_SECURE_DIR/tls/ca.pem" "$DIR/kafka/$user/ca.pem"
  (umask 077 && cp "$KAFKA_SECURE_DIR/users/$user.password" "$DIR/kafka/$user/$user.password")
done
kafka_section() { # kafka_section USER: tls and sasl as the container sees them
  printf 'tls: {caFile: /etc/regshift/kafka/ca.pem}\nsasl: {mechanism: scram-sha-512, username: %s, passwordFile: /etc/regshift/kafka/%s.password}' "$1" "$1"
}

cat >"$DIR/pkg-consul/manifest.yaml" <<YAML
apiVersion: regshift.io/v1
kind: InterfacePackage
interface: consul
type: consul
version: "1.14"
settings:
  address: 127.0.0.1:$CONSUL_PORT
  options: {checkTTL: 5s}
YAML
DIGEST="$("$BIN" package build -f "$DIR/pkg-consul/manifest.yaml" -o "$DIR/packages/consul.tgz" | grep -o 'sha256:[0-9a-f]*' | head -n1)"
[[ -n "$DIGEST" ]] || die "package build printed no digest"

cat >"$DIR/conf/coordinator.yaml" <<YAML
id: coordinator-1
brokers: [127.0.0.1:$KAFKA_PORT]
topicPrefix: $KAFKA_TOPIC_PREFIX
signingKey: /etc/regshift/secrets/coordinator.key
operatorKeysDir: /etc/regshift/operators
nodeKeysDir: /etc/regshift/nodes
kafka:
$(kafka_section coordinator | sed 's/^/  /')
listen: 127.0.0.1:$COORD_PORT
packagesDir: /var/lib/regshift/packages
tick: 200ms
registryEvery: 1s
YAML

agent() { # agent NODE ROLE N
  local node="$1" role="$2" n="$3" svc=""
  if [[ "$role" == provider ]]; then
    svc="services: [{name: orders, port: $((SERVICE_PORT0 + n))}]"
  else
    svc="consumes: [orders]"
  fi
  cat >"$DIR/conf/agent-$node.yaml" <<YAML
node: $node
role: $role
stateDir: /var/lib/regshift-agent
startInterface: {name: zookeeper, type: zookeeper, address: "127.0.0.1:$ZK_PORT", basePath: /services}
$svc
kafka:
  brokers: [127.0.0.1:$KAFKA_PORT]
  topicPrefix: $KAFKA_TOPIC_PREFIX
$(kafka_section agent | sed 's/^/  /')
trust: {keysDir: /etc/regshift/keys}
identity: {signingKey: /etc/regshift/identity/$node.key}
api: {listen: "127.0.0.1:$((AGENT_PORT0 + n))"}
healthInterval: 1s
YAML
}
agent p1 provider 1
agent p2 provider 2
agent c1 consumer 3
agent c2 consumer 4

cat >"$DIR/plan.yaml" <<YAML
# The sample fleet, ZooKeeper -> Consul, finalized automatically.
from:
  name: zookeeper
  kind: zookeeper
  address: 127.0.0.1:$ZK_PORT/services
  package: {url: "file:///unused/zookeeper.tgz", digest: "sha256:$(printf '%064d' 0)"}
to:
  name: consul
  kind: consul
  address: 127.0.0.1:$CONSUL_PORT
  package: {url: "http://127.0.0.1:$COORD_PORT/packages/consul.tgz", digest: "$DIGEST"}
nodes:
  - {node_id: p1, roles: [provider]}
  - {node_id: p2, roles: [provider]}
  - {node_id: c1, roles: [consumer]}
  - {node_id: c2, roles: [consumer]}
waves: {canary: 1, percentages: [100], max_in_flight: 2}
gates: {ack_timeout_seconds: 30, soak_seconds: 3, min_healthy_ratio: 1.0, min_parity: 0.99, failure_budget: 0, on_failure: switch-back}
finalize: automatic
YAML

say "starting the stack (configs in $DIR)"
"$COMPOSE" -f "$ROOT/compose/docker-compose.yml" -p regshift up -d

wait_http() { # wait_http URL WHAT
  local i
  for ((i = 0; i < 180; i++)); do
    curl -fsS --max-time 2 "$1" >/dev/null 2>&1 && return 0
    sleep 1
  done
  "$COMPOSE" -f "$ROOT/compose/docker-compose.yml" -p regshift logs --tail 30 >&2 || true
  die "$2 does not answer at $1"
}
wait_http "http://127.0.0.1:$COORD_PORT/healthz" coordinator
for n in 1 2 3 4; do wait_http "http://127.0.0.1:$((AGENT_PORT0 + n))/v1/status" "agent $n"; done
say "up: coordinator http://127.0.0.1:$COORD_PORT, Kafka 127.0.0.1:$KAFKA_PORT (SASL_SSL), ZooKeeper 127.0.0.1:$ZK_PORT, Consul http://127.0.0.1:$CONSUL_PORT, etcd 127.0.0.1:$ETCD_PORT"
say "roll out: $BIN rollout create -f $DIR/plan.yaml -id ro-1 -key $DIR/operator/operator.key -kafka-config $OPERATOR_KAFKA"
say "watch:    $BIN rollout status -id ro-1 -api http://127.0.0.1:$COORD_PORT -watch"

[[ "${1:-}" == --rollout ]] || exit 0
ID="ro-compose-$(date +%s)"
"$BIN" rollout create -f "$DIR/plan.yaml" -id "$ID" -key "$DIR/operator/operator.key" -kafka-config "$OPERATOR_KAFKA"
for ((i = 0; i < 300; i++)); do
  phase="$(curl -fsS --max-time 2 "http://127.0.0.1:$COORD_PORT/v1/rollouts/$ID" 2>/dev/null | grep -o '"phase": *"[a-z-]*"' | head -n1 | grep -o '[a-z-]*"$' | tr -d '"' || true)"
  case "$phase" in
    finalized) say "rollout $ID finalized in ${i}s"; exit 0 ;;
    failed | switched-back) "$BIN" rollout status -id "$ID" -api "http://127.0.0.1:$COORD_PORT" || true; die "rollout $ID ended $phase" ;;
  esac
  sleep 1
done
die "rollout $ID did not finalize within 300s (last phase: ${phase:-none})"
