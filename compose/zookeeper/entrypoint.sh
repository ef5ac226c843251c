#!/bin/sh
# Runs a standalone ZooKeeper on 127.0.0.1:${ZK_PORT:-2181}, data in /data.
set -eu
mkdir -p /data /conf
cat >/conf/zoo.cfg <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/data
clientPort=${ZK_PORT:-2181}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf
maxClientCnxns=0
minSessionTimeout=2000
maxSessionTimeout=60000
CFG
echo "regshift-zookeeper: starting on 127.0.0.1:${ZK_PORT:-2181}"
exec java ${ZK_JAVA_OPTS:--Xmx256m} -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
  -cp '/opt/zookeeper/lib/*' org.apache.zookeeper.server.quorum.QuorumPeerMain /conf/zoo.cfg
