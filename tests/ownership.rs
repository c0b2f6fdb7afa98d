//! Ownership holes of the coordinator, each against real ZooKeeper and Kafka: the liveness gate
//! follows the session timeout the server granted, an owner node left by an errored create is
//! cleaned up, an owner node whose delete failed is deleted without waiting for a rebalance,
//! unrelated topics do not rebalance a filter member, a duplicate `consumer.id` is
//! an error, a watch is never dropped on an error path (ZooKeeper 3.4 would cut the
//! connection), a claim that meets several held partitions keeps its nodes and waits for all.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use zkconsumer::{Consumer, TopicFilter};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits until the owner nodes of `topic` are exactly `wanted` (partition -> `<group>_<thread>`).
async fn wait_owners(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
    wanted: &[(i32, &str)],
    limit: Duration,
) {
    let wanted: BTreeMap<i32, String> = wanted
        .iter()
        .map(|(p, t)| (*p, format!("{group}_{t}")))
        .collect();
    let start = std::time::Instant::now();
    loop {
        let now = owners(zk, group, topic).await;
        if now == wanted {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "owners of {topic} are {now:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_consumer_id_is_an_error_naming_it_and_the_first_member_keeps_its_node() {
    let cluster = testkit::cluster();
    let topic = topic("dupid", 1, 1);
    let group = cluster.unique("dupid-group");
    init_logs();
    let first = Consumer::connect(config(&group).set("consumer.id", "twin").build().unwrap())
        .await
        .unwrap();
    let _seen = collect_streams(&first, &topic, 1).await;
    let zk = zk().await;
    wait_owners(&zk, &group, &topic, &[(0, "twin-0")], LIMIT).await;
    let path = format!("/consumers/{group}/ids/{group}_twin");
    let holder = zk.ephemeral_owner(&path).await.unwrap();
    assert!(holder.is_some_and(|s| s != 0), "first member registered");

    let second = Consumer::connect(config(&group).set("consumer.id", "twin").build().unwrap())
        .await
        .unwrap();
    let error = second
        .create_message_streams(BTreeMap::from([(topic.clone(), 1)]))
        .await
        .expect_err("a second member with the same consumer.id must not register");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{group}_twin")) && message.contains("consumer.id"),
        "error names the id: {message}"
    );
    // The first member's registration is the same node, and it still owns its partition.
    assert_eq!(zk.ephemeral_owner(&path).await.unwrap(), holder);
    wait_owners(&zk, &group, &topic, &[(0, "twin-0")], LIMIT).await;
    second.shutdown().await.unwrap();
    first.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_node_created_by_an_errored_call_is_removed_when_the_partition_moves() {
    let cluster = testkit::cluster();
    let topic = topic("stray", 2, 1);
    let group = cluster.unique("stray-group");
    init_logs();
    // A reaches ZooKeeper through a proxy that garbles the answer to its create of the owner
    // node of partition 1: the node exists, but A's call reports an error.
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    proxy.corrupt_next_answer_containing(format!("owners/{topic}/1").as_bytes());
    let chroot = &cluster.zk_connect()[cluster.zk_hosts().len()..];
    let a = Consumer::connect(
        config(&group)
            .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
            .set("consumer.id", "a")
            .set("rebalance.backoff.ms", 4000)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen_a = collect_streams(&a, &topic, 1).await;
    wait_until("A's create of partition 1 errored", LIMIT, || {
        proxy.corrupted() == 1
    })
    .await;
    let zk = zk().await;
    assert_eq!(
        owners(&zk, &group, &topic).await,
        BTreeMap::from([(1, format!("{group}_a-0"))]),
        "the errored create was applied"
    );

    // B joins while A backs off: partition 1 is B's now, and A's leftover node must go.
    let b = Consumer::connect(config(&group).set("consumer.id", "b").build().unwrap())
        .await
        .unwrap();
    let seen_b = collect_streams(&b, &topic, 1).await;
    wait_owners(&zk, &group, &topic, &[(0, "a-0"), (1, "b-0")], LIMIT).await;
    produce(&topic, 2, 5, "m");
    wait_until("both partitions delivered", LIMIT, || {
        seen_a.len() + seen_b.len() >= 10
    })
    .await;
    assert_eq!(seen_b.partitions(), [1].into());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(owners(&zk, &group, &topic).await.is_empty());
}

/// A's delete of its owner node for partition 1 fails (the real server refuses it) when B's
/// join moves that partition to B, and no rebalance follows: A must delete the node on its
/// own, so B owns partition 1 and reads it without any further rebalance; every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_owner_node_delete_is_retried_without_a_further_rebalance() {
    let cluster = testkit::cluster();
    let topic = topic("undeleted", 2, 1);
    let group = cluster.unique("undeleted-group");
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    let a = connect_through(&proxy, &group, "a").await;
    let seen_a = collect_streams(&a, &topic, 1).await;
    let zk = zk().await;
    wait_owners(&zk, &group, &topic, &[(0, "a-0"), (1, "a-0")], LIMIT).await;
    let mut expected = produce(&topic, 2, 5, "before");
    wait_until("A read the first messages", LIMIT, || seen_a.len() >= 10).await;
    let attempts_a = a.metrics().rebalance_attempts();

    // B joins: range gives partition 1 to b-0, and A's deletes of its node fail: the one
    // of the release and the one of the same attempt's stray removal (a ZooKeeper hiccup of
    // a few milliseconds fails both).
    proxy.fail_next_deletes_of(&format!("/owners/{topic}/1"), 2);
    let b = Consumer::connect(
        config(&group)
            .set("consumer.id", "b")
            // No clock-driven retry of B's claim inside the test: only the node going counts.
            .set("rebalance.backoff.ms", 60_000)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen_b = collect_streams(&b, &topic, 1).await;
    wait_until(
        "A's deletes of its node for partition 1 failed",
        LIMIT,
        || proxy.deletes_failed() == 2,
    )
    .await;
    // Before the fix the node stayed as long as A's session: B waited on it for good.
    wait_owners(
        &zk,
        &group,
        &topic,
        &[(0, "a-0"), (1, "b-0")],
        Duration::from_secs(20),
    )
    .await;
    // One attempt of A's for B's join, none after: the node went without a rebalance.
    assert_eq!(a.metrics().rebalance_attempts(), attempts_a + 1);

    expected += produce(&topic, 2, 5, "after");
    wait_until("every message delivered", LIMIT, || {
        seen_a.len() + seen_b.len() >= expected
    })
    .await;
    assert_eq!(seen_b.partitions(), [1].into());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let mut all = seen_a.snapshot();
    all.extend(seen_b.snapshot());
    assert_no_duplicates(&all);
    let values: std::collections::BTreeSet<String> = all.iter().map(|s| s.value.clone()).collect();
    assert_eq!(values.len(), expected, "every message once: {values:?}");
    assert_eq!(all.len(), expected);
    assert!(seen_b
        .snapshot()
        .iter()
        .any(|s| s.value.starts_with("after-1-")));
    assert!(owners(&zk, &group, &topic).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whitelist_member_does_not_rebalance_when_an_unrelated_topic_appears() {
    let cluster = testkit::cluster();
    let prefix = cluster.unique("wlonly");
    let first = format!("{prefix}-x");
    cluster.create_topic(&first, 1, 1);
    let group = cluster.unique("wlonly-group");
    let consumer = connect(&group).await;
    let collector = Collector::default();
    collector.spawn(
        consumer
            .create_message_streams_by_filter(
                TopicFilter::whitelist(&format!("{prefix}-.*")).unwrap(),
                1,
            )
            .await
            .unwrap(),
    );
    let rebalances = consumer.rebalances();
    wait_rebalanced(&consumer, 0, LIMIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = *rebalances.borrow();

    cluster.create_topic(&cluster.unique("unrelated"), 1, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        *rebalances.borrow(),
        before,
        "an unrelated topic rebalanced a whitelist member"
    );

    // A matching topic does rebalance, and is consumed.
    let second = format!("{prefix}-y");
    cluster.create_topic(&second, 1, 1);
    wait_rebalanced(&consumer, before, LIMIT).await;
    cluster.produce_values(&second, 0, &["late"]);
    wait_until("the new topic delivered", LIMIT, || collector.len() >= 1).await;
    assert_eq!(collector.snapshot()[0].topic, second);
    consumer.shutdown().await.unwrap();
}

/// A session on `chroot` of another ZooKeeper, holding copies of the cluster's broker nodes and
/// of `topic`'s node (what a member reads there; its fetchers reach the real brokers).
async fn mirror_brokers_and_topic(
    server: &testkit::ExtraZooKeeper,
    chroot: &str,
    topic: &str,
) -> zkconsumer::zk::session::ZkSession {
    let source = zk().await;
    let copy = zkconsumer::zk::session::ZkSession::connect(zkconsumer::zk::session::ZkSettings {
        connect: format!("{}{chroot}", server.address),
        session_timeout: Duration::from_secs(4),
        connection_timeout: Duration::from_secs(10),
        server_version: server.version,
    })
    .await
    .unwrap();
    let mut nodes = vec![format!("/brokers/topics/{topic}")];
    for id in source.children("/brokers/ids").await.unwrap() {
        nodes.push(format!("/brokers/ids/{id}"));
    }
    for node in &nodes {
        let data = source.get_data(node).await.unwrap().expect("node");
        copy.write_persistent(node, &data).await.unwrap();
    }
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_member_stops_delivering_within_the_session_timeout_the_server_granted() {
    let cluster = testkit::cluster();
    let topic = topic("granted", 1, 1);
    let group = cluster.unique("granted-group");
    init_logs();
    // A ZooKeeper that grants at most 4 s (ticks of 200 ms) while the member asks for 20 s,
    // holding copies of the cluster's broker and topic nodes.
    let server = cluster.extra_zookeeper(200, 4000);
    let chroot = "/granted";
    let copy = mirror_brokers_and_topic(&server, chroot, &topic).await;

    let proxy = testkit::FaultProxy::start(&server.address);
    let member = Consumer::connect(
        config(&group)
            .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
            .set("zookeeper.server.version", version_string(server.version))
            .set("zookeeper.session.timeout.ms", 20_000)
            .set("consumer.id", "cut")
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen = collect_streams(&member, &topic, 1).await;
    produce(&topic, 1, 5, "before");
    wait_until("first batch", LIMIT, || seen.len() >= 5).await;
    let start = std::time::Instant::now();
    while committed(&copy, &group, &topic).await.get(&0) != Some(&5) {
        assert!(start.elapsed() < LIMIT, "first batch never committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Cut off from ZooKeeper (Kafka still reachable). The server expires the session 4 s
    // after it last heard from the member; the member must stop delivering before that, not
    // two thirds of the 20 s it asked for.
    proxy.stall();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    produce(&topic, 1, 5, "after");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let late: Vec<Seen> = seen
        .snapshot()
        .into_iter()
        .filter(|s| s.value.starts_with("after"))
        .collect();
    assert!(
        late.is_empty(),
        "delivered after the granted session ran out: {late:?}"
    );

    // Reconnected, it learns of the expiry, registers again and delivers the rest once.
    proxy.resume();
    wait_until("second batch after rejoining", LIMIT, || seen.len() >= 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_duplicates(&seen.snapshot());
    assert_eq!(seen.len(), 10);
    member.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_claims_a_contended_partition_the_moment_its_owner_node_goes_away() {
    let cluster = testkit::cluster();
    let topic = topic("contended", 1, 1);
    let group = cluster.unique("contended-group");
    init_logs();
    // A slow member (as a Java member in its 2 s backoff) still holds partition 0.
    let slow = zk().await;
    let owner = format!("/consumers/{group}/owners/{topic}/0");
    slow.create_ephemeral(&owner, format!("{group}_slow-0").as_bytes())
        .await
        .unwrap();
    // Backoff of a minute: jittered, at least 30 s before a clock-driven retry.
    let member = Consumer::connect(
        config(&group)
            .set("consumer.id", "fast")
            .set("rebalance.backoff.ms", 60_000)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen = collect_streams(&member, &topic, 1).await;
    let zk = zk().await;
    // The member met the slow owner's node and waits on a watch of it.
    wait_until("the member's claim met the slow owner", LIMIT, || {
        member.metrics().ownership_waits() >= 1
    })
    .await;
    assert_eq!(
        owners(&zk, &group, &topic).await,
        BTreeMap::from([(0, format!("{group}_slow-0"))])
    );

    // Released: claimed right away, far inside the backoff (at least 30 s), woken by the
    // watch: one wait, no retry round meanwhile.
    slow.delete(&owner).await.unwrap();
    wait_owners(
        &zk,
        &group,
        &topic,
        &[(0, "fast-0")],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(member.metrics().ownership_waits(), 1);
    assert_eq!(member.metrics().rebalance_failures(), 1);
    produce(&topic, 1, 3, "m");
    wait_until("delivered", LIMIT, || seen.len() >= 3).await;
    member.shutdown().await.unwrap();
}

/// Two of four partitions still held by a slow member: the joiner keeps the two nodes it
/// created while it waits (Java deletes and re-creates them on every retry), and waits for
/// both held nodes at once: one wait, one failed attempt, not one per contended node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_meeting_several_held_partitions_keeps_its_nodes_and_waits_for_all_at_once() {
    let cluster = testkit::cluster();
    let topic = topic("contended-many", 4, 1);
    let group = cluster.unique("contended-many-group");
    init_logs();
    let slow = zk().await;
    for p in [0, 1] {
        let owner = format!("/consumers/{group}/owners/{topic}/{p}");
        slow.create_ephemeral(&owner, format!("{group}_slow-0").as_bytes())
            .await
            .unwrap();
    }
    // Backoff of a minute: jittered, at least 30 s before a clock-driven retry.
    let member = Consumer::connect(
        config(&group)
            .set("consumer.id", "fast")
            .set("rebalance.backoff.ms", 60_000)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen = collect_streams(&member, &topic, 1).await;
    let zk = zk().await;
    wait_until("the member's claim met the slow owner", LIMIT, || {
        member.metrics().ownership_waits() >= 1
    })
    .await;
    let slow_node = format!("{group}_slow-0");
    let fast_node = format!("{group}_fast-0");
    assert_eq!(
        owners(&zk, &group, &topic).await,
        BTreeMap::from([
            (0, slow_node.clone()),
            (1, slow_node),
            (2, fast_node.clone()),
            (3, fast_node),
        ]),
        "while it waits, the member keeps the nodes it created"
    );
    for p in [0, 1] {
        slow.delete(&format!("/consumers/{group}/owners/{topic}/{p}"))
            .await
            .unwrap();
    }
    wait_owners(
        &zk,
        &group,
        &topic,
        &[(0, "fast-0"), (1, "fast-0"), (2, "fast-0"), (3, "fast-0")],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(member.metrics().ownership_waits(), 1);
    assert_eq!(member.metrics().rebalance_failures(), 1);
    produce(&topic, 4, 3, "m");
    wait_until("delivered", LIMIT, || seen.len() >= 12).await;
    member.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ZooKeeper 3.4.6 in ../shared/zookeeper-3.4: run with --include-ignored"]
async fn a_failed_attempt_keeps_its_watches_so_zookeeper_3_4_keeps_the_connection() {
    let cluster = testkit::cluster();
    assert!(
        testkit::shared_dir()
            .map(|s| s.join("zookeeper-3.4"))
            .is_some_and(|p| p.is_dir()),
        "this test needs ../shared/zookeeper-3.4 (ZooKeeper 3.4.6)"
    );
    let topic = topic("keepwatch", 1, 1);
    let group = cluster.unique("keepwatch-group");
    init_logs();
    // ZooKeeper 3.4.6 answers RemoveWatches (sent when a pending watch is dropped) by closing
    // the connection.
    let server = cluster.extra_zookeeper_of_lane("3.4", 500, 60_000);
    let chroot = "/keepwatch";
    let copy = mirror_brokers_and_topic(&server, chroot, &topic).await;
    // A member registration nobody may read: every attempt fails after setting its watch on
    // the member list.
    let ids = format!("/consumers/{group}/ids");
    copy.write_persistent(&ids, b"").await.unwrap();
    let locked = format!("{ids}/{group}_locked");
    let nobody = [zookeeper_client::Acl::new(
        zookeeper_client::Permission::ALL,
        zookeeper_client::AuthId::new("digest", "nobody:AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    )];
    copy.client()
        .create(
            &locked,
            b"{}",
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::new(&nobody)),
        )
        .await
        .unwrap();

    let proxy = testkit::FaultProxy::start(&server.address);
    let member = Consumer::connect(
        config(&group)
            .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
            .set("zookeeper.server.version", "3.4.6")
            .set("consumer.id", "m")
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let connections = proxy.connections();
    let seen = collect_streams(&member, &topic, 1).await;
    // Attempts fail (after setting their watches), one after another.
    wait_until("two failed attempts", LIMIT, || {
        member.metrics().rebalance_failures() >= 2
    })
    .await;
    assert!(member.owned_partitions().is_empty());
    assert_eq!(
        proxy.connections(),
        connections,
        "a failed attempt dropped a watch and ZooKeeper 3.4 closed the connection"
    );

    // Readable group again: the member list watch (kept) wakes the member, which takes over.
    copy.delete(&locked).await.unwrap();
    wait_until("the member owns the partition", LIMIT, || {
        member.owned_partitions().len() == 1
    })
    .await;
    produce(&topic, 1, 3, "m");
    wait_until("delivered", LIMIT, || seen.len() >= 3).await;
    assert_eq!(proxy.connections(), connections);
    member.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_stored_offsets_of_an_assignment_are_read_over_one_connection() {
    let cluster = testkit::cluster();
    // One broker, on a chroot of its own, reached through a proxy that counts connections.
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("kstore");
    broker.create_topic(&topic, 8);
    let values: Vec<String> = (0..3).map(|i| format!("v{i}")).collect();
    for p in 0..8 {
        broker.produce_values(&topic, p, &values);
    }
    let group = cluster.unique("kstore-group");
    init_logs();
    let before = broker.proxy.connections();
    let member = Consumer::connect(
        config(&group)
            .set("zookeeper.connect", &broker.zk_connect)
            .set("offsets.storage", "kafka")
            .set("auto.commit.enable", false)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let seen = collect_streams(&member, &topic, 1).await;
    wait_until("all 8 partitions delivered", LIMIT, || seen.len() >= 24).await;
    // The offsets of 8 partitions: one OffsetFetch over one client (one connection), plus the
    // fetcher's; one client (and connection) per partition before.
    let used = broker.proxy.connections() - before;
    assert!(
        used <= 3,
        "{used} connections to the broker to start consuming 8 partitions"
    );
    member.shutdown().await.unwrap();
}

/// A rebalance listener that holds `before_releasing_partitions` until [`Gate::open`] (a
/// member slow to release: its owner nodes stay while it waits), with a deadline.
#[derive(Default)]
struct Gate {
    entered: std::sync::atomic::AtomicUsize,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl zkconsumer::RebalanceListener for Gate {
    fn before_releasing_partitions(
        &self,
        _owned: &BTreeMap<String, std::collections::BTreeSet<i32>>,
    ) {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let (open, _) = self
            .opened
            .wait_timeout_while(open, LIMIT, |open| !*open)
            .unwrap();
        assert!(*open, "the test never let the release go on");
    }
}

/// Owner node per partition: (data, creation zxid, owning session).
async fn owner_facts(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, (String, i64, i64)> {
    let mut facts = BTreeMap::new();
    for (p, data) in owners(zk, group, topic).await {
        let path = format!("/consumers/{group}/owners/{topic}/{p}");
        if let Some(stat) = zk.client().check_stat(&path).await.expect("stat") {
            facts.insert(p, (data, stat.czxid, stat.ephemeral_owner));
        }
    }
    facts
}

/// `holder` owns all four partitions; `joiner` joins while `holder` holds its release (its
/// listener waits): `joiner` must wait, never delete `holder`'s nodes, whatever their text;
/// then one of them leaves. Every message is delivered once.
async fn slow_release_then_leave(holder_id: &str, joiner_id: &str, holder_leaves_first: bool) {
    let cluster = testkit::cluster();
    let topic = topic("idprefix", 4, 1);
    let group = cluster.unique("idprefix-group");
    let zk = zk().await;
    let member = |id: &str| connect_with(config(&group).set("consumer.id", id));
    let holder = member(holder_id).await;
    let gate = std::sync::Arc::new(Gate::default());
    holder.set_rebalance_listener(gate.clone());
    let seen_holder = collect_streams(&holder, &topic, 1).await;
    produce(&topic, 4, 5, "one");
    wait_until("first batch", LIMIT, || seen_holder.len() >= 20).await;
    let before = owner_facts(&zk, &group, &topic).await;
    let holder_thread = format!("{group}_{holder_id}-0");
    assert!(
        before.len() == 4 && before.values().all(|(data, _, _)| *data == holder_thread),
        "{before:?}"
    );

    let joiner = member(joiner_id).await;
    let seen_joiner = collect_streams(&joiner, &topic, 1).await;
    // Range: the member whose id sorts first takes partitions 0 and 1.
    let joiner_first = format!("{group}_{joiner_id}") < format!("{group}_{holder_id}");
    if joiner_first {
        // The joiner meets the holder's nodes (0 and 1 move to it) while the holder holds on:
        // wait until it waits for them, or until a node changed (the failure).
        let start = std::time::Instant::now();
        while joiner.metrics().ownership_waits() == 0
            && owner_facts(&zk, &group, &topic).await == before
        {
            assert!(
                start.elapsed() < LIMIT,
                "the joiner never met the holder's nodes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            owner_facts(&zk, &group, &topic).await,
            before,
            "{joiner_id} replaced an owner node of the live member {holder_id}"
        );
        assert!(joiner.owned_partitions().is_empty());
    }
    gate.open();
    let (first, second) = if joiner_first {
        (joiner_id, holder_id)
    } else {
        (holder_id, joiner_id)
    };
    wait_owners(
        &zk,
        &group,
        &topic,
        &[
            (0, &format!("{first}-0")),
            (1, &format!("{first}-0")),
            (2, &format!("{second}-0")),
            (3, &format!("{second}-0")),
        ],
        LIMIT,
    )
    .await;
    produce(&topic, 4, 5, "two");
    wait_until("second batch", LIMIT, || {
        seen_holder.len() + seen_joiner.len() >= 40
    })
    .await;

    // One leaves; the other takes everything, and nothing of the leaver's is left behind.
    let (leaver, stayer, stayer_id) = if holder_leaves_first {
        (&holder, &joiner, joiner_id)
    } else {
        (&joiner, &holder, holder_id)
    };
    leaver.shutdown().await.unwrap();
    let everything: Vec<(i32, String)> = (0..4).map(|p| (p, format!("{stayer_id}-0"))).collect();
    let wanted: Vec<(i32, &str)> = everything.iter().map(|(p, t)| (*p, t.as_str())).collect();
    wait_owners(&zk, &group, &topic, &wanted, LIMIT).await;
    produce(&topic, 4, 5, "three");
    wait_until("third batch", LIMIT, || {
        seen_holder.len() + seen_joiner.len() >= 60
    })
    .await;
    stayer.shutdown().await.unwrap();
    seen_holder.wait_ended().await;
    seen_joiner.wait_ended().await;
    let mut all = seen_holder.snapshot();
    all.extend(seen_joiner.snapshot());
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 60, "holder {holder_id}, joiner {joiner_id}");
    assert!(owners(&zk, &group, &topic).await.is_empty());
    if joiner_first {
        assert!(gate.entered.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_ids_that_prefix_each_other_never_take_each_others_owner_nodes() {
    // `a` and `a-1`: the thread a-1-0 of member a-1 looks like a thread of member a; `a-1`
    // and `a-1-0` likewise; and the same with Java's generated ids (host-millis-hex).
    let java = "host-1700000000000-1a2b3c4d";
    let java_1 = format!("{java}-1");
    let pairs: [(&str, &str); 3] = [("a", "a-1"), ("a-1", "a-1-0"), (java, &java_1)];
    for (shorter, longer) in pairs {
        // Each joins second once (the shorter id sorts first and takes the moving
        // partitions), and each leaves first once.
        slow_release_then_leave(longer, shorter, true).await;
        slow_release_then_leave(shorter, longer, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_left_by_an_earlier_run_is_waited_for_until_it_expires() {
    let cluster = testkit::cluster();
    let topic = topic("earlier", 1, 1);
    let group = cluster.unique("earlier-group");
    init_logs();
    // The earlier run: a session of its own (through a proxy, 4 s) holding the registration.
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    let chroot = &cluster.zk_connect()[cluster.zk_hosts().len()..];
    let earlier =
        zkconsumer::zk::session::ZkSession::connect(zkconsumer::zk::session::ZkSettings {
            connect: format!("{}{chroot}", proxy.address()),
            session_timeout: Duration::from_secs(4),
            connection_timeout: Duration::from_secs(10),
            server_version: cluster.zk_server_version(),
        })
        .await
        .unwrap();
    let path = format!("/consumers/{group}/ids/{group}_again");
    earlier
        .create_ephemeral(
            &path,
            br#"{"version":1,"subscription":{},"pattern":"static","timestamp":"1"}"#,
        )
        .await
        .unwrap();
    let earlier_session = earlier.session_id();
    // It dies without closing its session: ZooKeeper expires it after its timeout.
    proxy.stall();

    // The new run, same consumer.id: patience 1.5 x 10 s, far beyond the earlier session's 4 s.
    let member = connect_with(
        config(&group)
            .set("consumer.id", "again")
            .set("zookeeper.session.timeout.ms", 10_000),
    )
    .await;
    let seen = collect_streams(&member, &topic, 1).await;
    let zk = zk().await;
    let owner = zk.ephemeral_owner(&path).await.unwrap();
    assert!(
        owner.is_some_and(|s| s != earlier_session),
        "registered in a session of its own after the earlier one expired: {owner:?}"
    );
    produce(&topic, 1, 3, "m");
    wait_until("delivered", LIMIT, || seen.len() >= 3).await;
    member.shutdown().await.unwrap();
    proxy.resume();
}
