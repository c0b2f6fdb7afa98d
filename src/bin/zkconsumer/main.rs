//! `zkconsumer`: the command-line tool. Thin: parses arguments, builds configuration, calls the
//! library. Messages go to stdout, logs to stderr (`RUST_LOG`).
//!
//! Exit codes: 0 done (max messages, signal, idle timeout), 1 runtime failure (ZooKeeper,
//! Kafka, a partition that cannot progress), 2 bad usage or configuration.

mod admin;
mod consume;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ZooKeeper-coordinated Kafka consumer groups for 0.8-era clusters.
#[derive(Debug, Parser)]
#[command(name = "zkconsumer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume as a member of a group (flags as Kafka's console consumer names them).
    Consume(consume::ConsumeArgs),
    /// Inspect and move a group's committed offsets in ZooKeeper.
    #[command(subcommand)]
    Offsets(admin::OffsetsCommand),
    /// List, describe and delete consumer groups.
    #[command(subcommand)]
    Groups(admin::GroupsCommand),
    /// Move a group's positions between ZooKeeper and Kafka-stored offsets, and verify them.
    #[command(subcommand)]
    Migrate(admin::MigrateCommand),
}

/// Errors that end the process, split by exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// Failure while running: exit 1.
    Runtime(String),
}

/// glibc gives threads that allocate their own malloc arenas, and each arena keeps the fetch
/// buffers freed into it: with a fetcher and a client thread per broker that was a third of the
/// process's memory (1M messages from 3 brokers: 30-33 MB peak RSS with the default arenas,
/// 21-22 MB with one, same speed). `MALLOC_ARENA_MAX` in the environment still decides.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator; it runs before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkconsumer: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Consume(args) => consume::run(args).await,
            Command::Offsets(command) => admin::offsets(command).await,
            Command::Groups(command) => admin::groups(command).await,
            Command::Migrate(command) => admin::migrate(command).await,
        }
    });
    // Do not wait for blocked fetcher threads or timers: everything was committed and released.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("zkconsumer: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(message)) => {
            eprintln!("zkconsumer: {message}");
            ExitCode::from(1)
        }
    }
}
