//! `ispvm-agent`: the PoP agent binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// ISPVisualMonitor PoP agent: polls the routers of one PoP and delivers their metrics
/// and events to the server over QUIC with mutual TLS.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Any key can be overridden with
    /// ISPVM_AGENT_<SECTION>__<KEY>, e.g. ISPVM_AGENT_HTTP__LISTEN=0.0.0.0:9100.
    #[arg(
        long,
        short,
        global = true,
        env = "ISPVM_AGENT_CONFIG",
        default_value = "/etc/ispvm/agent.toml"
    )]
    config: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent (what happens without a command).
    Run,
    /// Batches the uplink set aside instead of sending them again (docs/ingest-contract.md).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// List the set-aside batches: when, sequence number, why.
    List {
        /// One JSON object per line (without the batch itself).
        #[arg(long)]
        json: bool,
    },
    /// Put set-aside batches back in the disk buffer: the next start of the agent sends
    /// them. Refused while the agent runs on the same data directory.
    Requeue {
        /// Only the batch with this sequence number (repeatable).
        #[arg(long = "seq")]
        seqs: Vec<u64>,
        /// Only batches set aside for this reason (e.g. unstorable).
        #[arg(long)]
        code: Option<String>,
        /// Every set-aside batch (required when no --seq or --code is given).
        #[arg(long)]
        all: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let config = ispvm_agent::config::AgentConfig::load(&cli.config)
        .with_context(|| format!("loading {}", cli.config.display()))?;
    match cli.command {
        None | Some(Command::Run) => run(cli.config, config).await,
        Some(Command::Quarantine(c)) => quarantine(&config, c),
    }
}

fn quarantine(
    config: &ispvm_agent::config::AgentConfig,
    command: QuarantineCommand,
) -> anyhow::Result<()> {
    use ispvm_agent::data_dir::DataDir;
    use ispvm_agent::uplink::quarantine::Quarantine;
    use ispvm_agent::uplink::requeue::{Selection, requeue};
    let data = DataDir::new(&config.data_dir);
    match command {
        QuarantineCommand::List { json } => {
            let path = data.quarantine_file();
            let entries = Quarantine::read_all(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            for e in &entries {
                let bytes = e.batch.len() / 4 * 3;
                if json {
                    let line = serde_json::json!({
                        "at_ms": e.at_ms, "seq": e.seq, "code": e.code,
                        "reason": e.reason, "batch_bytes": bytes,
                    });
                    println!("{line}");
                } else {
                    let seq = e.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
                    println!(
                        "{}\tseq {seq}\t{}\t{} bytes\t{}",
                        e.at_ms, e.code, bytes, e.reason
                    );
                }
            }
            if !json {
                eprintln!("{} batch(es) in {}", entries.len(), path.display());
            }
            Ok(())
        }
        QuarantineCommand::Requeue { seqs, code, all } => {
            if seqs.is_empty() && code.is_none() && !all {
                anyhow::bail!("say which batches: --seq N, --code CODE, or --all");
            }
            let _lock = data.lock()?;
            let done = requeue(
                &data,
                config.buffer.buffer_config(),
                &Selection { seqs, code },
            )?;
            eprintln!(
                "{} batch(es) put back in the disk buffer; the agent sends them when it starts. {} left set aside{}{}",
                done.seqs.len(),
                done.kept + done.unreadable,
                if done.unreadable > 0 {
                    format!(" ({} unreadable)", done.unreadable)
                } else {
                    String::new()
                },
                if done.foreign_lines > 0 {
                    format!("; {} foreign line(s) kept", done.foreign_lines)
                } else {
                    String::new()
                },
            );
            Ok(())
        }
    }
}

async fn run(
    config_path: std::path::PathBuf,
    config: ispvm_agent::config::AgentConfig,
) -> anyhow::Result<()> {
    let mut agent = ispvm_agent::start(config)
        .await
        .context("starting the agent")?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    // Containers and systemd stop a process with SIGTERM: stop as on Ctrl-C (the buffer
    // is flushed and the gossip cluster told we leave).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                tracing::info!("stopping");
                agent.shutdown().await;
                return Ok(());
            }
            Some(()) = terminate.recv() => {
                tracing::info!("SIGTERM: stopping");
                agent.shutdown().await;
                return Ok(());
            }
            Some(()) = hangup.recv() => {
                // SIGHUP: re-read the file; routers and probe targets change without a restart.
                match ispvm_agent::config::AgentConfig::load(&config_path) {
                    Ok(config) => {
                        if let Err(e) = agent.reload(config) {
                            tracing::error!(error = %e, "reloaded configuration refused; keeping the running one");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot reload the configuration; keeping the running one"),
                }
            }
            () = agent.failed() => {
                anyhow::bail!("the agent's supervision tree stopped; see the log above")
            }
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
