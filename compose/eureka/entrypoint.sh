#!/bin/sh
# Runs the standalone Eureka server on 127.0.0.1:${EUREKA_PORT:-8761}, its
# REST API under /eureka; settings are those of tools/eureka's
# application.yml. EUREKA_JAVA_OPTS replaces the JVM options.
set -eu
# shellcheck disable=SC2086 # the options are a list
exec java ${EUREKA_JAVA_OPTS:--Xms64m -Xmx384m -XX:+UseSerialGC} -Djava.awt.headless=true \
  -jar /opt/eureka/eureka-server.jar --server.address=127.0.0.1 --server.port="${EUREKA_PORT:-8761}"
