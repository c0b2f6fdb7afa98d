#!/bin/sh
# One member of the demo group (docker compose --profile demo up): consumes $TOPIC in $GROUP as
# consumer.id $MEMBER until the stream has been idle for $IDLE_MS, then prints what it got.
set -eu
out=/tmp/$MEMBER.jsonl
# A whitelist: the member waits for the topic the demo driver creates (asking the brokers for it by
# name could auto-create it with one partition first).
RUST_LOG=${RUST_LOG:-zkconsumer=info} zkconsumer consume --zookeeper "$ZOOKEEPER_CONNECT" --group "$GROUP" \
  --whitelist "$TOPIC" --format json --property consumer.id="$MEMBER" \
  --property auto.commit.interval.ms=500 --property consumer.timeout.ms="${IDLE_MS:-20000}" > "$out"
n=$(wc -l < "$out")
parts=$(grep -o '"partition":[0-9]*' "$out" | cut -d: -f2 | sort -n | uniq | tr '\n' ' ')
first=$(grep -o '"value":"[^"]*"' "$out" | head -n 3 | cut -d'"' -f4 | tr '\n' ' ')
echo "$MEMBER: $n messages from partitions [ $parts] e.g. $first..."
