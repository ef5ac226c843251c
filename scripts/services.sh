#!/usr/bin/env bash
# services.sh — start, stop and inspect the real servers regshift is tested
# against: ZooKeeper, Apache Kafka (KRaft), Consul, etcd, Eureka and the Docker engine.
#
#   scripts/services.sh up     [service...]   start (skips what already runs)
#   scripts/services.sh down   [service...]   stop by PID, nothing left running
#   scripts/services.sh status [service...]   one line per service, exit 1 if any is down
#   scripts/services.sh env                   print the REGSHIFT_* variables tests read
#
# Services: zookeeper kafka consul etcd eureka docker (default: all, in that order).
# Everything binds to 127.0.0.1. Ports, data and log folders are set by the
# REGSHIFT_* variables below; `make deps` must have run first.
#
# REGSHIFT_KAFKA_SECURE=1 starts Kafka locked down instead: SASL_SSL with
# SCRAM-SHA-512 on its port (no plaintext listener), certificates of a local
# CA and ACLs through KRaft's StandardAuthorizer (scripts/kafka-secure.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${REGSHIFT_DEPS_DIR:-$ROOT/.deps}"
RUN="${REGSHIFT_RUN_DIR:-$ROOT/.run}"
LOGS="$RUN/logs"
PIDS="$RUN/pids"

ZK_PORT="${REGSHIFT_ZK_PORT:-2181}"
KAFKA_PORT="${REGSHIFT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${REGSHIFT_KAFKA_CONTROLLER_PORT:-9093}"
# Optional SASL_PLAINTEXT listener (PLAIN; user regshift, password in
# REGSHIFT_KAFKA_SASL_PASSWORD) for tests of authenticated clients.
KAFKA_SASL_PORT="${REGSHIFT_KAFKA_SASL_PORT:-}"
KAFKA_SASL_PASSWORD="${REGSHIFT_KAFKA_SASL_PASSWORD:-regshift-secret}"
KAFKA_SECURE="${REGSHIFT_KAFKA_SECURE:-}"
[[ "$KAFKA_SECURE" == 0 ]] && KAFKA_SECURE=
CONSUL_HTTP_PORT="${REGSHIFT_CONSUL_HTTP_PORT:-8500}"
CONSUL_SERVER_PORT="${REGSHIFT_CONSUL_SERVER_PORT:-8300}"
CONSUL_SERF_LAN_PORT="${REGSHIFT_CONSUL_SERF_LAN_PORT:-8301}"
CONSUL_SERF_WAN_PORT="${REGSHIFT_CONSUL_SERF_WAN_PORT:-8302}"
ETCD_PORT="${REGSHIFT_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${REGSHIFT_ETCD_PEER_PORT:-2380}"
EUREKA_PORT="${REGSHIFT_EUREKA_PORT:-8761}"
ZK_DATA="${REGSHIFT_ZK_DATA:-$RUN/data/zookeeper}"
KAFKA_DATA="${REGSHIFT_KAFKA_DATA:-$RUN/data/kafka${KAFKA_SECURE:+-secure}}"
CONSUL_DATA="${REGSHIFT_CONSUL_DATA:-$RUN/data/consul}"
ETCD_DATA="${REGSHIFT_ETCD_DATA:-$RUN/data/etcd}"
START_TIMEOUT="${REGSHIFT_START_TIMEOUT:-90}"
DOCKER_SOCK=/var/run/docker.sock
ALL=(zookeeper kafka consul etcd eureka docker)
# Written by `up` of a locked-down Kafka: the probe logs in with it.
KAFKA_PROBE_CONF="$RUN/conf/kafka-probe.kcat"

# shellcheck source=scripts/kafka-secure.sh
. "$ROOT/scripts/kafka-secure.sh"

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

pidfile() { echo "$PIDS/$1.pid"; }
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
ourpid() { # the PID we started for $1, if that process still runs
  local f; f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 1
  local p; p="$(cat "$f")"
  alive "$p" && echo "$p"
}

port_busy() { [[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]]; }
require_free() { # service port...
  local svc="$1"; shift
  local p
  for p in "$@"; do
    if port_busy "$p"; then
      die "$svc: port 127.0.0.1:$p is already in use ($(ss -ltnpH "sport = :$p" | awk '{print $NF}' | head -1)); stop that process or set another port (see README)"
    fi
  done
}

