//! Rebalances whose work grows with what changed, not with the group's size (issue 17): the
//! registration cache against a real ZooKeeper, a burst of joins served by one attempt, and a
//! group shared with Kafka's own consumer staying exact through joins, a replacement under the
//! same id and leaves.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use zkconsumer::config::AssignmentStrategy;
use zkconsumer::group::assign;
use zkconsumer::group::identity::ConsumerId;
use zkconsumer::group::registrations::RegistrationCache;
use zkconsumer::zk::layout::Registration;
use zkconsumer::zk::session::ZkSession;
use zkconsumer::Consumer;

const LIMIT: Duration = Duration::from_secs(60);

/// Creates a registration node at `path` subscribing to topic `t` with `streams` streams.
async fn register(zk: &ZkSession, path: &str, streams: u32) {
    let json = Registration::new_static(BTreeMap::from([("t".to_string(), streams)]), 1).to_json();
    zk.create_ephemeral(path, json.as_bytes())
        .await
        .expect("register");
}

/// Lists the members under `ids_path` and brings `cache` to them, as a rebalance does.
async fn refresh(cache: &mut RegistrationCache, reader: &ZkSession, ids_path: &str) -> Vec<String> {
    let mut ids = reader.children(ids_path).await.expect("ids");
    ids.sort();
    cache.update(reader, ids_path, &ids).await.expect("update");
    ids
}

