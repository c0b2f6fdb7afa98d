//! The stop tree (its own test binary: a process-wide stop would end other tests' consumers):
//! one consumer stopped alone leaves the others running; a process-wide request from any thread
//! ends every stream of every consumer; a consumer created afterwards is not born stopped.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// The tests of this binary each make process-wide requests: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_stop_one_by_one_or_together_and_later_ones_are_not_born_stopped() {
    let _serial = SERIAL.lock().await;
    let cluster = testkit::cluster();
    let topic = topic("stoptree", 2, 1);
    let group = cluster.unique("stoptree-group");
    let a = connect(&group).await;
    let b = connect(&group).await;
    let seen_a = collect_streams(&a, &topic, 1).await;
    let seen_b = collect_streams(&b, &topic, 1).await;
    let zk = zk().await;
    let both_owned = |n: usize| {
        let zk = zk.clone();
        let (group, topic) = (group.clone(), topic.clone());
        async move { owners(&zk, &group, &topic).await.len() == n }
    };
    let start = std::time::Instant::now();
    while !both_owned(2).await || a.owned_partitions().is_empty() {
        assert!(start.elapsed() < LIMIT, "a and b never split the topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One alone: a stops, b takes everything over and keeps delivering.
    a.shutdown().await.unwrap();
    seen_a.wait_ended().await;
    wait_until("b owns both partitions", LIMIT, || {
        b.owned_partitions().len() == 2
    })
    .await;
    produce(&topic, 2, 5, "one");
    wait_until("b delivers after a left", LIMIT, || seen_b.len() >= 10).await;

    // Together, from another thread (no runtime there), as a signal handler or the Python
    // package would: b's streams end.
    std::thread::spawn(zkconsumer::shutdown::request)
        .join()
        .unwrap();
    tokio::time::timeout(LIMIT, seen_b.wait_ended())
        .await
        .expect("b's streams end after the process-wide stop");
    b.shutdown().await.unwrap();

    // Created after the stop: consumes normally.
    let c = connect(&group).await;
    let seen_c = collect_streams(&c, &topic, 1).await;
    produce(&topic, 2, 5, "two");
    wait_until("a consumer created after the stop delivers", LIMIT, || {
        seen_c
            .snapshot()
            .iter()
            .filter(|s| s.value.starts_with("two"))
            .count()
            == 10
    })
    .await;
    c.shutdown().await.unwrap();
    seen_c.wait_ended().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_while_a_consumer_connects_stops_that_consumer() {
    let _serial = SERIAL.lock().await;
    let cluster = testkit::cluster();
    let topic = topic("stopconnect", 1, 1);
    let group = cluster.unique("stopconnect-group");
    init_logs();
    // ZooKeeper slow to answer: the connect waits on a silent connection.
    let proxy = testkit::FaultProxy::start(&cluster.zk_hosts());
    proxy.stall();
    let chroot = &cluster.zk_connect()[cluster.zk_hosts().len()..];
    let config = config(&group)
        .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
        .set("zookeeper.connection.timeout.ms", 60_000)
        .build()
        .unwrap();
    let connecting = tokio::spawn(zkconsumer::Consumer::connect(config));
    wait_until("the connect reached ZooKeeper", LIMIT, || {
        proxy.connections() >= 1
    })
    .await;
    assert!(!connecting.is_finished());
    // The request (a signal) comes while the consumer connects: it exists, so it stops.
    std::thread::spawn(zkconsumer::shutdown::request)
        .join()
        .unwrap();
    proxy.resume();
    let consumer = tokio::time::timeout(LIMIT, connecting)
        .await
        .expect("connect finishes")
        .expect("connect task")
        .expect("connect");
    let mut stream = single_stream(&consumer, &topic).await;
    let ended = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("the stream of a consumer stopped while connecting ends");
    assert!(ended.is_none(), "{ended:?}");
    consumer.shutdown().await.unwrap();
}
