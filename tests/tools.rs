//! Operator tools (`zkconsumer offsets …`, `zkconsumer groups …`) against real ZooKeeper and
//! brokers: lag, export/import round trip, validation, reset, group listing and deletion.

mod common;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use common::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_lag_as_produced_minus_committed() {
    let topic = topic("lag", 3, 1);
    let group = testkit::cluster().unique("lag-group");
    produce(&topic, 3, 10, "x");
    set_offsets(&group, &topic, &[(0, 4), (1, 10)]).await;
    let out = tool(&["offsets", "check", "--group", &group, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let by_partition: BTreeMap<i64, &serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["partition"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(by_partition[&0]["lag"], 6);
    assert_eq!(by_partition[&1]["lag"], 0);
    assert_eq!(by_partition[&2]["offset"], serde_json::Value::Null);
    assert_eq!(by_partition[&2]["log_end"], 10);
    // The table form, as the offset checker printed it.
    let out = tool(&["offsets", "check", "--group", &group, "--topic", &topic]);
    let text = stdout(&out);
    assert!(text.starts_with("Group"), "{text}");
    let row2 = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("2"))
        .unwrap();
    let cols: Vec<&str> = row2.split_whitespace().collect();
    assert_eq!(&cols[3..], ["-1", "10", "unknown", "none"], "{row2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_wipe_import_round_trips_and_bad_files_change_nothing() {
    let topic = topic("export", 2, 1);
    let group = testkit::cluster().unique("export-group");
    set_offsets(&group, &topic, &[(0, 7), (1, 3)]).await;
    let out = tool(&["offsets", "export", "--group", &group]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = stdout(&out);
    assert_eq!(
        exported,
        format!("/consumers/{group}/offsets/{topic}/0:7\n/consumers/{group}/offsets/{topic}/1:3\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("offsets.txt");
    std::fs::write(&file, &exported).unwrap();

    let out = tool(&["groups", "delete", "--group", &group]);
    assert!(out.status.success(), "{}", stderr(&out));
    let zk = zk().await;
    assert!(committed(&zk, &group, &topic).await.is_empty());

    let out = tool(&["offsets", "import", "--input-file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 7), (1, 3)])
    );

    // A malformed line: nothing is written, the line is named.
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        format!(
            "/consumers/{group}/offsets/{topic}/0:100\n/consumers/{group}/offsets/{topic}/1:oops\n"
        ),
    )
    .unwrap();
    let out = tool(&["offsets", "import", "--input-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2") && stderr(&out).contains("oops"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 7), (1, 3)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_refuses_an_active_group_and_a_restarted_consumer_starts_where_told() {
    let topic = topic("reset", 1, 1);
    let group = testkit::cluster().unique("reset-group");
    produce(&topic, 1, 20, "r");
    let consumer = connect(&group).await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until("consumed", Duration::from_secs(60), || seen.len() >= 20).await;

    let out = tool(&[
        "offsets",
        "reset",
        "--group",
        &group,
        "--to-offset",
        "5",
        "--execute",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("live members"), "{}", stderr(&out));

    consumer.shutdown().await.unwrap();
    seen.wait_ended().await;
    let zk = zk().await;
    assert_eq!(committed(&zk, &group, &topic).await[&0], 20);

    // Dry run first: prints the plan, writes nothing.
    let out = tool(&["offsets", "reset", "--group", &group, "--shift-by", "-15"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("20 -> 5"), "{}", stdout(&out));
    assert_eq!(committed(&zk, &group, &topic).await[&0], 20);
    let out = tool(&[
        "offsets",
        "reset",
        "--group",
        &group,
        "--shift-by",
        "-15",
        "--execute",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(committed(&zk, &group, &topic).await[&0], 5);

    let consumer = connect(&group).await;
    let again = collect_streams(&consumer, &topic, 1).await;
    wait_until("replayed from 5", Duration::from_secs(60), || {
        again.len() >= 15
    })
    .await;
    assert_eq!(again.snapshot()[0].offset, 5);
    consumer.shutdown().await.unwrap();

    let out = tool(&["groups", "list", "--json"]);
    let groups: Vec<String> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(groups.contains(&group));
}

/// Rows `partition -> (offset, log size, lag)` of a ConsumerOffsetChecker table (Kafka's or
/// ours: `Group Topic Pid Offset logSize Lag Owner`).
fn checker_rows(text: &str, topic: &str) -> BTreeMap<i64, (String, String, String)> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 6 && cols[1] == topic)
        .map(|cols| {
            let partition = cols[2].parse().expect("partition column");
            (
                partition,
                (
                    cols[3].to_string(),
                    cols[4].to_string(),
                    cols[5].to_string(),
                ),
            )
        })
        .collect()
}

/// Sorted non-empty lines (export files list partitions in no fixed order).
fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Kafka's own offset tools (of the cluster's Kafka version: 0.8.2.2 on the legacy lane) and
/// ours agree on the same ZooKeeper nodes: ConsumerOffsetChecker prints the offsets, log sizes
/// and lags `offsets check` prints for what a zkconsumer member committed; ExportZkOffsets
/// writes the file `offsets export` writes; ImportZkOffsets takes our export and a zkconsumer
/// member resumes exactly there, and `offsets import` takes Kafka's export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
async fn kafkas_offset_checker_and_zk_offset_tools_read_and_write_what_we_do() {
    let cluster = testkit::cluster();
    cluster.require_control();
    let topic = topic("java-tools", 3, 1);
    let group = cluster.unique("java-tools-group");
    produce(&topic, 3, 10, "t");
    // A zkconsumer member commits everything, then our reset moves partitions apart.
    let consumer = connect(&group).await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until("consumed", Duration::from_secs(60), || seen.len() >= 30).await;
    consumer.shutdown().await.unwrap();
    seen.wait_ended().await;
    let zk = zk().await;
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 10), (1, 10), (2, 10)])
    );
    let dir = tempfile::tempdir().unwrap();
    let ours_file = dir.path().join("ours.txt");
    std::fs::write(
        &ours_file,
        format!("/consumers/{group}/offsets/{topic}/0:3\n/consumers/{group}/offsets/{topic}/1:7\n"),
    )
    .unwrap();
    let out = tool(&[
        "offsets",
        "import",
        "--input-file",
        ours_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // ConsumerOffsetChecker and `offsets check`: the same offsets, log sizes and lags.
    let zk_connect = cluster.zk_connect();
    let java = cluster.run_kafka_class(
        "kafka.tools.ConsumerOffsetChecker",
        &[
            "--zookeeper",
            &zk_connect,
            "--group",
            &group,
            "--topic",
            &topic,
        ],
    );
    assert!(java.status.success(), "{java:?}");
    let java_rows = checker_rows(&stdout(&java), &topic);
    let ours = tool(&["offsets", "check", "--group", &group, "--topic", &topic]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let our_rows = checker_rows(&stdout(&ours), &topic);
    let expected: BTreeMap<i64, (String, String, String)> = [(0, 3, 7), (1, 7, 3), (2, 10, 0)]
        .into_iter()
        .map(|(p, o, lag)| (p, (o.to_string(), "10".to_string(), lag.to_string())))
        .collect();
    assert_eq!(java_rows, expected, "Kafka's checker:\n{}", stdout(&java));
    assert_eq!(our_rows, java_rows, "ours:\n{}", stdout(&ours));

    // ExportZkOffsets writes what `offsets export` writes.
    let java_file = dir.path().join("java.txt");
    let java = cluster.run_kafka_class(
        "kafka.tools.ExportZkOffsets",
        &[
            "--zkconnect",
            &zk_connect,
            "--group",
            &group,
            "--output-file",
            java_file.to_str().unwrap(),
        ],
    );
    assert!(java.status.success(), "{java:?}");
    let java_export = std::fs::read_to_string(&java_file).unwrap();
    let ours = tool(&["offsets", "export", "--group", &group]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert_eq!(sorted_lines(&java_export), sorted_lines(&stdout(&ours)));
    assert_eq!(sorted_lines(&java_export).len(), 3, "{java_export}");

    // ImportZkOffsets takes our export format; a zkconsumer member resumes exactly there.
    std::fs::write(
        &ours_file,
        format!(
            "/consumers/{group}/offsets/{topic}/0:8\n/consumers/{group}/offsets/{topic}/1:9\n/consumers/{group}/offsets/{topic}/2:5\n"
        ),
    )
    .unwrap();
    let java = cluster.run_kafka_class(
        "kafka.tools.ImportZkOffsets",
        &[
            "--zkconnect",
            &zk_connect,
            "--input-file",
            ours_file.to_str().unwrap(),
        ],
    );
    assert!(java.status.success(), "{java:?}");
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 8), (1, 9), (2, 5)])
    );
    let consumer = connect(&group).await;
    let again = collect_streams(&consumer, &topic, 1).await;
    wait_until(
        "the rest after the imported offsets",
        Duration::from_secs(60),
        || again.len() >= 8,
    )
    .await;
    consumer.shutdown().await.unwrap();
    again.wait_ended().await;
    let mut got: Vec<(i32, i64)> = again
        .snapshot()
        .iter()
        .map(|s| (s.partition, s.offset))
        .collect();
    got.sort();
    let want: Vec<(i32, i64)> = (8..10)
        .map(|o| (0, o))
        .chain(std::iter::once((1, 9)))
        .chain((5..10).map(|o| (2, o)))
        .collect();
    assert_eq!(
        got, want,
        "resumed exactly from the offsets ImportZkOffsets wrote"
    );

    // And `offsets import` takes the file Kafka's ExportZkOffsets wrote.
    let out = tool(&["groups", "delete", "--group", &group]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tool(&[
        "offsets",
        "import",
        "--input-file",
        java_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        committed(&zk, &group, &topic).await,
        BTreeMap::from([(0, 3), (1, 7), (2, 10)])
    );
}
