//! The command line: `geoline serve`, `geoline check`, `geoline lookup`, `geoline keygen`,
//! `geoline zone`.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use geoline::config::{Config, ConfigError};
use geoline::server;

mod cli;

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

/// `--config`, as every subcommand that reads the configuration takes it.
#[derive(clap::Args)]
struct ConfigPath {
    /// The configuration file; the paths it names are relative to its directory.
    #[arg(long = "config", value_name = "FILE", default_value = "geoline.toml")]
    path: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve everything the configuration enables.
    Serve {
        #[command(flatten)]
        config: ConfigPath,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Load and validate the configuration, zones and databases; print a summary.
    Check {
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Explain which line an address is in and why; with NAME, the answer it would get.
    Lookup {
        #[command(flatten)]
        config: ConfigPath,
        /// The client address (or ECS address) to classify.
        ip: IpAddr,
        /// A name to answer on the address's line.
        name: Option<String>,
        /// The record type to answer (A when absent).
        #[arg(value_name = "TYPE")]
        qtype: Option<String>,
    },
    /// Print a fresh TSIG key as [[key]] TOML, a BIND key clause, certbot-dns-rfc2136
    /// credentials and lego RFC2136_* variables.
    Keygen {
        /// The key's name, as clients will send it (e.g. acme-update).
        name: String,
        /// hmac-sha256 (the default), hmac-sha224, hmac-sha384, hmac-sha512, hmac-sha1 or
        /// hmac-md5.
        #[arg(long, default_value = "hmac-sha256")]
        algorithm: String,
        /// geoline's DNS address as the clients reach it, for the certbot and lego forms.
        #[arg(long, default_value = "127.0.0.1:53")]
        server: std::net::SocketAddr,
    },
    /// Operate on the zones of a running server.
    Zone {
        #[command(subcommand)]
        action: ZoneCommand,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Write ZONE as it is served (its file plus dynamic updates) back to its files and
    /// empty its journal, through the running server's admin listener.
    Flush {
        #[command(flatten)]
        config: ConfigPath,
        /// The zone's origin, e.g. example.com.
        zone: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = cli.command.config_path().map(PathBuf::from);
    let result = match cli.command {
        Command::Serve { config, log_json } => {
            init_logging(log_json).and_then(|()| serve(config.path))
        }
        Command::Check { config } => {
            init_warnings();
            cli::check::run(&config.path)
        }
        Command::Lookup {
            config,
            ip,
            name,
            qtype,
        } => {
            init_warnings();
            cli::explain::run(&config.path, ip, name.as_deref(), qtype.as_deref())
        }
        Command::Keygen {
            name,
            algorithm,
            server,
        } => cli::keygen::run(&name, &algorithm, server),
        Command::Zone {
            action: ZoneCommand::Flush { config, zone },
        } => cli::zone::flush(&config.path, &zone),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = config_path
                .filter(|path| is_missing_config(&e, path))
                .map_or("", |_| {
                    "; name the configuration with --config FILE (the repository's geoline.toml is a start)"
                });
            eprintln!("geoline: {}{hint}", report(&e));
            ExitCode::FAILURE
        }
    }
}

impl Command {
    fn config_path(&self) -> Option<&std::path::Path> {
        match self {
            Command::Serve { config, .. }
            | Command::Check { config }
            | Command::Lookup { config, .. }
            | Command::Zone {
                action: ZoneCommand::Flush { config, .. },
            } => Some(&config.path),
            Command::Keygen { .. } => None,
        }
    }
}

/// Whether `error` is the configuration file itself not being there (not a file it names).
fn is_missing_config(error: &anyhow::Error, config: &std::path::Path) -> bool {
    matches!(
        error.downcast_ref::<ConfigError>(),
        Some(ConfigError::Read { path, source })
            if path == config && source.kind() == std::io::ErrorKind::NotFound
    )
}

/// `error` and its causes, `: `-separated, each said once: a message that already holds
/// its cause's text (`cannot listen on ...: {source}; hint`) is not followed by it again.
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` is set to anything
/// but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// For `check` and `lookup`: what loading warns of (an RRset whose records have different
/// TTLs, for one) on stderr, `WARN` and the message, nothing else.
fn init_warnings() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .without_time()
        .with_target(false)
        .with_env_filter(filter)
        .init();
}

fn init_logging(json: bool) -> anyhow::Result<()> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    // notify reports at INFO and WARN that a watched directory went away, which is how a
    // Kubernetes volume swap looks: the watcher handles it, the operator need not read it.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,notify=error"));
    // Events on stderr, the access log alone on stdout: `serve >access.log 2>events.log`.
    // Colour only for a person at a terminal: a file or journald would keep the escapes.
    let events = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    let events = if json {
        events.json().with_filter(filter).boxed()
    } else {
        events.with_filter(filter).boxed()
    };
    tracing_subscriber::registry().with(events).init();
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
        let signals = server::Signals::install()?;
        let running = server::start(&config).await?;
        running.run_until_terminated(signals).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{colour, report};

    #[test]
    fn colour_is_for_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:53 (UDP): {source}")]
    struct Bind {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(Bind { source: io });
        assert_eq!(
            report(&e),
            "cannot listen on 127.0.0.1:53 (UDP): Address already in use"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(report(&e), "outer: inner");
    }
}
