#!/bin/sh
# Runs a single-node KRaft Kafka on 127.0.0.1: broker on ${KAFKA_PORT:-9092},
# controller on ${KAFKA_CONTROLLER_PORT:-9093}, data in /data (formatted with
# --standalone on first start, kept across restarts of the container).
set -eu
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
mkdir -p /data /conf
cat >/conf/server.properties <<CFG
process.roles=broker,controller
node.id=${KAFKA_NODE_ID:-1}
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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
OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile=/conf/log4j2.properties"
if [ ! -f /data/meta.properties ]; then
  CID="${KAFKA_CLUSTER_ID:-$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)}"
  # shellcheck disable=SC2086
  java $OPTS -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format -t "$CID" -c /conf/server.properties --standalone
fi
echo "regshift-kafka: starting on 127.0.0.1:$PORT"
# shellcheck disable=SC2086
exec java $OPTS -cp '/opt/kafka/libs/*' kafka.Kafka /conf/server.properties
