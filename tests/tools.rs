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
