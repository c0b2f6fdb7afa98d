//! Explicit acknowledgement (`auto.ack=false`, zkconsumer's own key) against a real cluster:
//! taking messages commits nothing; acknowledgements in any order commit the contiguous
//! prefix of each partition, never past its lowest unacknowledged offset.

mod common;

use std::time::Duration;

use common::*;
use zkconsumer::Consumer;

const LIMIT: Duration = Duration::from_secs(60);

async fn committed_offset(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
) -> Option<i64> {
    let data = zk
        .get_data(&format!("/consumers/{group}/offsets/{topic}/0"))
        .await
        .expect("read the offset node")?;
    String::from_utf8(data).ok()?.trim().parse().ok()
}

/// Waits until the committed offset is `want` (auto-commit every 200 ms).
async fn wait_committed(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
    want: i64,
) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let got = committed_offset(zk, group, topic).await;
        if got == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_acks_in_any_order_commit_only_the_finished_prefix() {
    init_logs();
    let cluster = testkit::cluster();
    let topic = topic("acks", 1, 1);
    cluster.produce_values(
        &topic,
        0,
        &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>(),
    );
    let group = cluster.unique("acks-group");
    let builder = config(&group).set("auto.ack", "false");
    assert!(builder.unknown_keys().is_empty(), "auto.ack is a known key");
    let config = builder.build().unwrap();
    let consumer = Consumer::connect(config).await.unwrap();
    let mut stream = single_stream(&consumer, &topic).await;
    let mut taken = Vec::new();
    while taken.len() < 10 {
        match tokio::time::timeout(LIMIT, stream.next()).await {
            Ok(Some(Ok(m))) => taken.push(m),
            other => panic!("{other:?}"),
        }
    }
    let zk = zk().await;
    // Several auto-commit intervals: taking messages acknowledged nothing.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = committed_offset(&zk, &group, &topic).await;
    assert!(
        before.unwrap_or(0) == 0,
        "nothing acknowledged, committed {before:?}"
    );

    // Finished out of order, from another task: 3, 1, 2 do not pass the unfinished 0.
    let acker = stream.acker();
    let finished = taken.clone();
    tokio::spawn(async move {
        for i in [3, 1, 2] {
            acker.ack(&finished[i]).unwrap();
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still = committed_offset(&zk, &group, &topic).await;
    assert!(
        still.unwrap_or(0) == 0,
        "0 is unfinished, committed {still:?}"
    );
    stream.ack(&taken[0]).unwrap();
    wait_committed(&zk, &group, &topic, 4).await;
    for i in [9, 5, 4, 6, 8] {
        stream.ack(&taken[i]).unwrap();
    }
    wait_committed(&zk, &group, &topic, 7).await;
    stream.ack(&taken[7]).unwrap();
    wait_committed(&zk, &group, &topic, 10).await;
    consumer.shutdown().await.unwrap();
    assert_eq!(committed_offset(&zk, &group, &topic).await, Some(10));
}
