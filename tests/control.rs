//! Offset control against a real cluster: commits of given offsets (Java's "next offset to
//! read"), committed / position, seek (back, forward, earliest, latest), resetting a group's
//! offsets before the member starts ("replay from the start" in one call), pause / resume,
//! and calls after shutdown.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use zkconsumer::admin::{AdminError, ResetTo};
use zkconsumer::partition::TopicPartition;
use zkconsumer::{ConsumerError, MessageStream, SeekTo};

const LIMIT: Duration = Duration::from_secs(60);

/// The next message, within [`LIMIT`].
async fn take(stream: &mut MessageStream) -> zkconsumer::Message {
    match tokio::time::timeout(LIMIT, stream.next()).await {
        Ok(Some(Ok(m))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn value(m: &zkconsumer::Message) -> String {
    String::from_utf8_lossy(&m.value).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_given_offsets_seek_and_position() {
    let topic = topic("control", 1, 1);
    produce(&topic, 1, 10, "m");
    let group = testkit::cluster().unique("control-group");
    let consumer = connect_with(config(&group).set("auto.commit.enable", "false")).await;
    let tp = TopicPartition::new(&topic, 0);
    let mut stream = single_stream(&consumer, &topic).await;
    let first = take(&mut stream).await;
    assert_eq!(value(&first), "m-0-0");
    assert_eq!(consumer.position(&tp).unwrap(), Some(1));
    assert_eq!(consumer.committed(&tp).await.unwrap(), None);

    // commit(message): the message just taken counts, committed = its offset + 1
    consumer
        .commit_offsets_at(&BTreeMap::from([(tp.clone(), first.offset + 1)]))
        .await
        .unwrap();
    let zk = zk().await;
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 1)])
    );
    assert_eq!(consumer.committed(&tp).await.unwrap(), Some(1));

    // a partition not owned, a negative offset: errors naming them, nothing committed
    let stranger = TopicPartition::new(&topic, 7);
    let err = consumer
        .commit_offsets_at(&BTreeMap::from([(tp.clone(), 5), (stranger.clone(), 3)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConsumerError::NotOwned { partition: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{topic}-7 is not owned")));
    assert!(matches!(
        consumer.seek(&tp, SeekTo::Offset(-2)).await,
        Err(ConsumerError::InvalidOffset { offset: -2, .. })
    ));
    assert_eq!(consumer.committed(&tp).await.unwrap(), Some(1));

    // seek back: the next message is offset 0 again, whatever was buffered
    for _ in 0..3 {
        take(&mut stream).await;
    }
    assert_eq!(consumer.seek(&tp, SeekTo::Offset(0)).await.unwrap(), 0);
    assert_eq!(consumer.position(&tp).unwrap(), Some(0));
    assert_eq!(value(&take(&mut stream).await), "m-0-0");
    assert_eq!(value(&take(&mut stream).await), "m-0-1");
    // forward
    consumer.seek(&tp, SeekTo::Offset(8)).await.unwrap();
    assert_eq!(value(&take(&mut stream).await), "m-0-8");
    // earliest / latest from the log
    assert_eq!(consumer.seek(&tp, SeekTo::Earliest).await.unwrap(), 0);
    assert_eq!(value(&take(&mut stream).await), "m-0-0");
    assert_eq!(consumer.seek(&tp, SeekTo::Latest).await.unwrap(), 10);
    produce(&topic, 1, 1, "late");
    assert_eq!(value(&take(&mut stream).await), "late-0-0");
    assert_eq!(take_offset_committed(&consumer, &tp, &mut stream).await, 11);

    consumer.shutdown().await.unwrap();
    for err in [
        consumer.commit_offsets().await.unwrap_err(),
        consumer
            .commit_offsets_at(&BTreeMap::from([(tp.clone(), 1)]))
            .await
            .unwrap_err(),
        consumer.seek(&tp, SeekTo::Offset(0)).await.unwrap_err(),
        consumer.pause(std::slice::from_ref(&tp)).unwrap_err(),
    ] {
        assert!(matches!(err, ConsumerError::ShutDown(_)), "{err}");
    }
}

/// Commits the processed position with `commit_offsets` after taking the message at 10
/// (taking the next one finishes it; here a commit of its offset + 1 does) and returns what
/// the store holds.
async fn take_offset_committed(
    consumer: &zkconsumer::Consumer,
    tp: &TopicPartition,
    stream: &mut MessageStream,
) -> i64 {
    let _ = stream.try_next();
    consumer.commit_offsets().await.unwrap();
    consumer
        .committed(tp)
        .await
        .unwrap()
        .expect("an offset committed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_offsets_replays_the_group_before_it_starts_and_is_refused_otherwise() {
    let topic = topic("replay", 2, 1);
    produce(&topic, 2, 5, "r");
    let group = testkit::cluster().unique("replay-group");
    set_offsets(&group, &topic, &[(0, 5), (1, 5)]).await;

    let live = connect(&group).await;
    let _live_stream = single_stream(&live, &topic).await;
    let replay = connect(&group).await;
    let err = replay
        .reset_offsets(std::slice::from_ref(&topic), ResetTo::Earliest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConsumerError::Admin(AdminError::GroupActive { .. })),
        "{err}"
    );
    assert_eq!(
        committed(&zk().await, &group, &topic).await,
        BTreeMap::from([(0, 5), (1, 5)]),
        "nothing written while a member is live"
    );
    live.shutdown().await.unwrap();
    wait_for_no_members(&group).await;

    let plan = replay
        .reset_offsets(std::slice::from_ref(&topic), ResetTo::Earliest)
        .await
        .unwrap();
    assert_eq!(
        plan.iter()
            .map(|l| (l.partition, l.from, l.to))
            .collect::<Vec<_>>(),
        [(0, Some(5), 0), (1, Some(5), 0)]
    );
    let mut stream = single_stream(&replay, &topic).await;
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(value(&take(&mut stream).await));
    }
    seen.sort();
    let mut want: Vec<String> = (0..2)
        .flat_map(|p| (0..5).map(move |i| format!("r-{p}-{i}")))
        .collect();
    want.sort();
    assert_eq!(seen, want, "every message again, once");
    assert!(matches!(
        replay
            .reset_offsets(std::slice::from_ref(&topic), ResetTo::Earliest)
            .await,
        Err(ConsumerError::ResetAfterStart(_))
    ));
    replay.shutdown().await.unwrap();
}

async fn wait_for_no_members(group: &str) {
    let zk = zk().await;
    let path = format!("/consumers/{group}/ids");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !zk.children(&path).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "members stay");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_partition_is_held_back_until_resumed() {
    let topic = topic("pause", 2, 1);
    produce(&topic, 2, 3, "p");
    let group = testkit::cluster().unique("pause-group");
    let consumer = connect(&group).await;
    let mut stream = single_stream(&consumer, &topic).await;
    let first = take(&mut stream).await;
    let paused = TopicPartition::new(&topic, first.partition);
    let other = 1 - first.partition;
    consumer.pause(std::slice::from_ref(&paused)).unwrap();
    assert_eq!(consumer.paused(), std::slice::from_ref(&paused));
    for i in 0..3 {
        let m = take(&mut stream).await;
        assert_eq!(
            (m.partition, value(&m)),
            (other, format!("p-{other}-{i}")),
            "only the other partition while paused"
        );
    }
    produce(&topic, 2, 1, "more");
    let m = take(&mut stream).await;
    assert_eq!(m.partition, other, "new data of the paused one waits too");
    assert_eq!(
        consumer.position(&paused).unwrap(),
        Some(1),
        "the paused partition did not move"
    );
    consumer.resume(std::slice::from_ref(&paused)).unwrap();
    assert!(consumer.paused().is_empty());
    let mut rest = Vec::new();
    for _ in 0..3 {
        rest.push(value(&take(&mut stream).await));
    }
    let p = first.partition;
    assert_eq!(
        rest,
        [
            format!("p-{p}-1"),
            format!("p-{p}-2"),
            format!("more-{p}-0")
        ],
        "in order, nothing lost"
    );
    let err = consumer
        .pause(&[TopicPartition::new("no-such-topic", 0)])
        .unwrap_err();
    assert!(matches!(err, ConsumerError::NotOwned { .. }), "{err}");
    consumer.shutdown().await.unwrap();
}
