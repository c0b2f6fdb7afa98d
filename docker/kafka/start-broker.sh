#!/bin/sh
# Writes server.properties from the environment and runs the broker in the foreground.
#   BROKER_ID, PORT, ZOOKEEPER_CONNECT; ADVERTISED_HOST (127.0.0.1), ADVERTISED_PORT (PORT),
#   RETENTION_CHECK_MS (1000: as scripts/testbed's brokers, so the retention test sees old data go).
# The compose file runs every container on the host's network: the broker listens on and is
# advertised at 127.0.0.1 only.
set -eu
cat > /tmp/server.properties <<P
broker.id=${BROKER_ID}
port=${PORT}
host.name=${ADVERTISED_HOST:-127.0.0.1}
advertised.host.name=${ADVERTISED_HOST:-127.0.0.1}
advertised.port=${ADVERTISED_PORT:-$PORT}
log.dirs=/var/lib/kafka
zookeeper.connect=${ZOOKEEPER_CONNECT}
num.partitions=1
delete.topic.enable=true
controlled.shutdown.enable=true
offsets.topic.replication.factor=1
log.retention.check.interval.ms=${RETENTION_CHECK_MS:-1000}
P
exec kafka-class kafka.Kafka /tmp/server.properties