/// The stream count `cache` holds for member `id` on `topic`.
fn cached_streams(cache: &RegistrationCache, id: &str, topic: &str) -> Option<u32> {
    let registered = cache.get(id)?;
    let reg = registered.registration.as_ref().expect("parsed");
    reg.subscription.get(topic).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_cache_reads_each_node_once_and_sees_a_member_replaced_under_the_same_id() {
    let group = testkit::cluster().unique("cache-group");
    let ids_path = format!("/consumers/{group}/ids");
    // The members' own session, and the reader's (whose watches the cache holds).
    let members = zk().await;
    let reader = zk().await;
    let (a, b) = ("a", "b");
    register(&members, &format!("{ids_path}/{a}"), 1).await;
    register(&members, &format!("{ids_path}/{b}"), 1).await;
    let mut cache = RegistrationCache::default();
    let ids = refresh(&mut cache, &reader, &ids_path).await;
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(cache.reads(), 2);
    let first_czxid = cache.get(a).expect("a cached").czxid;
    assert_eq!(cached_streams(&cache, a, "t"), Some(1));

    // Nothing changed: nothing is read.
    refresh(&mut cache, &reader, &ids_path).await;
    assert_eq!(cache.reads(), 2);

    // a is replaced under the same id with another subscription: the member list looks the
    // same, the node is new.
    members
        .delete(&format!("{ids_path}/{a}"))
        .await
        .expect("delete a");
    register(&members, &format!("{ids_path}/{a}"), 3).await;
    let ids = refresh(&mut cache, &reader, &ids_path).await;
    assert_eq!(
        ids,
        ["a", "b"],
        "the list alone does not show the replacement"
    );
    assert_eq!(cache.reads(), 3, "only the replaced node is read again");
    let replaced = cache.get(a).expect("a cached");
    assert!(
        replaced.czxid > first_czxid,
        "new node, new czxid: {} then {}",
        first_czxid,
        replaced.czxid
    );
    assert_eq!(cached_streams(&cache, a, "t"), Some(3));
    assert_eq!(cached_streams(&cache, b, "t"), Some(1));

    // b leaves: forgotten without a read.
    members
        .delete(&format!("{ids_path}/{b}"))
        .await
        .expect("delete b");
    refresh(&mut cache, &reader, &ids_path).await;
    assert!(cache.get(b).is_none());
    assert_eq!(cache.reads(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_twenty_joins_costs_one_attempt_and_twenty_registration_reads() {
    let cluster = testkit::cluster();
    let topic = topic("burst", 42, 1);
    let group = cluster.unique("burst-group");
    let zk = zk().await;
    // The first member reaches ZooKeeper through a proxy that is stalled while the burst
    // happens: it hears of it afterwards, all at once. A session long enough to outlast the
    // stall.
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    let chroot = &cluster.zk_connect()[cluster.zk_hosts().len()..];
    let first = connect_with(
        config(&group)
            .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
            .set("consumer.id", "first")
            .set("zookeeper.session.timeout.ms", 30_000),
    )
    .await;
    let _first_stream = single_stream(&first, &topic).await;
    wait_until("the first member owns everything", LIMIT, || {
        first.owned_partitions().len() == 42
    })
    .await;
    wait_rebalanced(&first, 0, LIMIT).await;
    let metrics = first.metrics();
    let (attempts, reads, rebalances) = (
        metrics.rebalance_attempts(),
        metrics.registrations_read(),
        *first.rebalances().borrow(),
    );

    proxy.stall();
    let joined: Vec<(Consumer, zkconsumer::MessageStream)> =
        futures::future::join_all((0..20).map(|_| async {
            let c = connect(&group).await;
            let s = single_stream(&c, &topic).await;
            (c, s)
        }))
        .await;
    let ids_path = format!("/consumers/{group}/ids");
    let start = Instant::now();
    while zk.children(&ids_path).await.expect("ids").len() < 21 {
        assert!(start.elapsed() < LIMIT, "the twenty did not register");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.resume();

    // Whatever its place in the order, "first"'s new share is part of what it owned: kept,
    // nothing to claim, so its one attempt cannot meet a conflict.
    wait_until("the group of 21 is valid", LIMIT, || {
        joined.iter().all(|(c, _)| c.owned_partitions().len() == 2)
            && first.owned_partitions().len() == 2
    })
    .await;
    wait_rebalanced(&first, rebalances, LIMIT).await;
    assert_eq!(
        metrics.registrations_read() - reads,
        20,
        "each new registration read once, none of the known ones again"
    );
    assert_eq!(
        metrics.rebalance_attempts() - attempts,
        1,
        "the twenty joins were served by one attempt"
    );
    assert_eq!(*first.rebalances().borrow() - rebalances, 1);
    for (c, _) in &joined {
        c.shutdown().await.expect("shutdown");
    }
    first.shutdown().await.expect("shutdown");
}

/// The owner of each partition of `topic` as range assignment gives it for the members
/// registered now (what Kafka's own consumer computes); `None` while a node cannot be read.
async fn range_expected(
    zk: &ZkSession,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Option<BTreeMap<i32, String>> {
    let ids_path = format!("/consumers/{group}/ids");
    let mut members = BTreeMap::new();
    for id in zk.children(&ids_path).await.ok()? {
        let path = format!("{ids_path}/{id}");
        let data = zk.get_data(&path).await.ok()??;
        let reg = Registration::parse(&path, &data).expect("registration");
        let counts = assign::member_topic_counts(&reg, &[topic.to_string()], true).expect("counts");
        members.insert(ConsumerId::parse(&id), counts);
    }
    let global = assign::assign(
        AssignmentStrategy::Range,
        &BTreeMap::from([(topic.to_string(), (0..partitions).collect())]),
        &assign::consumers_per_topic(&members),
    )
    .expect("range");
    Some(
        global
            .into_iter()
            .map(|(tp, thread)| (tp.partition, thread.as_str().to_string()))
            .collect(),
    )
}

/// Waits until the owner nodes are exactly what range assignment gives the registered members.
async fn wait_exact(zk: &ZkSession, group: &str, topic: &str, partitions: i32, what: &str) {
    let start = Instant::now();
    loop {
        let expected = range_expected(zk, group, topic, partitions).await;
        let owned = owners(zk, group, topic).await;
        if expected.as_ref() == Some(&owned) {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{what}: owners {owned:?}, range gives {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn member_with(group: &str, topic: &str, id: &str, streams: u32) -> Consumer {
    let c = connect_with(config(group).set("consumer.id", id)).await;
    let streams = c
        .create_message_streams(BTreeMap::from([(topic.to_string(), streams)]))
        .await
        .expect("streams");
    // Drained, so fetchers never block on full queues.
    for mut s in streams.into_values().flatten() {
        tokio::spawn(async move { while let Some(Ok(_)) = s.next().await {} });
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
async fn a_group_shared_with_the_java_consumer_stays_exact_through_joins_a_replacement_and_leaves()
{
    let cluster = testkit::cluster();
    cluster.require_control();
    let partitions = 24;
    let topic = topic("herd-interop", partitions, 1);
    let group = cluster.unique("herd-interop-group");
    let zk = zk().await;
    // Patient, as bursts of changes make Java members retry.
    let mut java = spawn_java_member(
        &group,
        &["--topic", &topic],
        "rebalance.max.retries=30\nrebalance.backoff.ms=500",
    );
    wait_until_owned(&zk, &group, &topic, partitions).await;
    let mut ours = vec![
        member_with(&group, &topic, "fixed", 1).await,
        member_with(&group, &topic, "other", 1).await,
    ];
    wait_exact(&zk, &group, &topic, partitions, "java + 2").await;

    // A burst of joins.
    let burst = futures::future::join_all((0..6).map(|i| {
        let (group, topic) = (group.clone(), topic.clone());
        async move { member_with(&group, &topic, &format!("burst-{i}"), 1).await }
    }))
    .await;
    ours.extend(burst);
    wait_exact(&zk, &group, &topic, partitions, "java + 8").await;

    // "fixed" replaced under the same id, now with three streams.
    let fixed = ours.remove(0);
    fixed.shutdown().await.expect("shutdown");
    ours.push(member_with(&group, &topic, "fixed", 3).await);
    wait_exact(&zk, &group, &topic, partitions, "after the replacement").await;

    // Half of ours leave together.
    let leaving: Vec<Consumer> = ours.drain(..4).collect();
    futures::future::join_all(leaving.iter().map(|c| c.shutdown())).await;
    wait_exact(&zk, &group, &topic, partitions, "after four left").await;

    for c in &ours {
        c.shutdown().await.expect("shutdown");
    }
    let _ = java.kill();
    let _ = java.wait();
}

async fn wait_until_owned(zk: &ZkSession, group: &str, topic: &str, partitions: i32) {
    let start = Instant::now();
    while owners(zk, group, topic).await.len() != partitions as usize {
        assert!(start.elapsed() < LIMIT, "java member never owned {topic}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a static member's rebalance asks ZooKeeper when one member joins its group: the
/// member list, the newcomer's registration, its topic's partitions, and the release of the
/// partition that moves (its owner node read, then deleted). Not the brokers (cached while
/// their list does not change), not the topic list (only a filter needs it), not the known
/// members' registrations; the newcomer read the group before it registered, so its own
/// attempt reads no registration either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_costs_the_members_rebalance_only_requests_about_what_changed() {
    let topic = topic("join-cost", 2, 1);
    let group = testkit::cluster().unique("join-cost-group");
    // Range gives "a" partition 0 and "b" partition 1. Offsets committed beforehand and
    // nothing produced: no offset changes, so the release commits nothing.
    commit_zero_offsets(&group, &topic, 2).await;
    let a = member_with(&group, &topic, "a", 1).await;
    wait_until("a owns both partitions", LIMIT, || {
        a.owned_partitions().len() == 2
    })
    .await;
    wait_rebalanced(&a, 0, LIMIT).await;
    let (requests, rebalances) = (a.zookeeper_requests(), *a.rebalances().borrow());
    let attempts = a.metrics().rebalance_attempts();

    let b = member_with(&group, &topic, "b", 1).await;
    assert_eq!(
        b.metrics().registrations_read(),
        1,
        "b read a's registration before it registered"
    );
    wait_until("a and b own one partition each", LIMIT, || {
        a.owned_partitions().len() == 1 && b.owned_partitions().len() == 1
    })
    .await;
    wait_rebalanced(&a, rebalances, LIMIT).await;
    assert_eq!(a.metrics().rebalance_attempts() - attempts, 1);
    assert_eq!(
        b.metrics().registrations_read(),
        1,
        "b's rebalance read no registration again"
    );
    // ids (1) + b's registration (1) + the topic's node (1) + partition 1's owner node read
    // and delete (2). Reading the brokers and the topic list as well made it 10.
    assert_eq!(a.zookeeper_requests() - requests, 5);
    b.shutdown().await.expect("shutdown");
    a.shutdown().await.expect("shutdown");
}

/// The owner nodes a rebalance releases are deleted in one request (ZooKeeper's multi),
/// after being read to check they are still ours: releasing two partitions costs two reads
/// and one delete, not two deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_deletes_its_owner_nodes_in_one_request() {
    let topic = topic("release-cost", 4, 1);
    let group = testkit::cluster().unique("release-cost-group");
    // Offsets committed beforehand and nothing produced: the release commits nothing.
    commit_zero_offsets(&group, &topic, 4).await;
    let zk = zk().await;
    let a = member_with(&group, &topic, "a", 1).await;
    wait_until("a owns the four partitions", LIMIT, || {
        a.owned_partitions().len() == 4
    })
    .await;
    wait_rebalanced(&a, 0, LIMIT).await;
    let (requests, rebalances) = (a.zookeeper_requests(), *a.rebalances().borrow());
    // Range: "a" keeps partitions 0 and 1, "b" gets 2 and 3.
    let b = member_with(&group, &topic, "b", 1).await;
    wait_until("a and b own two partitions each", LIMIT, || {
        a.owned_partitions().len() == 2 && b.owned_partitions().len() == 2
    })
    .await;
    wait_rebalanced(&a, rebalances, LIMIT).await;
    for partition in 2..4 {
        let owner = zk
            .get_data(&format!("/consumers/{group}/owners/{topic}/{partition}"))
            .await
            .expect("owner node")
            .expect("owned");
        assert_eq!(
            String::from_utf8_lossy(&owner),
            format!("{group}_b-0"),
            "partition {partition} is b's"
        );
    }
    // ids (1) + b's registration (1) + the topic's node (1) + the two owner nodes read (2)
    // and deleted together (1). One delete each made it 7.
    assert_eq!(a.zookeeper_requests() - requests, 6);
    b.shutdown().await.expect("shutdown");
    a.shutdown().await.expect("shutdown");
}

/// Offset 0 committed for `partitions` partitions of `topic` in `group`, with nothing
/// produced: a release then has no offset change to commit.
async fn commit_zero_offsets(group: &str, topic: &str, partitions: i32) {
    let zk = zk().await;
    for partition in 0..partitions {
        zk.write_persistent(
            &format!("/consumers/{group}/offsets/{topic}/{partition}"),
            b"0",
        )
        .await
        .expect("offset");
    }
}
