//! `ispvm-agent`: the PoP agent binary.

use anyhow::Context;
use clap::Parser;
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
        env = "ISPVM_AGENT_CONFIG",
        default_value = "/etc/ispvm/agent.toml"
    )]
    config: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let config = ispvm_agent::config::AgentConfig::load(&cli.config)
        .with_context(|| format!("loading {}", cli.config.display()))?;
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
                match ispvm_agent::config::AgentConfig::load(&cli.config) {
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
