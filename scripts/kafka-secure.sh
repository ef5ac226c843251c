# kafka-secure.sh — the locked-down Kafka of `REGSHIFT_KAFKA_SECURE=1 make up`,
# sourced by scripts/services.sh, by compose/up.sh (the compose stack's
# certificates, passwords and client settings) and by the compose Kafka
# image's entrypoint (broker settings, SCRAM users, ACLs; scripts/images.sh
# copies it in).
#
# What it makes, once, under $KAFKA_SECURE_DIR (default .run/kafka-secure;
# never committed):
#   tls/ca.pem, ca.key           a CA of this machine's own
#   tls/broker.pem, broker.key   the broker's certificate (127.0.0.1, localhost) signed by it
#   tls/broker.keystore.pem      key + chain, Kafka's PEM keystore
#   users/<user>.password        a random SCRAM-SHA-512 password per principal
#   clients/<user>.kafka.yaml    a regshift Kafka config (the -kafka-config / `kafka:` shape)
#   clients/admin.properties     Java client settings of the super user (kafka-acls.sh, ...)
#   clients/admin.kcat           the same for kcat -F
# Principals: admin (super user: the broker's own connections, ACL set-up),
# coordinator, agent, operator. What each may do is kafka_secure_acls below.
#
# Needs: openssl, and KAFKA_PORT, DEPS, RUN from the caller.

KAFKA_SECURE_DIR="${REGSHIFT_KAFKA_SECURE_DIR:-$RUN/kafka-secure}"
# The topics the ACLs name: <prefix>commands, events, requests, state, dlq.
KAFKA_TOPIC_PREFIX="${REGSHIFT_KAFKA_TOPIC_PREFIX:-regshift.}"
KAFKA_SECURE_USERS=(admin coordinator agent operator)

kafka_secure_password() { cat "$KAFKA_SECURE_DIR/users/$1.password"; }

