//! `ispvm`: the server, the demo, the simulator and the dev PKI in one command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ispvm_server::config::ServerConfig;
use ispvm_server::pki::{CertKind, Pki};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// ISPVisualMonitor: monitoring for ISPs that run MikroTik routers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: QUIC ingest for agents, the HTTP API and /metrics.
    ///
    /// Settings come from --config (TOML) and ISPVM_<SECTION>__<KEY> environment
    /// variables; the flags below override both. ISPVM_MASTER_KEY (base64 of 32 bytes)
    /// seals credential secrets; on first start ISPVM_ADMIN_PASSWORD sets the password of
    /// user `admin` in the default tenant (else one is generated into
    /// <data-dir>/admin-password).
    Server {
        /// Configuration file (TOML).
        #[arg(long, short, env = "ISPVM_CONFIG")]
        config: Option<PathBuf>,
        /// HTTP address of the API.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (embedded database, PKI).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Database: sqlite://PATH (default: <data-dir>/ispvm.db) or postgres://USER:PASS@HOST/DB.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run a virtual ISP monitored end to end in one process: simulated MikroTik
    /// routers, one agent per PoP, and the server on the embedded store.
    #[cfg(feature = "sim")]
    Demo {
        /// HTTP address of the API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data directory; reused by the next start.
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
    },
    /// The virtual ISP simulator.
    #[cfg(feature = "sim")]
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Fault scenarios run end to end and judged (docs/scenarios.md).
    #[cfg(feature = "sim")]
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// The development PKI: a CA and the certificates of the server and the agents.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Run each scenario file: the virtual ISP, real agents and the server in this
    /// process, the timeline's faults, then every [[expect]] judged. Exits 0 only when
    /// every expectation of every file holds.
    Run {
        /// Scenario files (a topology file with [scenario] and [[expect]] tables).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON document instead of lines for people.
        #[arg(long)]
        json: bool,
        /// Scenario seconds per real second (poll, probe and evaluation intervals, rule
        /// windows, hold times and the timeline are divided by it).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
}

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Start the virtual ISP of a topology file and print where each router answers.
    Run {
        /// Topology file (TOML, see docs/simulation.md); the built-in demo ISP if omitted.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Print the router list as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create the CA (ca.pem, ca.key) in DIR.
    Init {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Common name of the CA.
        #[arg(long, default_value = "ISPVisualMonitor CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a certificate signed by the CA: NAME.pem and NAME.key in DIR.
    Issue {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// server (QUIC/HTTPS endpoint) or agent (mutual-TLS client and gossip peer).
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Agent id or server name; the certificate's common name.
        #[arg(long)]
        name: String,
        /// Tenant of an agent (the certificate's organization).
        #[arg(long)]
        tenant: Option<String>,
        /// DNS names (repeatable); defaults to NAME.
        #[arg(long)]
        dns: Vec<String>,
        /// IP addresses (repeatable).
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Re-sign DIR/crl.pem with the revocations it lists (an empty list when missing):
    /// servers and agents refuse to start without one.
    Crl {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
    },
    /// Revoke the certificate NAME: adds it to DIR/crl.pem, which running servers and
    /// agents re-read within 10 s.
    Revoke {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        #[arg(long)]
        name: String,
    },
}

/// `--kind` of `ispvm pki issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KindArg {
    /// The server: serves QUIC ingest and HTTPS.
    Server,
    /// An agent: client of the server, and both ends of gossip with other agents.
    Agent,
}

impl From<KindArg> for CertKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Server => CertKind::Server,
            KindArg::Agent => CertKind::Agent,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Command::Server {
            config,
            listen,
            data_dir,
            database_url,
        } => {
            let mut cfg = ServerConfig::load(config.as_deref())?;
            if let Some(l) = listen {
                cfg.http.listen = l;
            }
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if let Some(u) = database_url {
                cfg.database_url = Some(u);
            }
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
            let server = ispvm_server::app::start(&cfg).await?;
            ispvm_server::app::bootstrap_admin(
                &server.store,
                &cfg,
                std::env::var("ISPVM_ADMIN_PASSWORD").ok(),
            )
            .await?;
            // The default tenant may have just been made (with the starter rules).
            server.tree.reload(&cfg.default_tenant);
            stop_signal().await?;
            server.shutdown().await;
        }
        #[cfg(feature = "sim")]
        Command::Demo { listen, data_dir } => {
            let options = ispvm_cli::demo::DemoOptions {
                listen,
                data_dir,
                ..Default::default()
            };
            let demo = ispvm_cli::demo::start(&options).await?;
            println!("{}", demo.banner());
            stop_signal().await?;
            println!("stopping…");
            demo.shutdown().await;
        }
        #[cfg(feature = "sim")]
        Command::Scenario {
            command: ScenarioCommand::Run { files, json, speed },
        } => {
            if !(speed.is_finite() && (0.1..=50.0).contains(&speed)) {
                anyhow::bail!("--speed must be within 0.1..=50, not {speed}");
            }
            let options = ispvm_cli::scenario::Options { speed };
            if !ispvm_cli::scenario::run(&files, options, json).await {
                std::process::exit(1);
            }
        }
        #[cfg(feature = "sim")]
        Command::Sim {
            command: SimCommand::Run { scenario, json },
        } => {
            let topology = match scenario {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    ispvm_sim::Topology::from_toml(&text)?
                }
                None => ispvm_sim::Topology::demo(),
            };
            let isp = ispvm_sim::VirtualIsp::start(topology, IpAddr::from([127, 0, 0, 1])).await?;
            let rows: Vec<serde_json::Value> = isp
                .routers()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.spec.id, "site": r.spec.site, "role": r.spec.role,
                        "ros_version": r.spec.ros_version, "api": r.addr.to_string(),
                        "username": r.credentials.username,
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    println!(
                        "{:<14} {:<10} {:<20} {}",
                        r["id"].as_str().unwrap_or(""),
                        r["site"].as_str().unwrap_or(""),
                        r["role"].as_str().unwrap_or(""),
                        r["api"].as_str().unwrap_or("")
                    );
                }
                println!("Press Ctrl-C to stop.");
            }
            stop_signal().await?;
            isp.shutdown().await;
        }
        Command::Pki { command } => match command {
            PkiCommand::Init { dir, name, days } => {
                Pki::new(&dir).init(&name, days)?;
                println!("CA created: {}", dir.join("ca.pem").display());
            }
            PkiCommand::Issue {
                dir,
                kind,
                name,
                tenant,
                dns,
                ip,
                days,
            } => {
                if kind == KindArg::Agent && tenant.is_none() {
                    anyhow::bail!("an agent certificate needs --tenant");
                }
                let issued =
                    Pki::new(&dir).issue(kind.into(), &name, tenant.as_deref(), &dns, &ip, days)?;
                println!(
                    "issued {} and {}",
                    issued.cert.display(),
                    issued.key.display()
                );
            }
            PkiCommand::Crl { dir } => {
                let pki = Pki::new(&dir);
                pki.refresh_crl()?;
                println!("revocation list signed: {}", pki.crl_path().display());
            }
            PkiCommand::Revoke { dir, name } => {
                let pki = Pki::new(&dir);
                pki.revoke(&name)?;
                println!("revoked {name}: {}", pki.crl_path().display());
            }
        },
    }
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM, which containers and systemd send to stop a
/// process: both stop it the same orderly way.
async fn stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
    }
    Ok(())
}
