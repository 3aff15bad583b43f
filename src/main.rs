//! The command line: `geoline serve`, `geoline check`, `geoline lookup`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use geoline::config::Config;
use geoline::internal::access_log;
use geoline::internal::{Question, explain};
use geoline::server;

// glibc's malloc was a tenth of the redirector's CPU time per request (many small,
// short-lived allocations per request across hyper, axum and the handlers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Serve { config, log_json } => init_logging(log_json).and_then(|()| serve(config)),
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

fn init_logging(json: bool) -> anyhow::Result<()> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Events on stderr, the access log alone on stdout: `serve >access.log 2>events.log`.
    let events = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let events = if json {
        events.json().with_filter(filter).boxed()
    } else {
        events.with_filter(filter).boxed()
    };
    tracing_subscriber::registry().with(events).init();
    install_access_log()
}

/// The redirector's access log on standard output, whatever RUST_LOG says: one `write` per
/// line to a duplicate of the descriptor, without `Stdout`'s lock and line buffer (the
/// access log is the only writer there). Unbuffered, as nginx's is without `buffer=`: a
/// line reaches the file when its response is made.
fn install_access_log() -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot duplicate standard output for the access log")?;
    let file = std::fs::File::from(fd);
    access_log::install(Box::new(move |line| {
        // A full disk or a closed pipe loses lines, not requests.
        let _ = (&file).write_all(line);
    }))?;
    Ok(())
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let loaded = server::load(&config)?;
    if let Some(redirect) = &config.redirect {
        geoline::internal::check_redirect(redirect)?;
    }
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
    print!("{}", explain(&loaded, ip, question.as_ref())?);
    Ok(())
}

fn serve(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    // On one CPU (a small VM, or `taskset`), a work-stealing pool of one worker only adds
    // cross-thread wake-ups; the single-threaded scheduler does the same work for less.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let runtime = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = server::start(&config).await?;
        running.run_until_terminated().await?;
        Ok(())
    })
}
