//! "Do not stop what does not move", against real ZooKeeper and Kafka: a rebalance that leaves
//! a member's partition on the same thread id keeps its owner node (not deleted and created
//! again), its fetch position and its queued data; only the partitions that move are released.
//!
//! The observable is redelivery with auto-commit off and nothing committed: a released
//! partition is fetched again from `auto.offset.reset` (smallest), so a member that released
//! and re-claimed everything (as the Java consumer does) delivers its messages twice. Owner
//! nodes are compared by creation transaction id (czxid), and the rebalance listener must not
//! hear of a release of a kept partition.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A member with auto-commit off (so a release and re-claim would fetch from the start again).
async fn member(group: &str) -> zkconsumer::Consumer {
    init_logs();
    zkconsumer::Consumer::connect(
        config(group)
            .set("auto.commit.enable", false)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("connect")
}

/// Starts `consumer` on `topic` with `streams` streams and a listener log, produces five
/// messages "one" to each of the topic's four partitions and waits until all 20 are delivered.
async fn first_batch_delivered(
    consumer: &zkconsumer::Consumer,
    topic: &str,
    streams: u32,
) -> (Arc<Recorder>, Collector) {
    let recorder = Arc::new(Recorder::default());
    consumer.set_rebalance_listener(recorder.clone());
    let seen = collect_streams(consumer, topic, streams).await;
    produce(topic, 4, 5, "one");
    wait_until("first batch delivered", LIMIT, || seen.len() >= 20).await;
    wait_rebalanced(consumer, 0, LIMIT).await;
    (recorder, seen)
}

/// Creation transaction id of each owner node of `topic` (partition -> czxid).
/// Once the second member's streams delivered `count` messages: stops both members and waits
/// for their streams to end (a stream error fails the test).
async fn stop_both_once_second_has(
    count: usize,
    (first, seen): (&zkconsumer::Consumer, &Collector),
    (second, seen_second): (&zkconsumer::Consumer, &Collector),
) {
    wait_until("the second member's partitions", LIMIT, || {
        seen_second.len() >= count
    })
    .await;
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    seen.wait_ended().await;
    seen_second.wait_ended().await;
}

async fn owner_czxids(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, i64> {
    let mut czxids = BTreeMap::new();
    for partition in owners(zk, group, topic).await.keys() {
        let path = format!("/consumers/{group}/owners/{topic}/{partition}");
        if let Some(stat) = zk
            .client()
            .check_stat(&path)
            .await
            .expect("stat owner node")
        {
            czxids.insert(*partition, stat.czxid);
        }
    }
    czxids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_whose_partitions_do_not_move_keeps_them_through_another_members_join() {
    let mine = topic("keep-a", 4, 1);
    let other = topic("keep-b", 2, 1);
    let group = testkit::cluster().unique("keep-group");
    let zk = zk().await;

    let first = member(&group).await;
    let (recorder, seen) = first_batch_delivered(&first, &mine, 2).await;
    let owners_before = owners(&zk, &group, &mine).await;
    let czxids_before = owner_czxids(&zk, &group, &mine).await;
    assert_eq!(czxids_before.len(), 4, "{owners_before:?}");
    let rebalances_before = *first.rebalances().borrow();

    // Another member joins the group for another topic: the first member rebalances, and
    // its assignment (partition -> thread id) stays the same.
    let second = member(&group).await;
    let seen_other = collect_streams(&second, &other, 1).await;
    wait_rebalanced(&first, rebalances_before, LIMIT).await;
    produce(&other, 2, 3, "other");
    wait_until("second member consumes its topic", LIMIT, || {
        seen_other.len() >= 6
    })
    .await;

    assert_eq!(owners(&zk, &group, &mine).await, owners_before);
    assert_eq!(
        owner_czxids(&zk, &group, &mine).await,
        czxids_before,
        "the owner nodes of unchanged partitions were kept, not deleted and created again"
    );

    produce(&mine, 4, 5, "two");
    wait_until("second batch delivered", LIMIT, || seen.len() >= 40).await;
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    seen.wait_ended().await;
    seen_other.wait_ended().await;
    let all = seen.snapshot();
    // Kept fetch positions: nothing fetched again from the (uncommitted) start.
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 40);

    let events = recorder.events.lock().unwrap().clone();
    assert!(
        !events.iter().any(|(kind, _)| *kind == "release"),
        "nothing was released: {events:?}"
    );
    let everything: BTreeSet<i32> = (0..4).collect();
    assert!(events.len() >= 2, "{events:?}");
    assert!(
        events.iter().all(|e| *e == ("start", everything.clone())),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_releases_only_the_partitions_that_move() {
    let topic = topic("keep-half", 4, 1);
    let group = testkit::cluster().unique("keep-half-group");
    let zk = zk().await;

    let first = member(&group).await;
    let (recorder, seen) = first_batch_delivered(&first, &topic, 1).await;
    let czxids_before = owner_czxids(&zk, &group, &topic).await;
    let rebalances_before = *first.rebalances().borrow();

    let second = member(&group).await;
    let seen_second = collect_streams(&second, &topic, 1).await;
    wait_rebalanced(&first, rebalances_before, LIMIT).await;
    wait_until("the second member owns half", LIMIT, || {
        second.owned_partitions().len() == 2
    })
    .await;
    let kept: BTreeSet<i32> = first
        .owned_partitions()
        .keys()
        .map(|tp| tp.partition)
        .collect();
    assert_eq!(kept.len(), 2);
    let moved: BTreeSet<i32> = (0..4).filter(|p| !kept.contains(p)).collect();

    // The kept owner nodes are the same nodes; the moved ones were created by the second member.
    let czxids_after = owner_czxids(&zk, &group, &topic).await;
    for p in &kept {
        assert_eq!(czxids_after.get(p), czxids_before.get(p), "partition {p}");
    }
    for p in &moved {
        assert_ne!(czxids_after.get(p), czxids_before.get(p), "partition {p}");
    }

    produce(&topic, 4, 5, "two");
    wait_until("the first member's second batch", LIMIT, || {
        seen.snapshot()
            .iter()
            .filter(|s| kept.contains(&s.partition))
            .count()
            >= 20
    })
    .await;
    // The second member reads the moved partitions from the start (nothing was committed).
    stop_both_once_second_has(20, (&first, &seen), (&second, &seen_second)).await;

    // Kept partitions: every offset exactly once on the first member (no fetch from the start).
    let first_kept: Vec<Seen> = seen
        .snapshot()
        .into_iter()
        .filter(|s| kept.contains(&s.partition))
        .collect();
    assert_no_duplicates(&first_kept);
    assert_eq!(first_kept.len(), 20);
    // Moved partitions: nothing after the release on the first member.
    let first_moved = seen
        .snapshot()
        .into_iter()
        .filter(|s| moved.contains(&s.partition))
        .count();
    assert_eq!(first_moved, 10);
    let second_all = seen_second.snapshot();
    assert_no_duplicates(&second_all);
    assert!(second_all.iter().all(|s| moved.contains(&s.partition)));
    assert_eq!(second_all.len(), 20);

    // The listener heard the release of exactly what moved.
    let events = recorder.events.lock().unwrap().clone();
    let releases: Vec<&BTreeSet<i32>> = events
        .iter()
        .filter(|(kind, _)| *kind == "release")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(releases, vec![&moved], "{events:?}");
    assert_eq!(events.last().unwrap(), &("start", kept), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_that_changes_thread_id_within_a_member_is_released_and_claimed_again() {
    let topic = topic("keep-thread", 4, 1);
    let group = testkit::cluster().unique("keep-thread-group");
    let zk = zk().await;
    init_logs();
    let with_id = |id: &str| {
        config(&group)
            .set("auto.commit.enable", false)
            .set("consumer.id", id)
            .build()
            .expect("valid config")
    };

    // "b" alone with two streams (range): b-0 -> 0,1; b-1 -> 2,3.
    let first = zkconsumer::Consumer::connect(with_id("b")).await.unwrap();
    let (recorder, seen) = first_batch_delivered(&first, &topic, 2).await;
    let czxids_before = owner_czxids(&zk, &group, &topic).await;
    assert_eq!(
        owners(&zk, &group, &topic).await[&2],
        format!("{group}_b-1")
    );

    // "a" joins with one stream and sorts first: a-0 -> 0,1; b-0 -> 2; b-1 -> 3. Partition 2
    // stays with member b but moves from thread b-1 to b-0 (another stream): a move.
    let second = zkconsumer::Consumer::connect(with_id("a")).await.unwrap();
    let seen_second = collect_streams(&second, &topic, 1).await;
    let wanted: BTreeMap<i32, String> = [(0, "a-0"), (1, "a-0"), (2, "b-0"), (3, "b-1")]
        .into_iter()
        .map(|(p, t)| (p, format!("{group}_{t}")))
        .collect();
    let start = std::time::Instant::now();
    while owners(&zk, &group, &topic).await != wanted {
        assert!(start.elapsed() < LIMIT, "owners never became {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let czxids_after = owner_czxids(&zk, &group, &topic).await;
    assert_eq!(czxids_after[&3], czxids_before[&3], "partition 3 kept");
    assert_ne!(
        czxids_after[&2], czxids_before[&2],
        "partition 2 claimed again"
    );

    // Partition 2 was released (nothing committed): fetched again from the start, on b-0.
    wait_until("partition 2 delivered again", LIMIT, || {
        seen.snapshot().iter().filter(|s| s.partition == 2).count() >= 10
    })
    .await;
    stop_both_once_second_has(10, (&first, &seen), (&second, &seen_second)).await;
    let on_first = |p: i32| {
        seen.snapshot()
            .into_iter()
            .filter(|s| s.partition == p)
            .count()
    };
    assert_eq!(on_first(2), 10, "redelivered once after the move");
    assert_eq!(on_first(3), 5, "kept: delivered once");

    let events = recorder.events.lock().unwrap().clone();
    let releases: Vec<&BTreeSet<i32>> = events
        .iter()
        .filter(|(kind, _)| *kind == "release")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(releases, vec![&BTreeSet::from([0, 1, 2])], "{events:?}");
}

/// Partitions released and what the listener's commit returned then.
type CommitLog = std::sync::Mutex<Vec<(BTreeSet<i32>, Result<(), String>)>>;

/// A listener that commits in `before_releasing_partitions` (Java's place for manual commits)
/// and records what each commit returned.
struct CommittingListener {
    committer: zkconsumer::Committer,
    results: CommitLog,
}

impl zkconsumer::RebalanceListener for CommittingListener {
    fn before_releasing_partitions(&self, owned: &BTreeMap<String, BTreeSet<i32>>) {
        let result = self.committer.commit_blocking().map_err(|e| e.to_string());
        let partitions = owned.values().flatten().copied().collect();
        self.results.lock().unwrap().push((partitions, result));
    }
}

/// `first` (already subscribed to `topic`, 4 partitions, collected by `seen`) delivers and
/// processes five messages of each partition with nothing committed; then the member
/// `connect_second` makes joins and takes half. Returns it, its collector and the partitions
/// that moved to it.
async fn twenty_processed_then_a_second_member_joins(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
    (first, seen): (&zkconsumer::Consumer, &Collector),
    connect_second: impl std::future::Future<Output = zkconsumer::Consumer>,
) -> (zkconsumer::Consumer, Collector, BTreeSet<i32>) {
    produce(topic, 4, 5, "one");
    wait_until("first batch delivered", LIMIT, || seen.len() >= 20).await;
    // The collector took all 20 and waits in next(): all 20 are processed.
    wait_until("all 20 processed", LIMIT, || {
        first.owned_partitions().values().all(|o| *o == 5)
    })
    .await;
    assert!(committed(zk, group, topic).await.is_empty());
    let second = connect_second.await;
    let seen_second = collect_streams(&second, topic, 1).await;
    wait_until("the second member owns half", LIMIT, || {
        second.owned_partitions().len() == 2
    })
    .await;
    let moved = second
        .owned_partitions()
        .keys()
        .map(|tp| tp.partition)
        .collect();
    (second, seen_second, moved)
}

/// A second batch over both members; then both stop: every message of both batches was
/// delivered once (the second member started after what the first had processed).
async fn both_batches_once(
    topic: &str,
    (first, seen): (&zkconsumer::Consumer, &Collector),
    (second, seen_second): (&zkconsumer::Consumer, &Collector),
) {
    produce(topic, 4, 5, "two");
    wait_until("the first member's second batch", LIMIT, || {
        seen.len() >= 30
    })
    .await;
    stop_both_once_second_has(10, (first, seen), (second, seen_second)).await;
    let mut all = seen.snapshot();
    all.extend(seen_second.snapshot());
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 40);
    assert!(
        seen_second
            .snapshot()
            .iter()
            .all(|s| s.value.starts_with("two-")),
        "the second member got nothing of the first batch again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_auto_commit_off_a_commit_in_before_release_covers_the_partitions_being_released() {
    let topic = topic("keep-commit", 4, 1);
    let group = testkit::cluster().unique("keep-commit-group");
    let zk = zk().await;

    // auto.commit.enable=false: only the listener's commit can save the first member's work.
    let first = member(&group).await;
    let listener = Arc::new(CommittingListener {
        committer: first.committer(),
        results: Default::default(),
    });
    first.set_rebalance_listener(listener.clone());
    let seen = collect_streams(&first, &topic, 1).await;
    let (second, seen_second, moved) = twenty_processed_then_a_second_member_joins(
        &zk,
        &group,
        &topic,
        (&first, &seen),
        member(&group),
    )
    .await;
    let results = listener.results.lock().unwrap().clone();
    assert_eq!(results, vec![(moved.clone(), Ok(()))]);
    // The released partitions' processed offsets were committed before the second member
    // claimed them: it starts after the first batch.
    let offsets = committed(&zk, &group, &topic).await;
    for p in &moved {
        assert_eq!(offsets.get(p), Some(&5), "{offsets:?}");
    }
    both_batches_once(&topic, (&first, &seen), (&second, &seen_second)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_auto_commit_the_partitions_that_move_are_committed_before_they_are_released() {
    let topic = topic("keep-autocommit", 4, 1);
    let group = testkit::cluster().unique("keep-autocommit-group");
    let zk = zk().await;
    // Auto-commit on, but its timer far away: only the commit before a release can write.
    let member = || {
        connect_with(
            config(&group)
                .set("auto.commit.enable", true)
                .set("auto.commit.interval.ms", 3_600_000),
        )
    };
    let first = member().await;
    let seen = collect_streams(&first, &topic, 1).await;
    let (second, seen_second, moved) =
        twenty_processed_then_a_second_member_joins(&zk, &group, &topic, (&first, &seen), member())
            .await;
    // Exactly the released partitions were committed (the kept ones were not released).
    let offsets = committed(&zk, &group, &topic).await;
    assert_eq!(
        offsets,
        moved
            .iter()
            .map(|p| (*p, 5))
            .collect::<BTreeMap<i32, i64>>()
    );
    both_batches_once(&topic, (&first, &seen), (&second, &seen_second)).await;
}
