//! Coordinated consumption against the test bed's real ZooKeeper and Kafka brokers: splitting,
//! joining, leaving, restarting, new topics and partitions, offsets, golden ZooKeeper JSON, a
//! member cut off from ZooKeeper past its session.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use zkconsumer::{StreamError, TopicFilter};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_and_three_members_split_partitions_without_overlap_or_gap() {
    for members in [2usize, 3] {
        let topic = topic("split", 6, 1);
        let group = testkit::cluster().unique("split-group");
        let total = produce(&topic, 6, 20, "m");
        let mut consumers = Vec::new();
        let mut collectors = Vec::new();
        for _ in 0..members {
            let consumer = connect(&group).await;
            let collector = collect_streams(&consumer, &topic, 1).await;
            consumers.push(consumer);
            collectors.push(collector);
        }
        let zk = zk().await;
        wait_until(
            "every partition owned and all messages consumed",
            LIMIT,
            || collectors.iter().map(Collector::len).sum::<usize>() >= total,
        )
        .await;
        // Ownership settles on range: 6 / members partitions each, disjoint.
        let expected_each = 6 / members;
        let mut settled = false;
        for _ in 0..200 {
            let owned: Vec<_> = consumers.iter().map(|c| c.owned_partitions()).collect();
            if owned.iter().all(|o| o.len() == expected_each) {
                settled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(settled, "ownership did not settle to {expected_each} each");
        let owner_nodes = owners(&zk, &group, &topic).await;
        assert_eq!(owner_nodes.len(), 6, "owner nodes: {owner_nodes:?}");
        let mut union = BTreeSet::new();
        for consumer in &consumers {
            let mine: BTreeSet<i32> = consumer
                .owned_partitions()
                .keys()
                .map(|tp| tp.partition)
                .collect();
            for p in &mine {
                assert!(union.insert(*p), "partition {p} owned twice");
                assert!(owner_nodes[p].starts_with(consumer.consumer_id()));
            }
        }
        assert_eq!(union, (0..6).collect());
        let sequences: Vec<Vec<Seen>> = collectors.iter().map(Collector::snapshot).collect();
        assert_at_least_once_redelivering_only_at_handovers(&sequences, total);
        for consumer in &consumers {
            consumer.shutdown().await.expect("shutdown");
        }
    }
}

/// Every message delivered (no gap), and any message delivered twice is the one a member had
/// handed out but not finished when its partition moved: the README's at-least-once
/// contract commits only what the application finished with (it took the next message), so
/// a partition revoked between handing out a message and the next `next()` is committed
/// before that message, and its new owner starts with it. Such a duplicate ends a run of
/// consecutive offsets in one member's sequence and starts one in another's; nothing else is
/// delivered twice. `sequences` are per member, in delivery order (one stream each).
fn assert_at_least_once_redelivering_only_at_handovers(sequences: &[Vec<Seen>], total: usize) {
    let mut count: BTreeMap<(i32, i64), Vec<usize>> = BTreeMap::new();
    for (member, seq) in sequences.iter().enumerate() {
        for s in seq {
            count
                .entry((s.partition, s.offset))
                .or_default()
                .push(member);
        }
    }
    assert_eq!(count.len(), total, "every message at least once");
    // Offsets of one partition in one member's order.
    let offsets_of = |member: usize, p: i32| -> Vec<i64> {
        sequences[member]
            .iter()
            .filter(|s| s.partition == p)
            .map(|s| s.offset)
            .collect()
    };
    for ((p, o), members) in count.iter().filter(|(_, m)| m.len() > 1) {
        assert!(
            members.len() == 2 && members[0] != members[1],
            "partition {p} offset {o} delivered {} times (members {members:?})",
            members.len()
        );
        let ends_a_run = |member: usize| {
            let seq = offsets_of(member, *p);
            let i = seq.iter().position(|x| x == o).expect("delivered");
            seq.get(i + 1) != Some(&(o + 1))
        };
        let starts_a_run = |member: usize| {
            let seq = offsets_of(member, *p);
            let i = seq.iter().position(|x| x == o).expect("delivered");
            i == 0 || seq[i - 1] != o - 1
        };
        let (a, b) = (members[0], members[1]);
        assert!(
            (ends_a_run(a) && starts_a_run(b)) || (ends_a_run(b) && starts_a_run(a)),
            "partition {p} offset {o} delivered twice, not at a handover: member {a}: {:?}, \
             member {b}: {:?}",
            offsets_of(a, *p),
            offsets_of(b, *p)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_member_triggers_rebalance_and_graceful_leave_hands_over_exactly() {
    let topic = topic("join", 4, 1);
    let group = testkit::cluster().unique("join-group");
    let first = produce(&topic, 4, 25, "a");

    let a = connect(&group).await;
    let a_seen = collect_streams(&a, &topic, 2).await;
    wait_until("a consumes the first batch", LIMIT, || {
        a_seen.len() >= first
    })
    .await;
    assert_eq!(a.owned_partitions().len(), 4);

    let b = connect(&group).await;
    let b_seen = collect_streams(&b, &topic, 2).await;
    wait_until("a rebalances down to two partitions", LIMIT, || {
        a.owned_partitions().len() == 2 && b.owned_partitions().len() == 2
    })
    .await;

    let second = produce(&topic, 4, 25, "b");
    wait_until("both consume the second batch", LIMIT, || {
        a_seen.len() + b_seen.len() >= first + second
    })
    .await;

    // A leaves gracefully: B takes everything over from A's committed offsets.
    a.shutdown().await.expect("a shutdown");
    a_seen.wait_ended().await;
    wait_until("b owns all partitions", LIMIT, || {
        b.owned_partitions().len() == 4
    })
    .await;
    let third = produce(&topic, 4, 25, "c");
    wait_until("b consumes the third batch", LIMIT, || {
        a_seen.len() + b_seen.len() >= first + second + third
    })
    .await;
    // Streams ended: nothing more can arrive, so the counts below are final.
    b.shutdown().await.expect("b shutdown");
    b_seen.wait_ended().await;
    let all: Vec<Seen> = a_seen
        .snapshot()
        .into_iter()
        .chain(b_seen.snapshot())
        .collect();
    assert_no_duplicates(&all);
    assert_eq!(all.len(), first + second + third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_resumes_from_committed_offsets_and_shutdown_cleans_zookeeper() {
    let topic = topic("restart", 3, 1);
    let group = testkit::cluster().unique("restart-group");
    let first = produce(&topic, 3, 10, "one");
    let zk = zk().await;

    let consumer = connect(&group).await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until("first batch", LIMIT, || seen.len() >= first).await;
    let id = consumer.consumer_id().to_string();
    consumer.shutdown().await.unwrap();
    seen.wait_ended().await;
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 10), (1, 10), (2, 10)])
    );
    assert!(
        owners(&zk, &group, &topic).await.is_empty(),
        "owner nodes left behind"
    );
    let ids = zk
        .children(&format!("/consumers/{group}/ids"))
        .await
        .unwrap();
    assert!(!ids.contains(&id), "registration left behind: {ids:?}");

    let second = produce(&topic, 3, 5, "two");
    let consumer = connect(&group).await;
    let again = collect_streams(&consumer, &topic, 1).await;
    wait_until("second batch", LIMIT, || again.len() >= second).await;
    consumer.shutdown().await.unwrap();
    again.wait_ended().await;
    let got = again.snapshot();
    assert_eq!(got.len(), second, "only the new messages: {got:?}");
    assert!(got
        .iter()
        .all(|s| s.value.starts_with("two-") && s.offset >= 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_and_owner_nodes_match_the_java_format() {
    let topic = topic("golden", 2, 1);
    let group = testkit::cluster().unique("golden-group");
    let consumer = connect_with(config(&group).set("consumer.id", "golden-member")).await;
    assert_eq!(consumer.consumer_id(), format!("{group}_golden-member"));
    let _seen = collect_streams(&consumer, &topic, 2).await;
    let zk = zk().await;
    let path = format!("/consumers/{group}/ids/{group}_golden-member");
    let data = String::from_utf8(zk.get_data(&path).await.unwrap().expect("registration")).unwrap();
    let re = regex::Regex::new(&format!(
        r#"^\{{"version":1,"subscription":\{{"{}":2\}},"pattern":"static","timestamp":"\d{{13}}"\}}$"#,
        regex::escape(&topic)
    ))
    .unwrap();
    assert!(re.is_match(&data), "registration JSON: {data}");
    wait_until("both partitions owned", LIMIT, || {
        consumer.owned_partitions().len() == 2
    })
    .await;
    let owner_nodes = owners(&zk, &group, &topic).await;
    // range: thread -0 gets partition 0, thread -1 gets partition 1.
    assert_eq!(
        owner_nodes,
        BTreeMap::from([
            (0, format!("{group}_golden-member-0")),
            (1, format!("{group}_golden-member-1")),
        ])
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whitelist_picks_up_a_topic_created_later_and_added_partitions_are_consumed() {
    let cluster = testkit::cluster();
    let prefix = cluster.unique("wl");
    let first = format!("{prefix}.first");
    cluster.create_topic(&first, 2, 1);
    let group = cluster.unique("wl-group");
    let consumer = connect(&group).await;
    let seen = Collector::default();
    let filter = TopicFilter::whitelist(&format!("{}\\..*", regex::escape(&prefix))).unwrap();
    let streams = consumer
        .create_message_streams_by_filter(filter, 2)
        .await
        .unwrap();
    seen.spawn(streams);
    let a = produce(&first, 2, 5, "first");
    wait_until("first topic consumed", LIMIT, || seen.len() >= a).await;

    let later = format!("{prefix}.later");
    cluster.create_topic(&later, 2, 1);
    let b = produce(&later, 2, 5, "later");
    wait_until("topic created later consumed", LIMIT, || {
        seen.len() >= a + b
    })
    .await;

    cluster.add_partitions(&first, 4);
    wait_until("added partitions owned", LIMIT, || {
        consumer.owned_partitions().len() == 6
    })
    .await;
    let values: Vec<String> = (0..5).map(|i| format!("added-{i}")).collect();
    cluster.produce_values(&first, 3, &values);
    wait_until("added partition consumed", LIMIT, || {
        seen.len() >= a + b + 5
    })
    .await;
    let snap = seen.snapshot();
    assert!(snap.iter().any(|s| s.topic == first && s.partition == 3));
    assert_no_duplicates(&snap);
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_range_offsets_reset_per_policy() {
    let topic = topic("oor", 1, 1);
    let zk = zk().await;
    produce(&topic, 1, 10, "old");
    for (policy, expect_old) in [("smallest", true), ("largest", false)] {
        let group = testkit::cluster().unique("oor-group");
        // A committed offset far past the log end: out of range.
        zk.write_persistent(&format!("/consumers/{group}/offsets/{topic}/0"), b"100000")
            .await
            .unwrap();
        let consumer = connect_with(config(&group).set("auto.offset.reset", policy)).await;
        let seen = collect_streams(&consumer, &topic, 1).await;
        if expect_old {
            wait_until("reset to smallest replays the log", LIMIT, || {
                seen.len() >= 10
            })
            .await;
            assert_eq!(seen.snapshot()[0].offset, 0);
        } else {
            // Reset to largest: the old messages are skipped, new ones arrive.
            wait_until("reset to largest", LIMIT, || {
                consumer
                    .owned_partitions()
                    .values()
                    .any(|&offset| offset >= 10)
            })
            .await;
            // The reset position is committed like any other (auto-commit), so a rebalance
            // now would not reset again past the message produced next.
            let mut committed_end = false;
            for _ in 0..600 {
                if committed(&zk, &group, &topic).await.get(&0) == Some(&10) {
                    committed_end = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(committed_end, "reset position was not committed");
            let values = vec!["new".to_string()];
            testkit::cluster().produce_values(&topic, 0, &values);
            wait_until("new message after reset", LIMIT, || seen.len() >= 1).await;
            let snap = seen.snapshot();
            assert!(snap.iter().all(|s| s.value == "new"), "{snap:?}");
        }
        consumer.shutdown().await.unwrap();
        let offsets = committed(&zk, &group, &topic).await;
        assert!(offsets[&0] <= testkit::cluster().log_end_offsets(&topic)[&0]);
    }
}

/// A stream error in a collector's task reaches the test: the next look at the collector fails, and
/// so does dropping its last handle (a test that never looks again still fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collectors_stream_error_fails_the_test() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let topic = topic("big-collected", 1, 1);
    testkit::cluster().produce_values(&topic, 0, &["small".to_string(), "x".repeat(4000)]);
    let group = testkit::cluster().unique("big-collected-group");
    let consumer = connect_with(config(&group).set("fetch.message.max.bytes", 1024)).await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until(
        "the oversized message's error reaches the collector",
        LIMIT,
        || catch_unwind(AssertUnwindSafe(|| seen.len())).is_err(),
    )
    .await;
    let other = seen.clone();
    drop(seen);
    assert!(
        catch_unwind(AssertUnwindSafe(move || drop(other))).is_err(),
        "dropping the last handle of a collector with an unseen error must fail"
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_message_is_a_clear_error() {
    let topic = topic("big", 1, 1);
    let big = "x".repeat(4000);
    testkit::cluster().produce_values(&topic, 0, &["small".to_string(), big]);
    let group = testkit::cluster().unique("big-group");
    let consumer = connect_with(config(&group).set("fetch.message.max.bytes", 1024)).await;
    let mut stream = single_stream(&consumer, &topic).await;
    let first = tokio::time::timeout(LIMIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.value, b"small");
    let err = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("error instead of a silent stall")
        .expect("stream open")
        .expect_err("oversized message must be an error");
    assert!(matches!(err, StreamError::Fetch(_)));
    let text = err.to_string();
    for needle in [topic.as_str(), "fetch.message.max.bytes", " 1"] {
        assert!(text.contains(needle), "error {text:?} lacks {needle:?}");
    }
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_offset_node_is_a_clear_error_naming_the_path() {
    let topic = topic("corrupt", 1, 1);
    produce(&topic, 1, 3, "c");
    let group = testkit::cluster().unique("corrupt-group");
    let zk = zk().await;
    let path = format!("/consumers/{group}/offsets/{topic}/0");
    zk.write_persistent(&path, b"not-a-number").await.unwrap();
    let consumer = connect(&group).await;
    let mut stream = single_stream(&consumer, &topic).await;
    let err = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("error instead of a stall")
        .expect("stream open")
        .expect_err("corrupt offset must be an error");
    let text = err.to_string();
    assert!(
        text.contains(&path) && text.contains("not-a-number"),
        "{text}"
    );
    // Nothing was overwritten: the operator decides.
    assert_eq!(zk.get_data(&path).await.unwrap().unwrap(), b"not-a-number");
    consumer.shutdown().await.unwrap();
    assert_eq!(zk.get_data(&path).await.unwrap().unwrap(), b"not-a-number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_offset_met_while_the_streams_queue_is_full_is_not_lost() {
    let topic = topic("corruptfull", 2, 1);
    produce(&topic, 2, 5, "c");
    let group = testkit::cluster().unique("corruptfull-group");
    let zk = zk().await;
    // "a" takes partition 0, "b" partition 1; a's queue holds one chunk and nobody reads it.
    let a = connect_with(
        config(&group)
            .set("consumer.id", "a")
            .set("queued.max.message.chunks", 1),
    )
    .await;
    let mut stream = single_stream(&a, &topic).await;
    let b = connect_with(
        config(&group)
            .set("consumer.id", "b")
            .set("auto.commit.enable", false),
    )
    .await;
    let _unread = single_stream(&b, &topic).await;
    let start = std::time::Instant::now();
    while owners(&zk, &group, &topic).await
        != BTreeMap::from([(0, format!("{group}_a-0")), (1, format!("{group}_b-0"))])
    {
        assert!(start.elapsed() < LIMIT, "a and b never split the topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // a's fetcher queued partition 0's chunk: a's queue is full.
    wait_until("a's queue full", LIMIT, || stream.queued_chunks() == 1).await;
    // b leaves; partition 1 comes to a with an unusable committed offset.
    let path = format!("/consumers/{group}/offsets/{topic}/1");
    zk.write_persistent(&path, b"garbage").await.unwrap();
    let mut rebalances = a.rebalances();
    let before = *rebalances.borrow_and_update();
    b.shutdown().await.unwrap();
    // Nothing is read before a has taken partition 1 over.
    tokio::time::timeout(LIMIT, rebalances.wait_for(|n| *n > before))
        .await
        .expect("a rebalances after b left")
        .expect("a alive");
    assert_eq!(
        stream.queued_chunks(),
        1,
        "the queue was full when the error came"
    );
    let text = tokio::time::timeout(LIMIT, async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e.to_string(),
                None => panic!("stream ended"),
            }
        }
    })
    .await
    .expect("the offset error reaches the stream, whose queue was full");
    assert!(text.contains(&path) && text.contains("garbage"), "{text}");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_released_from_a_stream_nobody_reads_does_not_stall_the_fetchers_others() {
    let cluster = testkit::cluster();
    // One broker: both topics' partitions are fetched by the same fetcher.
    let broker = cluster.proxied_broker();
    let unread = cluster.unique("stall-unread");
    let read = cluster.unique("stall-read");
    broker.create_topic(&unread, 1);
    broker.create_topic(&read, 1);
    let group = cluster.unique("stall-group");
    let member = |id: &str| {
        connect_with(
            config(&group)
                .set("zookeeper.connect", &broker.zk_connect)
                .set("consumer.id", id)
                .set("queued.max.message.chunks", 1),
        )
    };
    // "b" reads one topic and leaves the other's stream alone.
    let b = member("b").await;
    let mut streams = b
        .create_message_streams(BTreeMap::from([(unread.clone(), 1), (read.clone(), 1)]))
        .await
        .unwrap();
    let idle = streams.remove(&unread).unwrap().remove(0);
    let seen = Collector::default();
    seen.spawn(streams.remove(&read).unwrap());
    let values: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
    broker.produce_values(&unread, 0, &values);
    wait_until("the unread stream's queue is full", LIMIT, || {
        idle.queued_chunks() == 1
    })
    .await;
    // More for the unread topic: the fetcher blocks on its full queue, and the read topic's
    // messages wait behind it.
    broker.produce_values(&unread, 0, &values);
    broker.produce_values(&read, 0, &values);

    // "a" joins for the unread topic and sorts first: it takes that partition from b. Revoked,
    // it must release the fetcher, which goes on with the read topic.
    let a = member("a").await;
    let _a_streams = a
        .create_message_streams(BTreeMap::from([(unread.clone(), 1)]))
        .await
        .unwrap();
    wait_until("the read topic delivered", LIMIT, || seen.len() >= 5).await;
    assert!(seen.snapshot().iter().all(|s| s.topic == read));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unchanged_offset_is_not_rewritten() {
    let topic = topic("norewrite", 1, 1);
    let group = testkit::cluster().unique("norewrite-group");
    let zk = zk().await;
    let consumer = connect(&group).await; // auto-commit every 200 ms
    let seen = collect_streams(&consumer, &topic, 1).await;
    produce(&topic, 1, 5, "a");
    wait_until("delivered", LIMIT, || seen.len() >= 5).await;
    let path = format!("/consumers/{group}/offsets/{topic}/0");
    let version = || async {
        zk.client()
            .check_stat(&path)
            .await
            .expect("stat")
            .map(|s| s.version)
    };
    let start = std::time::Instant::now();
    while committed(&zk, &group, &topic).await.get(&0) != Some(&5) {
        assert!(start.elapsed() < LIMIT, "never committed 5");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = version().await;
    // Three more auto-commit rounds, and a manual commit: the offset did not change.
    let rounds = consumer.metrics().commits();
    wait_until("three more commit rounds", LIMIT, || {
        consumer.metrics().commits() >= rounds + 3
    })
    .await;
    consumer.commit_offsets().await.unwrap();
    assert_eq!(
        version().await,
        written,
        "an unchanged offset was rewritten"
    );
    // A changed one is written once more.
    produce(&topic, 1, 1, "b");
    let start = std::time::Instant::now();
    while committed(&zk, &group, &topic).await.get(&0) != Some(&6) {
        assert!(start.elapsed() < LIMIT, "never committed 6");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(version().await, written.map(|v| v + 1));
    consumer.shutdown().await.unwrap();
    assert_eq!(version().await, written.map(|v| v + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_listener_hears_each_release_and_assignment_and_idle_streams_time_out() {
    let topic = topic("listen", 4, 1);
    let group = testkit::cluster().unique("listen-group");
    let first = connect(&group).await;
    let recorder = std::sync::Arc::new(Recorder::default());
    first.set_rebalance_listener(recorder.clone());
    let _seen = collect_streams(&first, &topic, 1).await;
    wait_until("first assignment heard", LIMIT, || {
        !recorder.events.lock().unwrap().is_empty()
    })
    .await;
    let all: BTreeSet<i32> = (0..4).collect();
    assert_eq!(recorder.events.lock().unwrap()[0], ("start", all.clone()));

    // A second member with consumer.timeout.ms: its idle stream reports the timeout and
    // stays usable.
    let second = connect_with(config(&group).set("consumer.timeout.ms", 300)).await;
    let mut idle = single_stream(&second, &topic).await;
    let started = std::time::Instant::now();
    let timed_out = tokio::time::timeout(LIMIT, idle.next())
        .await
        .expect("consumer.timeout.ms ends the wait")
        .expect("stream open");
    assert!(
        matches!(timed_out, Err(StreamError::Timeout(after)) if after == Duration::from_millis(300)),
        "{timed_out:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Settled once the listener heard the new assignment (it hears the release first; the
    // owned set changes before either callback runs).
    wait_until("first member settles on half", LIMIT, || {
        first.owned_partitions().len() == 2
            && recorder
                .events
                .lock()
                .unwrap()
                .last()
                .is_some_and(|(kind, partitions)| *kind == "start" && partitions.len() == 2)
    })
    .await;
    // The listener saw: all four, the release of the half that moves (the half that stays
    // is not released: it keeps flowing), then its half; every release names partitions the
    // assignment before it gave.
    let events = recorder.events.lock().unwrap().clone();
    let mut held = BTreeSet::new();
    for (kind, partitions) in &events {
        match *kind {
            "start" => held = partitions.clone(),
            _ => {
                assert!(
                    partitions.is_subset(&held),
                    "release of what was held: {events:?}"
                );
                held.retain(|p| !partitions.contains(p));
            }
        }
    }
    let mine: BTreeSet<i32> = first
        .owned_partitions()
        .keys()
        .map(|tp| tp.partition)
        .collect();
    let moved: BTreeSet<i32> = all.difference(&mine).copied().collect();
    assert!(events.contains(&("release", moved)), "{events:?}");
    assert_eq!(events.last().unwrap(), &("start", mine), "{events:?}");

    // After the timeout the stream still delivers what arrives on its partitions.
    produce(&topic, 4, 5, "t");
    let next = tokio::time::timeout(LIMIT, async {
        loop {
            match idle.next().await {
                Some(Err(StreamError::Timeout(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("a message after the timeout")
    .expect("stream open")
    .expect("a message");
    assert!(second
        .owned_partitions()
        .keys()
        .any(|tp| tp.partition == next.partition));
    second.shutdown().await.unwrap();
    first.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_cut_off_from_zookeeper_past_its_session_delivers_nothing_more_and_rejoins() {
    let cluster = testkit::cluster();
    let topic = topic("cutoff", 2, 1);
    let group = cluster.unique("cutoff-group");
    // Member A reaches ZooKeeper only through the proxy; B directly. Both reach Kafka.
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    let a = connect_through(&proxy, &group, "a").await;
    let b = zkconsumer::Consumer::connect(config(&group).set("consumer.id", "b").build().unwrap())
        .await
        .unwrap();
    let seen_a = collect_streams(&a, &topic, 1).await;
    let seen_b = collect_streams(&b, &topic, 1).await;
    let zk = zk().await;
    wait_until_owned_by(&zk, &group, &topic, &["a-0", "b-0"]).await;
    produce(&topic, 2, 10, "one");
    wait_until("first batch", LIMIT, || seen_a.len() + seen_b.len() >= 20).await;
    let a_partition = *seen_a
        .partitions()
        .iter()
        .next()
        .expect("a got a partition");
    wait_until_committed(&zk, &group, &topic, 10).await;

    // A is cut off. The server expires its session; B takes A's partition over.
    proxy.stall();
    wait_until_owned_by(&zk, &group, &topic, &["b-0", "b-0"]).await;
    let a_before = seen_a.len();
    produce(&topic, 2, 10, "two");
    wait_until(
        "B delivers the second batch of both partitions",
        LIMIT,
        || {
            seen_b
                .snapshot()
                .iter()
                .filter(|s| s.value.starts_with("two"))
                .count()
                >= 20
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A's fetcher still reaches Kafka, but A cannot know its session survived: it holds back
    // (the Java consumer would deliver these a second time).
    assert_eq!(seen_a.len(), a_before, "a cut-off member delivered more");
    assert!(seen_a
        .snapshot()
        .iter()
        .all(|s| s.partition == a_partition && s.value.starts_with("one")));

    // Reconnected, A learns its session expired, registers again and the group splits again.
    proxy.resume();
    wait_until_owned_by(&zk, &group, &topic, &["a-0", "b-0"]).await;
    produce(&topic, 2, 10, "three");
    wait_until("third batch", LIMIT, || seen_a.len() + seen_b.len() >= 60).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    seen_a.wait_ended().await;
    seen_b.wait_ended().await;
    let all: Vec<Seen> = seen_a
        .snapshot()
        .into_iter()
        .chain(seen_b.snapshot())
        .collect();
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 60, "every message exactly once");
    assert!(seen_a
        .snapshot()
        .iter()
        .any(|s| s.value.starts_with("three")));
}

/// Waits until the owner threads of the topic's partitions, as `<group>_<id>-<n>` suffixes in
/// any order, are `threads`.
async fn wait_until_owned_by(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
    threads: &[&str],
) {
    let mut wanted: Vec<String> = threads.iter().map(|t| format!("{group}_{t}")).collect();
    wanted.sort();
    let start = std::time::Instant::now();
    loop {
        let mut owners: Vec<String> = owners(zk, group, topic).await.into_values().collect();
        owners.sort();
        if owners == wanted {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "owners of {topic} are {owners:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every partition of the topic has `offset` committed.
async fn wait_until_committed(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
    offset: i64,
) {
    let start = std::time::Instant::now();
    loop {
        let c = committed(zk, group, topic).await;
        if !c.is_empty() && c.values().all(|o| *o == offset) {
            return;
        }
        assert!(start.elapsed() < LIMIT, "committed offsets stay {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zookeeper_connection_loss_within_the_session_keeps_ownership_and_loses_nothing() {
    let cluster = testkit::cluster();
    let topic = topic("connloss", 2, 1);
    let group = cluster.unique("connloss-group");
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    let consumer = connect_through(&proxy, &group, "c").await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    let zk = zk().await;
    wait_until_owned_by(&zk, &group, &topic, &["c-0", "c-0"]).await;
    produce(&topic, 2, 10, "one");
    wait_until("first batch", LIMIT, || seen.len() >= 20).await;
    let registration = format!("/consumers/{group}/ids/{group}_c");
    let session_of_registration = || async {
        let (_, stat) = zk
            .client()
            .get_data(&registration)
            .await
            .expect("registered");
        stat.ephemeral_owner
    };
    let before = session_of_registration().await;

    // Connections cut and refused for a second: well inside the 4 s session.
    proxy.refuse(true);
    proxy.cut_all();
    tokio::time::sleep(Duration::from_secs(1)).await;
    produce(&topic, 2, 10, "two");
    proxy.refuse(false);
    wait_until("second batch after reconnecting", LIMIT, || {
        seen.len() >= 40
    })
    .await;

    // Same session: the registration node is the same one, ownership never moved.
    assert_eq!(
        session_of_registration().await,
        before,
        "registration re-created by another session"
    );
    let owners = owners(&zk, &group, &topic).await;
    assert!(
        owners.values().all(|o| o == &format!("{group}_c-0")),
        "{owners:?}"
    );
    consumer.shutdown().await.unwrap();
    seen.wait_ended().await;
    let all = seen.snapshot();
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 40, "every message exactly once");
}

/// The check above accepts a message redelivered at a handover and nothing else.
#[test]
fn redelivery_check_accepts_a_handover_and_refuses_a_repeat_or_a_gap() {
    let seen = |p: i32, offsets: &[i64]| -> Vec<Seen> {
        offsets
            .iter()
            .map(|&o| Seen {
                topic: "t".into(),
                partition: p,
                offset: o,
                value: format!("{p}-{o}"),
            })
            .collect()
    };
    // Member 0 handed out 0..=2 of partition 0 and lost it before finishing 2: member 1
    // starts at 2.
    let handover = vec![seen(0, &[0, 1, 2]), seen(0, &[2, 3, 4])];
    assert_at_least_once_redelivering_only_at_handovers(&handover, 5);
    let caught = |sequences: Vec<Vec<Seen>>, total: usize| {
        std::panic::catch_unwind(|| {
            assert_at_least_once_redelivering_only_at_handovers(&sequences, total)
        })
        .is_err()
    };
    // Offset 1 repeated in the middle of both runs: not a handover.
    assert!(caught(vec![seen(0, &[0, 1, 2]), seen(0, &[1, 2, 3, 4])], 5));
    // Offset 3 never delivered.
    assert!(caught(vec![seen(0, &[0, 1, 2]), seen(0, &[4])], 5));
    // Three deliveries of one message.
    assert!(caught(
        vec![seen(0, &[0, 1]), seen(0, &[1]), seen(0, &[1, 2])],
        3
    ));
}
