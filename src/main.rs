//! The command line: `geoline serve`, `geoline check`, `geoline lookup`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use geoline::config::Config;
use geoline::lookup::{self, Question};
use geoline::server;

#[derive(Parser)]
#[command(
    version,
    about = "GeoDNS, redirector and rewriting proxy for serving mainland China"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve everything the configuration enables.
    Serve {
        #[arg(long, default_value = "geoline.toml")]
        config: PathBuf,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Load and validate the configuration, zones and databases; print a summary.
    Check {
        #[arg(long, default_value = "geoline.toml")]
        config: PathBuf,
    },
    /// Explain which line an address is in and why; with NAME, the answer it would get.
    Lookup {
        #[arg(long, default_value = "geoline.toml")]
        config: PathBuf,
        /// The client address (or ECS address) to classify.
        ip: IpAddr,
        /// A name to answer on the address's line.
        name: Option<String>,
        /// The record type to answer (A when absent).
        #[arg(value_name = "TYPE")]
        qtype: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, log_json } => {
            init_logging(log_json);
            serve(config)
        }
        Command::Check { config } => check(config),
        Command::Lookup {
            config,
            ip,
            name,
            qtype,
        } => lookup(config, ip, name, qtype),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("geoline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    // hickory-server logs every TCP query at info; that is a query log, not an event log.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_net=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let loaded = server::load(&config)?;
    print!(
        "{}",
        server::Summary {
            config: &config,
            loaded: &loaded
        }
    );
    Ok(())
}

fn lookup(
    path: PathBuf,
    ip: IpAddr,
    name: Option<String>,
    qtype: Option<String>,
) -> anyhow::Result<()> {
    let question = name
        .map(|n| Question::parse(&n, qtype.as_deref()))
        .transpose()?;
    let config = Config::load(&path)?;
    let loaded = server::load(&config)?;
    print!("{}", lookup::explain(&loaded, ip, question.as_ref())?);
    Ok(())
}

fn serve(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = server::start(&config).await?;
        running.run_until_terminated().await?;
        Ok(())
    })
}
