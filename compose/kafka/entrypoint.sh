#!/bin/bash
# Runs a single-node KRaft Kafka on 127.0.0.1: broker on ${KAFKA_PORT:-9092},
# controller on ${KAFKA_CONTROLLER_PORT:-9093}, data in /data (formatted with
# --standalone on first start, kept across restarts of the container).
#
# Plaintext by default. KAFKA_SECURE=1 locks it down with
# scripts/kafka-secure.sh (copied in as /opt/kafka/kafka-secure.sh): SASL_SSL
# with SCRAM-SHA-512 and ACLs, from the material compose/up.sh made on the
# host and mounted at /secure (tls/ca.pem, tls/broker.keystore.pem, users/).
# Once the ACLs exist it writes /conf/ready, which the compose healthcheck
# waits for; nothing may connect before.
set -euo pipefail
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
OPTS=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile=/conf/log4j2.properties)
mkdir -p /data /conf
rm -f /conf/ready
die() { printf 'regshift-kafka: %s\n' "$*" >&2; exit 1; }
SECURE=
[[ "${KAFKA_SECURE:-}" != 1 ]] || SECURE=1

if [[ -n "$SECURE" ]]; then
  # What kafka-secure.sh reads from its caller.
  KAFKA_PORT="$PORT" DEPS=/opt RUN=/conf LOGS=/conf/logs KAFKA_DATA=/data REGSHIFT_KAFKA_SECURE_DIR=/secure
  KAFKA_SECURE_ADMIN_CONFIG=/conf/admin.properties
  # shellcheck source=../../scripts/kafka-secure.sh
  . /opt/kafka/kafka-secure.sh
  [[ -s /secure/users/admin.password && -s /secure/tls/broker.keystore.pem ]] ||
    die "KAFKA_SECURE=1 needs the material of compose/up.sh mounted at /secure"
  mkdir -p "$LOGS"
  (umask 077 && kafka_secure_admin_properties >"$KAFKA_SECURE_ADMIN_CONFIG")
  if [[ -f /data/meta.properties && ! -f /data/.regshift-secure ]]; then
    die "/data was formatted without KAFKA_SECURE (no SCRAM users): remove the volume (make compose-down)"
  fi
fi

{
  cat <<CFG
process.roles=broker,controller
node.id=${KAFKA_NODE_ID:-1}
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
log.dirs=/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
log.segment.bytes=16777216
CFG
  if [[ -n "$SECURE" ]]; then
    kafka_secure_props "$PORT" "$CPORT"
  else
    cat <<CFG
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
CFG
  fi
} >/conf/server.properties
cat >/conf/log4j2.properties <<'CFG'
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
CFG

if [[ ! -f /data/meta.properties ]]; then
  SCRAM=()
  [[ -z "$SECURE" ]] || mapfile -t SCRAM < <(kafka_secure_format_args)
  # Kafka's own ids never begin with '-': the format tool would read one as an option.
  CID="${KAFKA_CLUSTER_ID:--}"
  while [[ "$CID" == -* ]]; do
    CID="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
  done
  java "${OPTS[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format -t "$CID" -c /conf/server.properties --standalone "${SCRAM[@]}"
  [[ -z "$SECURE" ]] || touch /data/.regshift-secure
fi
echo "regshift-kafka: starting on 127.0.0.1:$PORT${SECURE:+ (SASL_SSL)}"
if [[ -z "$SECURE" ]]; then
  touch /conf/ready
  exec java "${OPTS[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka /conf/server.properties
fi

# Locked down: the broker in the background, the ACLs once it answers, then
# the ready stamp; the broker's exit is the container's.
java "${OPTS[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka /conf/server.properties &
BROKER=$!
trap 'kill -TERM "$BROKER" 2>/dev/null; wait "$BROKER"; exit 143' TERM INT
for ((i = 0; ; i++)); do
  kill -0 "$BROKER" 2>/dev/null || { wait "$BROKER"; exit $?; }
  (</dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  ((i < 600)) || die "the broker does not listen on 127.0.0.1:$PORT after 300s"
  sleep 0.5
done
# AclCommand retries until the broker serves metadata; it exits non-zero if it never does.
kafka_secure_acls -Xmx192m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile=/conf/log4j2.properties ||
  { kill -TERM "$BROKER"; die "creating the ACLs failed"; }
touch /conf/ready
echo "regshift-kafka: ACLs in place, ready"
wait "$BROKER"
