//! `zkconsumer offsets …` and `zkconsumer groups …`: the old Kafka operator tools without a JVM.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use zkconsumer::admin::{self, Admin, MigrateDirection, ResetTo};

use crate::CliError;

/// Where the cluster's ZooKeeper is.
#[derive(Debug, Args)]
pub struct Connection {
    /// ZooKeeper connect string, `host:port[,host:port…][/chroot]`.
    #[arg(long)]
    zookeeper: String,
    /// Version of the ZooKeeper servers (3.4 servers reject newer requests).
    #[arg(long, default_value = "3.4.6")]
    zookeeper_version: String,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl Connection {
    async fn admin(&self) -> Result<Admin, CliError> {
        let version = parse_version(&self.zookeeper_version)?;
        Admin::connect(&self.zookeeper, version)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))
    }
}

fn parse_version(v: &str) -> Result<(u32, u32, u32), CliError> {
    let parts: Vec<Option<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(a), Some(b), Some(c)] => Ok((*a, *b, *c)),
        [Some(a), Some(b)] => Ok((*a, *b, 0)),
        _ => Err(CliError::Usage(format!(
            "invalid --zookeeper-version {v:?}: expected a version like 3.4.6"
        ))),
    }
}

fn runtime(e: admin::AdminError) -> CliError {
    match e {
        admin::AdminError::GroupActive { .. } | admin::AdminError::BadLine { .. } => {
            CliError::Usage(e.to_string())
        }
        other => CliError::Runtime(other.to_string()),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Runtime(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `zkconsumer offsets …`.
#[derive(Debug, Subcommand)]
pub enum OffsetsCommand {
    /// Committed offset, log end, lag and owner per partition (like ConsumerOffsetChecker).
    Check(GroupTopics),
    /// Print the group's offsets as `/consumers/G/offsets/T/P:OFFSET` lines (like ExportZkOffsets).
    Export {
        #[command(flatten)]
        conn: Connection,
        /// The group.
        #[arg(long)]
        group: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output_file: Option<PathBuf>,
    },
    /// Write offsets from an export file (lines or JSON); validates every line first.
    Import {
        #[command(flatten)]
        conn: Connection,
        /// The file to read.
        #[arg(long)]
        input_file: PathBuf,
        /// Write even while the group has live members.
        #[arg(long)]
        force: bool,
    },
    /// Move a group's offsets; prints the plan, writes only with --execute.
    Reset {
        #[command(flatten)]
        target: GroupTopics,
        /// To the earliest offset in the log.
        #[arg(long, group = "target")]
        to_earliest: bool,
        /// To the log end.
        #[arg(long, group = "target")]
        to_latest: bool,
        /// To this offset (clamped into the log's range).
        #[arg(long, group = "target")]
        to_offset: Option<i64>,
        /// Move the committed offset by N (negative: back).
        #[arg(long, group = "target", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Write the new offsets (default: dry run).
        #[arg(long)]
        execute: bool,
        /// Write even while the group has live members.
        #[arg(long)]
        force: bool,
    },
}

/// `zkconsumer groups …`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Every group under /consumers.
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Members and per-partition offsets, lag and owners of a group.
    Describe {
        #[command(flatten)]
        conn: Connection,
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Delete a group (or only its data for one topic); refuses while members are live.
    Delete {
        #[command(flatten)]
        conn: Connection,
        /// The group.
        #[arg(long)]
        group: String,
        /// Only this topic's offsets and owners.
        #[arg(long)]
        topic: Option<String>,
    },
}

/// Runs an `offsets` subcommand.
pub async fn offsets(command: OffsetsCommand) -> Result<(), CliError> {
    match command {
        OffsetsCommand::Check(GroupTopics {
            conn,
            group,
            topics,
        }) => {
            let rows = conn
                .admin()
                .await?
                .check(&group, &topics)
                .await
                .map_err(runtime)?;
            if conn.json {
                return print_json(&rows);
            }
            println!(
                "{:<15} {:<30} {:<3} {:<15} {:<15} {:<15} Owner",
                "Group", "Topic", "Pid", "Offset", "logSize", "Lag"
            );
            let mut totals: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
            for r in &rows {
                let lag = r.lag.map_or("unknown".to_string(), |l| l.to_string());
                println!(
                    "{:<15} {:<30} {:<3} {:<15} {:<15} {:<15} {}",
                    group,
                    r.topic,
                    r.partition,
                    r.offset.unwrap_or(-1),
                    r.log_end.map_or("unknown".to_string(), |e| e.to_string()),
                    lag,
                    r.owner.as_deref().unwrap_or("none")
                );
                let t = totals.entry(&r.topic).or_default();
                t.0 += r.log_end.unwrap_or(0);
                t.1 += r.lag.unwrap_or(0);
            }
            for (topic, (size, lag)) in totals {
                println!("total {topic}: logSize {size}, lag {lag}");
            }
            Ok(())
        }
        OffsetsCommand::Export {
            conn,
            group,
            output_file,
        } => {
            let entries = conn.admin().await?.export(&group).await.map_err(runtime)?;
            let text = if conn.json {
                let map: std::collections::BTreeMap<&str, i64> =
                    entries.iter().map(|(p, o)| (p.as_str(), *o)).collect();
                serde_json::to_string_pretty(&map).map_err(|e| CliError::Runtime(e.to_string()))?
                    + "\n"
            } else {
                admin::format_export(&entries)
            };
            match output_file {
                Some(path) => std::fs::write(&path, text).map_err(|e| {
                    CliError::Runtime(format!("cannot write {}: {e}", path.display()))
                }),
                None => std::io::stdout()
                    .write_all(text.as_bytes())
                    .map_err(|e| CliError::Runtime(e.to_string())),
            }
        }
        OffsetsCommand::Import {
            conn,
            input_file,
            force,
        } => {
            let text = std::fs::read_to_string(&input_file).map_err(|e| {
                CliError::Usage(format!("cannot read {}: {e}", input_file.display()))
            })?;
            let entries = admin::parse_export(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", input_file.display())))?;
            let n = conn
                .admin()
                .await?
                .import(&entries, force)
                .await
                .map_err(runtime)?;
            eprintln!("imported {n} offsets");
            Ok(())
        }
        OffsetsCommand::Reset {
            target:
                GroupTopics {
                    conn,
                    group,
                    topics,
                },
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            execute,
            force,
        } => {
            let to = match (to_earliest, to_latest, to_offset, shift_by) {
                (true, _, _, _) => ResetTo::Earliest,
                (_, true, _, _) => ResetTo::Latest,
                (_, _, Some(n), _) => ResetTo::Offset(n),
                (_, _, _, Some(n)) => ResetTo::ShiftBy(n),
                _ => return Err(CliError::Usage(
                    "one of --to-earliest, --to-latest, --to-offset N, --shift-by N is required"
                        .into(),
                )),
            };
            let plan = conn
                .admin()
                .await?
                .reset(&group, &topics, to, execute, force)
                .await
                .map_err(runtime)?;
            if conn.json {
                return print_json(&plan);
            }
            for l in &plan {
                let from = l.from.map_or("none".to_string(), |f| f.to_string());
                println!(
                    "{} {} {}: {} -> {}",
                    group, l.topic, l.partition, from, l.to
                );
            }
            if !execute {
                eprintln!("dry run: nothing written (add --execute to write these offsets)");
            }
            Ok(())
        }
    }
}

/// Runs a `groups` subcommand.
pub async fn groups(command: GroupsCommand) -> Result<(), CliError> {
    match command {
        GroupsCommand::List { conn } => {
            let groups = conn.admin().await?.groups().await.map_err(runtime)?;
            if conn.json {
                return print_json(&groups);
            }
            for g in groups {
                println!("{g}");
            }
            Ok(())
        }
        GroupsCommand::Describe { conn, group } => {
            let admin = conn.admin().await?;
            let members = admin.members(&group).await.map_err(runtime)?;
            let rows = admin.check(&group, &[]).await.map_err(runtime)?;
            if conn.json {
                return print_json(
                    &serde_json::json!({"group": group, "members": members, "partitions": rows}),
                );
            }
            println!("GROUP {group}: {} live member(s)", members.len());
            for m in &members {
                println!("  member {m}");
            }
            println!(
                "{:<30} {:<9} {:<15} {:<15} {:<10} OWNER",
                "TOPIC", "PARTITION", "OFFSET", "LOG-END", "LAG"
            );
            for r in rows {
                println!(
                    "{:<30} {:<9} {:<15} {:<15} {:<10} {}",
                    r.topic,
                    r.partition,
                    r.offset.map_or("-".into(), |o| o.to_string()),
                    r.log_end.map_or("unknown".into(), |e| e.to_string()),
                    r.lag.map_or("unknown".into(), |l| l.to_string()),
                    r.owner.as_deref().unwrap_or("none")
                );
            }
            Ok(())
        }
        GroupsCommand::Delete { conn, group, topic } => {
            conn.admin()
                .await?
                .delete_group(&group, topic.as_deref())
                .await
                .map_err(runtime)?;
            eprintln!(
                "deleted group {group}{}",
                topic.map_or(String::new(), |t| format!(" (topic {t})"))
            );
            Ok(())
        }
    }
}

/// `zkconsumer migrate …`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Copy the group's ZooKeeper offsets into Kafka storage (OffsetCommit v1).
    ToKafka(MigrateArgs),
    /// Copy the group's Kafka-stored offsets into ZooKeeper.
    ToZookeeper(MigrateArgs),
    /// Compare both stores partition by partition; exit 1 on any drift.
    Verify(MigrateArgs),
}

/// A group on a ZooKeeper, and optionally some of its topics.
#[derive(Debug, Args)]
pub struct GroupTopics {
    #[command(flatten)]
    conn: Connection,
    /// The group.
    #[arg(long)]
    group: String,
    /// Only these topics (repeatable; default: every topic of the group).
    #[arg(long = "topic")]
    topics: Vec<String>,
}

/// Arguments of the migrate subcommands.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    target: GroupTopics,
    /// Copy even while the group has live members.
    #[arg(long)]
    force: bool,
}

/// Runs a `migrate` subcommand.
pub async fn migrate(command: MigrateCommand) -> Result<(), CliError> {
    let (args, direction) = match command {
        MigrateCommand::ToKafka(a) => (a, Some(MigrateDirection::ToKafka)),
        MigrateCommand::ToZookeeper(a) => (a, Some(MigrateDirection::ToZookeeper)),
        MigrateCommand::Verify(a) => (a, None),
    };
    let MigrateArgs {
        target: GroupTopics {
            conn,
            group,
            topics,
        },
        force,
    } = args;
    let admin = conn.admin().await?;
    if let Some(direction) = direction {
        let copied = admin
            .migrate(&group, &topics, direction, force)
            .await
            .map_err(runtime)?;
        for (tp, offset) in &copied {
            println!("{} {} {}: {}", group, tp.topic, tp.partition, offset);
        }
        eprintln!("copied {} offsets", copied.len());
        return Ok(());
    }
    let rows = admin
        .compare_stores(&group, &topics)
        .await
        .map_err(runtime)?;
    let drift: Vec<_> = rows.iter().filter(|r| !r.agrees()).collect();
    if conn.json {
        print_json(&serde_json::json!({"group": group, "partitions": rows, "drift": drift.len()}))?;
    } else {
        let show = |o: Option<i64>| o.map_or("none".to_string(), |v| v.to_string());
        for r in &rows {
            println!(
                "{} {} {}: zookeeper {} kafka {}{}",
                group,
                r.topic,
                r.partition,
                show(r.zookeeper),
                show(r.kafka),
                if r.agrees() { "" } else { "  DRIFT" }
            );
        }
        println!("{} partitions, {} drifting", rows.len(), drift.len());
    }
    if drift.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(format!(
            "{} of {} partitions differ between ZooKeeper and Kafka",
            drift.len(),
            rows.len()
        )))
    }
}
