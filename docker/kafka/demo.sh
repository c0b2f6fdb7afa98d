#!/bin/sh
# The demo's driver (docker compose --profile demo up), like scripts/demo: creates the 6-partition
# topic $TOPIC, waits until the three zkconsumer members of $GROUP own two partitions each, produces
# 600 keyed messages, waits until the group has committed all of them and shows the committed offsets
# as Kafka's own ConsumerOffsetChecker reads them. Exits non-zero when the offsets do not add up.
set -eu
zk=$ZOOKEEPER_CONNECT
say() { printf '== %s\n' "$*"; }
checker() { kafka-class kafka.tools.ConsumerOffsetChecker --zookeeper "$zk" --group "$GROUP" --topic "$TOPIC" 2>/dev/null || true; }

kafka-class kafka.admin.TopicCommand --zookeeper "$zk" --create --topic "$TOPIC" --partitions 6 \
  --replication-factor 2 >/dev/null 2>&1 || echo "topic $TOPIC exists already"
say "topic $TOPIC: 6 partitions on 2 brokers; group $GROUP"

# Every owner node names a member's thread (<group>_<consumer.id>-<n>): one ZooKeeper shell reads all six.
owners() {
  for p in 0 1 2 3 4 5; do echo "get /consumers/$GROUP/owners/$TOPIC/$p"; done | { cat; echo quit; } |
    kafka-class org.apache.zookeeper.ZooKeeperMain -server "$zk" 2>/dev/null | grep -o "^${GROUP}_.*-[0-9]*\$" || true
}
settled() { owners | sed 's/-[0-9]*$//' | sort | uniq -c | awk '$1 == 2 { n++ } END { exit !(n == 3) }'; }
i=0
until settled; do
  i=$((i + 1)); [ $i -lt 90 ] || { echo "the members did not settle to 2 partitions each" >&2; exit 1; }
  sleep 1
done
say "three members share the group: 2 partitions each"

seq 1 600 | sed 's/.*/key-&:message-&/' | kafka-class kafka.tools.ConsoleProducer --broker-list "$BROKERS" \
  --topic "$TOPIC" --request-required-acks 1 --property parse.key=true --property key.separator=: >/dev/null
say "produced 600 messages"

committed() { checker | awk -v t="$TOPIC" '$2 == t { s += $4 } END { print s + 0 }'; }
i=0
until [ "$(committed)" -ge 600 ]; do
  i=$((i + 1)); [ $i -lt 60 ] || { echo "the group committed $(committed) of 600 offsets" >&2; checker; exit 1; }
  sleep 1
done
say "the group's committed offsets (Kafka's ConsumerOffsetChecker reading ZooKeeper): $(committed) in all"
checker
