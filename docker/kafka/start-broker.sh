#!/bin/sh
# Writes server.properties from the environment and runs the broker in the foreground.
set -eu
cat > /tmp/server.properties <<P
broker.id=${BROKER_ID}
port=${PORT}
advertised.host.name=${ADVERTISED_HOST:-localhost}
advertised.port=${ADVERTISED_PORT:-$PORT}
log.dirs=/var/lib/kafka
zookeeper.connect=${ZOOKEEPER_CONNECT}
num.partitions=1
delete.topic.enable=true
controlled.shutdown.enable=true
offsets.topic.replication.factor=1
P
exec "$KAFKA_HOME/bin/kafka-server-start.sh" /tmp/server.properties
