#!/bin/sh
# Runs ZooKeeper 3.4.6 standalone in the foreground on 127.0.0.1:$ZOO_PORT (2181).
# tickTime 500 allows the short sessions the integration tests use (minimum: two ticks).
set -eu
port=${ZOO_PORT:-2181}
mkdir -p /var/lib/zookeeper
cat > /tmp/zoo.cfg <<CFG
tickTime=500
dataDir=/var/lib/zookeeper
clientPort=$port
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=60000
maxClientCnxns=0
CFG
printf '%s\n' 'log4j.rootLogger=WARN, stderr' 'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
  'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
  'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n' > /tmp/log4j.properties
z=/opt/zookeeper
[ -f $z/zookeeper-3.4.6.jar ] || { echo "no ZooKeeper jars in $z (docker/stack copies ../shared/zookeeper-3.4)" >&2; exit 1; }
exec java -Xmx256m -Dlog4j.configuration=file:/tmp/log4j.properties -Dzookeeper.4lw.commands.whitelist='*' \
  -cp "$z/zookeeper-3.4.6.jar:$z/slf4j-api-1.7.6.jar:$z/slf4j-log4j12-1.7.6.jar:$z/log4j-1.2.17.jar" \
  org.apache.zookeeper.server.ZooKeeperServerMain /tmp/zoo.cfg