# start NAME LOGFILE CMD... — runs CMD detached, records its PID.
start_bg() {
  local name="$1" logf="$2"; shift 2
  mkdir -p "$LOGS" "$PIDS"
  setsid "$@" >"$logf" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

fail_start() { # name logfile reason
  local name="$1" logf="$2" why="$3"
  printf '[services] ERROR: %s did not start: %s\n--- last lines of %s ---\n' "$name" "$why" "$logf" >&2
  tail -n 40 "$logf" >&2 || true
  stop_one "$name" >/dev/null 2>&1 || true
  exit 1
}

# wait_ready NAME LOGFILE PROBE-FUNCTION
wait_ready() {
  local name="$1" logf="$2" probe="$3"
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! ourpid "$name" >/dev/null; then
      fail_start "$name" "$logf" "process exited"
    fi
    if "$probe" 2>/dev/null; then
      return 0
    fi
    sleep 0.3
  done
  fail_start "$name" "$logf" "not ready after ${START_TIMEOUT}s"
}

# ---- ZooKeeper -------------------------------------------------------------
zk_probe() { # the four-letter word "ruok" must answer "imok"
  local out
  out="$(exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf 'ruok' >&3 && timeout 2 cat <&3)"
  [[ "$out" == "imok" ]]
}
zk_classpath() {
  if [[ -f "$DEPS/zookeeper/classpath" ]]; then cat "$DEPS/zookeeper/classpath"; return; fi
  echo "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-all.jar"
}
zk_up() {
  [[ -f /usr/share/java/zookeeper.jar ]] || die "zookeeper: /usr/share/java/zookeeper.jar missing; run 'make deps'"
  require_free zookeeper "$ZK_PORT"
  mkdir -p "$ZK_DATA" "$RUN/conf"
  cat >"$RUN/conf/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DATA
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf
maxClientCnxns=0
minSessionTimeout=2000
maxSessionTimeout=60000
autopurge.purgeInterval=1
EOF
  start_bg zookeeper "$LOGS/zookeeper.log" java -Xmx256m \
    -Dzookeeper.log.dir="$LOGS" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$(zk_classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$RUN/conf/zoo.cfg"
  wait_ready zookeeper "$LOGS/zookeeper.log" zk_probe
}

# ---- Kafka (KRaft, broker + controller in one process) ----------------------
kafka_probe() { # a real metadata request: kcat lists the broker
  # grep without -q reads all of kcat's output: with pipefail an early exit
  # could kill kcat with SIGPIPE and read as "not ready".
  local conf=()
  [[ -f "$KAFKA_PROBE_CONF" ]] && conf=(-F "$KAFKA_PROBE_CONF")
  timeout 5 kcat "${conf[@]}" -b "127.0.0.1:$KAFKA_PORT" -L -m 3 2>/dev/null | grep "broker 1 at 127.0.0.1:$KAFKA_PORT" >/dev/null
}
kafka_up() {
  [[ -d "$DEPS/kafka/libs" ]] || die "kafka: $DEPS/kafka/libs missing; run 'make deps'"
  command -v kcat >/dev/null || die "kafka: kcat missing; run 'make deps'"
  require_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" $KAFKA_SASL_PORT
  mkdir -p "$KAFKA_DATA" "$RUN/conf"
  local props="$RUN/conf/kafka.properties"
  if [[ -n "$KAFKA_SECURE" ]]; then
    [[ -z "$KAFKA_SASL_PORT" ]] || die "kafka: REGSHIFT_KAFKA_SASL_PORT (a plaintext SASL listener) and REGSHIFT_KAFKA_SECURE do not go together"
    compgen -G "$DEPS/kafka/libs/kafka-tools-*.jar" >/dev/null || die "kafka: kafka-tools jar missing in $DEPS/kafka/libs; run 'make deps'"
    kafka_secure_material
    cp "$KAFKA_SECURE_DIR/clients/admin.kcat" "$KAFKA_PROBE_CONF"
  else
    rm -f "$KAFKA_PROBE_CONF"
  fi
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$KAFKA_SASL_PORT" ]]; then
    listeners+=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    advertised+=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  (umask 077 && cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DATA
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
EOF
  )
  if [[ -n "$KAFKA_SECURE" ]]; then
    kafka_secure_props "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" >>"$props"
  else
    cat >>"$props" <<EOF
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
EOF
  fi
  if [[ -n "$KAFKA_SASL_PORT" ]]; then
    cat >>"$props" <<EOF
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="regshift" password="$KAFKA_SASL_PASSWORD" user_regshift="$KAFKA_SASL_PASSWORD";
EOF
  fi
  cat >"$RUN/conf/kafka-log4j2.properties" <<'EOF'
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
EOF
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$RUN/conf/kafka-log4j2.properties")
  local scram=()
  if [[ -n "$KAFKA_SECURE" ]]; then
    mapfile -t scram < <(kafka_secure_format_args)
    if [[ -f "$KAFKA_DATA/meta.properties" && ! -f "$KAFKA_DATA/.regshift-secure" ]]; then
      die "kafka: $KAFKA_DATA was formatted without REGSHIFT_KAFKA_SECURE (no SCRAM users): remove it or set REGSHIFT_KAFKA_DATA"
    fi
  fi
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local cid
    # Kafka's own Uuid.randomUuid never begins with '-' (one in 64 would): the
    # format tool would read such an id as an option and fail.
    cid="-"
    while [[ "$cid" == -* ]]; do
      cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    done
    mkdir -p "$LOGS"
    java "${java_opts[@]}" -cp "$DEPS/kafka/libs/*" kafka.tools.StorageTool format \
      -t "$cid" -c "$props" --standalone "${scram[@]}" >"$LOGS/kafka-format.log" 2>&1 ||
      { tail -n 20 "$LOGS/kafka-format.log" >&2; die "kafka: formatting $KAFKA_DATA failed"; }
    [[ -z "$KAFKA_SECURE" ]] || touch "$KAFKA_DATA/.regshift-secure"
  fi
  start_bg kafka "$LOGS/kafka.log" java "${java_opts[@]}" -cp "$DEPS/kafka/libs/*" kafka.Kafka "$props"
  wait_ready kafka "$LOGS/kafka.log" kafka_probe
  if [[ -n "$KAFKA_SECURE" ]]; then
    kafka_secure_acls -Xmx192m -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$RUN/conf/kafka-log4j2.properties" ||
      fail_start kafka "$LOGS/kafka.log" "creating the ACLs failed (logs: $LOGS/kafka-acls-*.log)"
  fi
}

# ---- Consul (dev agent: a single server that elects itself) ---------------
consul_probe() { # a leader is elected
  local leader
  leader="$(curl -fsS --max-time 2 "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/status/leader")"
  [[ -n "$leader" && "$leader" != '""' ]]
}
consul_up() {
  [[ -x "$DEPS/bin/consul" ]] || die "consul: $DEPS/bin/consul missing; run 'make deps'"
  require_free consul "$CONSUL_HTTP_PORT" "$CONSUL_SERVER_PORT" "$CONSUL_SERF_LAN_PORT" "$CONSUL_SERF_WAN_PORT"
  mkdir -p "$CONSUL_DATA"
  start_bg consul "$LOGS/consul.log" "$DEPS/bin/consul" agent -dev -node regshift-dev \
    -bind 127.0.0.1 -client 127.0.0.1 -advertise 127.0.0.1 -data-dir "$CONSUL_DATA" \
    -http-port "$CONSUL_HTTP_PORT" -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -https-port -1 \
    -serf-lan-port "$CONSUL_SERF_LAN_PORT" -serf-wan-port "$CONSUL_SERF_WAN_PORT" \
    -server-port "$CONSUL_SERVER_PORT" -log-level warn
  wait_ready consul "$LOGS/consul.log" consul_probe
}

# ---- etcd (a single member, its own cluster) -------------------------------
etcd_probe() { # /health answers {"health":"true"} once a leader serves reads
  local out
  out="$(curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health")"
  [[ "$out" == *'"health":"true"'* ]]
}
etcd_up() {
  [[ -x "$DEPS/bin/etcd" ]] || die "etcd: $DEPS/bin/etcd missing; run 'make deps'"
  require_free etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
  mkdir -p "$ETCD_DATA"
  chmod 700 "$ETCD_DATA" # etcd refuses a data folder others can read
  # The --initial-* flags only matter on the first start; later starts read
  # the member from the data folder. Revisions older than an hour are
  # compacted, so repeated test runs do not grow the store without bound.
  start_bg etcd "$LOGS/etcd.log" "$DEPS/bin/etcd" --name regshift-dev --data-dir "$ETCD_DATA" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "regshift-dev=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-token regshift-dev \
    --auto-compaction-mode periodic --auto-compaction-retention 1h --log-level warn
  wait_ready etcd "$LOGS/etcd.log" etcd_probe
}

# ---- Eureka (Spring Cloud Netflix Eureka server, standalone) --------------
# tools/eureka's jar (make deps); its settings are in
# tools/eureka/src/main/resources/application.yml. It keeps its registry in
# memory only: a restart starts empty and clients register again.
eureka_probe() { # the registry answers a full fetch as JSON
  curl -fsS --max-time 2 -H 'Accept: application/json' "http://127.0.0.1:$EUREKA_PORT/eureka/apps" | grep '"applications"' >/dev/null
}
eureka_up() {
  local jar="$DEPS/eureka/eureka-server.jar"
  [[ -f "$jar" ]] || die "eureka: $jar missing; run 'make deps'"
  require_free eureka "$EUREKA_PORT"
  start_bg eureka "$LOGS/eureka.log" java -Xms64m -Xmx384m -XX:+UseSerialGC -Djava.awt.headless=true \
    -jar "$jar" --server.address=127.0.0.1 --server.port="$EUREKA_PORT"
  wait_ready eureka "$LOGS/eureka.log" eureka_probe
}

# ---- Docker engine ---------------------------------------------------------
docker_probe() { docker info >/dev/null 2>&1; }
docker_up() {
  command -v dockerd >/dev/null || die "docker: dockerd missing; run 'make deps'"
  if [[ -S "$DOCKER_SOCK" ]] && docker_probe; then
    return 0 # an engine already answers; not ours to stop
  fi
  rm -f /var/run/docker.pid
  # dockerd's defaults (a bridge it makes itself): testcontainers-go needs one
  # even though every container of ours runs with host networking.
  start_bg docker "$LOGS/docker.log" dockerd --host "unix://$DOCKER_SOCK"
  wait_ready docker "$LOGS/docker.log" docker_probe
}

# ---- generic ---------------------------------------------------------------
stop_one() {
  local name="$1" p
  if ! p="$(ourpid "$name")"; then
    rm -f "$(pidfile "$name")"
    log "$name: not running (nothing of ours to stop)"
    return 0
  fi
  kill -TERM "$p" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do
    alive "$p" || break
    sleep 0.2
  done
  if alive "$p"; then
    log "$name: still running after 30s, killing PID $p"
    kill -KILL "$p" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(pidfile "$name")"
  log "$name: stopped (PID $p)"
}

up_one() {
  local name="$1" p
  if p="$(ourpid "$name")"; then
    log "$name: already running (PID $p), skipped"
    return 0
  fi
  local t0=$SECONDS
  "${name/zookeeper/zk}_up"
  if p="$(ourpid "$name")"; then
    log "$name: ready in $((SECONDS - t0))s (PID $p, log $LOGS/$name.log)"
  else
    log "$name: an engine not started by us already answers, left as it is"
  fi
}

status_one() {
  local name="$1" p probe="${1/zookeeper/zk}_probe"
  if p="$(ourpid "$name")"; then
    if "$probe" 2>/dev/null; then log "$name: up (PID $p)"; else log "$name: PID $p runs but does not answer"; return 1; fi
  elif [[ "$name" == docker ]] && docker_probe; then
    log "docker: up (not started by us)"
  else
    log "$name: down"; return 1
  fi
}

print_env() {
  if [[ -n "$KAFKA_SECURE" ]]; then
    cat <<EOF
REGSHIFT_KAFKA_SECURE=1
REGSHIFT_KAFKA_CA_FILE=$KAFKA_SECURE_DIR/tls/ca.pem
REGSHIFT_KAFKA_CLIENTS=$KAFKA_SECURE_DIR/clients
EOF
  fi
  cat <<EOF
REGSHIFT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
REGSHIFT_ZK_SERVERS=127.0.0.1:$ZK_PORT
REGSHIFT_CONSUL_ADDR=127.0.0.1:$CONSUL_HTTP_PORT
REGSHIFT_ETCD_ENDPOINTS=127.0.0.1:$ETCD_PORT
REGSHIFT_EUREKA_ADDR=127.0.0.1:$EUREKA_PORT
REGSHIFT_DOCKER_HOST=unix://$DOCKER_SOCK
EOF
}

check_services() {
  local s
  for s in "$@"; do
    case "$s" in zookeeper | kafka | consul | etcd | eureka | docker) ;; *) die "unknown service '$s' (known: ${ALL[*]})" ;; esac
  done
}

main() {
  local cmd="${1:-}"
  shift || true
  local svcs=("$@")
  ((${#svcs[@]})) || svcs=("${ALL[@]}")
  check_services "${svcs[@]}"
  case "$cmd" in
  up)
    local s
    for s in "${svcs[@]}"; do up_one "$s"; done
    mkdir -p "$RUN"
    print_env >"$RUN/services.env"
    ;;
  down)
    local i
    for ((i = ${#svcs[@]} - 1; i >= 0; i--)); do stop_one "${svcs[i]}"; done
    ;;
  status)
    local s rc=0
    for s in "${svcs[@]}"; do status_one "$s" || rc=1; done
    return $rc
    ;;
  env) print_env ;;
  *) die "usage: $0 up|down|status|env [zookeeper kafka consul etcd eureka docker]" ;;
  esac
}

main "$@"
