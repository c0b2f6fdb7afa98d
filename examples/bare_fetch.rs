//! The ceiling our fetch layer is measured against: a bare `kafka`-crate fetch loop that reads
//! every message of a topic from the beginning to the current log end, as fast as it can.
//!
//! ```text
//! cargo run --release --example bare_fetch -- <broker,broker…> <topic> [fetch.message.max.bytes]
//! ```
//! Prints `messages=N bytes=B wall_ms=W` on stdout.

use std::collections::HashMap;
use std::time::Instant;

use kafka::client::{FetchOffset, FetchPartition, KafkaClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, rest @ ..] = args.as_slice() else {
        eprintln!("usage: bare_fetch <broker,broker…> <topic> [fetch.message.max.bytes]");
        std::process::exit(2);
    };
    let max_bytes: i32 = rest
        .first()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_048_576);
    let start = Instant::now();
    let mut client = KafkaClient::new(brokers.split(',').map(str::to_string).collect());
    client.set_fetch_max_bytes_per_partition(max_bytes);
    client.set_fetch_crc_validation(true);
    client.set_fetch_max_wait_time(std::time::Duration::from_millis(100))?;
    client.load_metadata(&[topic])?;
    let ends: HashMap<i32, i64> = client
        .fetch_offsets(&[topic], FetchOffset::Latest)?
        .remove(topic.as_str())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    let mut positions: HashMap<i32, i64> = client
        .fetch_offsets(&[topic], FetchOffset::Earliest)?
        .remove(topic.as_str())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    let (mut messages, mut bytes) = (0u64, 0u64);
    loop {
        let wanted: Vec<FetchPartition<'_>> = positions
            .iter()
            .filter(|(p, &o)| o < ends[p])
            .map(|(&p, &o)| FetchPartition::new(topic, p, o).with_max_bytes(max_bytes))
            .collect();
        if wanted.is_empty() {
            break;
        }
        for response in client.fetch_messages(&wanted)? {
            for t in response.topics() {
                for p in t.partitions() {
                    let data = p.data()?;
                    let pos = positions
                        .get_mut(&p.partition())
                        .ok_or("unknown partition")?;
                    for m in data.messages() {
                        if m.offset >= *pos {
                            // Copy out as a consumer must, so the comparison is fair.
                            let value = m.value.to_vec();
                            bytes += value.len() as u64;
                            messages += 1;
                            *pos = m.offset + 1;
                        }
                    }
                }
            }
        }
    }
    println!(
        "messages={messages} bytes={bytes} wall_ms={}",
        start.elapsed().as_millis()
    );
    Ok(())
}