# kafka_secure_material makes what is missing: CA, broker certificate,
# passwords, client settings. Present files are kept, so clients keep
# trusting the CA and knowing their passwords across restarts.
kafka_secure_material() {
  command -v openssl >/dev/null || die "kafka: openssl missing; run 'make deps'"
  local tls="$KAFKA_SECURE_DIR/tls" users="$KAFKA_SECURE_DIR/users" clients="$KAFKA_SECURE_DIR/clients"
  mkdir -p "$tls" "$users" "$clients"
  chmod 700 "$KAFKA_SECURE_DIR" "$tls" "$users"
  if [[ ! -f "$tls/ca.pem" ]]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 3650 \
      -subj "/CN=regshift local Kafka CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
      die "kafka: openssl could not make the CA"
    rm -f "$tls/broker.pem"
  fi
  if [[ ! -f "$tls/broker.pem" ]]; then
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=localhost" \
      -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null || die "kafka: openssl could not make the broker key"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" >"$tls/broker.ext"
    openssl x509 -req -sha256 -days 825 -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$tls/broker.ext" -out "$tls/broker.pem" 2>/dev/null ||
      die "kafka: openssl could not sign the broker certificate"
    cat "$tls/broker.key" "$tls/broker.pem" "$tls/ca.pem" >"$tls/broker.keystore.pem"
    rm -f "$tls/broker.csr" "$tls/broker.ext"
  fi
  chmod 600 "$tls"/*.key "$tls/broker.keystore.pem"
  local u
  for u in "${KAFKA_SECURE_USERS[@]}"; do
    if [[ ! -s "$users/$u.password" ]]; then
      (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$users/$u.password")
    fi
    cat >"$clients/$u.kafka.yaml" <<EOF
# The $u principal on the locked-down broker (scripts/kafka-secure.sh).
brokers: [127.0.0.1:$KAFKA_PORT]
topicPrefix: $KAFKA_TOPIC_PREFIX
tls: {caFile: $tls/ca.pem}
sasl: {mechanism: scram-sha-512, username: $u, passwordFile: $users/$u.password}
EOF
  done
  (
    umask 077
    kafka_secure_admin_properties >"$clients/admin.properties"
    cat >"$clients/admin.kcat" <<EOF
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username=admin
sasl.password=$(kafka_secure_password admin)
ssl.ca.location=$tls/ca.pem
EOF
  )
}

# kafka_secure_admin_properties: the Java client settings of admin, for
# AclCommand (clients/admin.properties; the compose broker writes its own
# copy, naming the CA where its container sees it).
kafka_secure_admin_properties() {
  cat <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(kafka_secure_password admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_SECURE_DIR/tls/ca.pem
EOF
}

# kafka_secure_format_args: the SCRAM users the storage is formatted with
# (KRaft keeps them in its metadata log; the broker needs admin's at start).
kafka_secure_format_args() {
  local u
  for u in "${KAFKA_SECURE_USERS[@]}"; do
    printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$u" "$(kafka_secure_password "$u")"
  done
}

# kafka_secure_props: the broker settings. One client listener, SASL_SSL
# with SCRAM-SHA-512, also the broker's own; the controller listener takes
# only admin (SASL_SSL, PLAIN: SCRAM users live in the metadata the
# controller serves, so it cannot use them). No plaintext listener at all.
# The client listener also takes PLAIN, for admin alone (no other user has
# a PLAIN password): the readiness probe's kcat (librdkafka 2.0.2, Debian
# 12) fails SCRAM against this broker where Kafka's and Go's clients pass.
kafka_secure_props() { # port controller-port
  local tls="$KAFKA_SECURE_DIR/tls" pw
  pw="$(kafka_secure_password admin)"
  cat <<EOF
listeners=SASL_SSL://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=SASL_SSL://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.endpoint.identification.algorithm=https
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$pw";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="$pw";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$pw" user_admin="$pw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
EOF
}

# kafka_secure_acls lets each role do what regshift needs and nothing else:
#   coordinator  writes commands, state, dlq; reads events, requests, state;
#                creates the five topics and reads their configs; its
#                consumer groups are <prefix>coordinator*
#   agent        writes events and dlq (commands it refuses); reads commands
#   operator     writes requests
# Everyone else (no SASL login, another user) may do nothing. Each line is
# one kafka-acls.sh run (a JVM: they run side by side) as admin, with the
# settings of KAFKA_SECURE_ADMIN_CONFIG (default clients/admin.properties);
# a stamp in the data folder skips them when the same set is already in place.
kafka_secure_acls() { # java options...
  local p="$KAFKA_TOPIC_PREFIX"
  local all="--topic ${p}commands --topic ${p}events --topic ${p}requests --topic ${p}state --topic ${p}dlq"
  local -a runs=(
    "coordinator|Write|--topic ${p}commands --topic ${p}state --topic ${p}dlq"
    "coordinator|Read|--topic ${p}events --topic ${p}requests --topic ${p}state"
    "coordinator|Create DescribeConfigs|$all"
    "coordinator|Read|--resource-pattern-type prefixed --group ${p}coordinator"
    "agent|Write|--topic ${p}events --topic ${p}dlq"
    "agent|Read|--topic ${p}commands"
    "operator|Write|--topic ${p}requests"
  )
  local stamp="$KAFKA_DATA/.regshift-acls" want
  want="$(printf '%s\n' "${runs[@]}" | sha256sum | cut -c1-16)"
  if [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  local i user ops res op pids=() args
  for i in "${!runs[@]}"; do
    IFS='|' read -r user ops res <<<"${runs[i]}"
    args=(--bootstrap-server "127.0.0.1:$KAFKA_PORT" --command-config "${KAFKA_SECURE_ADMIN_CONFIG:-$KAFKA_SECURE_DIR/clients/admin.properties}"
      --add --allow-principal "User:$user" --allow-host '*')
    for op in $ops; do args+=(--operation "$op"); done
    # shellcheck disable=SC2206 # the resource list is words on purpose
    args+=($res)
    java "$@" -cp "$DEPS/kafka/libs/*" org.apache.kafka.tools.AclCommand "${args[@]}" >"$LOGS/kafka-acls-$i.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || { failed=1; tail -n 20 "$LOGS/kafka-acls-$i.log" >&2; }
  done
  ((failed == 0)) || return 1
  printf '%s' "$want" >"$stamp"
}
