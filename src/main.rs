//! The `vxtund` command line: run the daemon, or check a configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, ValueEnum};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use vxtund::config::Config;
use vxtund::daemon::{self, Mtus};

/// Userspace VXLAN/GRE tunnel daemon with an OpenFlow-style prefix forwarding table.
///
/// vxtund reads Ethernet frames from a TAP device and carries them in VXLAN or Ethernet over
/// GRE to the tunnel remotes of its configuration file, choosing the tunnel with OpenFlow flows
/// in ovs-ofctl's syntax. vxtunctl(8) and ovs-ofctl(8) change and inspect it at run time.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {
    /// The configuration file (TOML). Default sockets are named after it:
    /// /run/vxtund/NAME.sock and NAME.mgmt for NAME.toml.
    #[arg(short, long, value_name = "FILE", required_unless_present = "man")]
    config: Option<PathBuf>,
    /// Validate the configuration, print the resolved ports and flows, and exit.
    #[arg(long)]
    check: bool,
    /// Log level or filter (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// How to write logs on standard error: text lines, or one JSON object per line. Under
    /// systemd (JOURNAL_STREAM is standard error), text goes to the journal with its level.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Print this manual page (roff, section 8) and exit.
    #[arg(long, hide = true)]
    man: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the fields as tracing records them.
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.man {
        return print_manual();
    }
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vxtund: bad log level: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(filter, args.log_format);

    let Some(path) = args.config else {
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        print!("{}", daemon::describe(&config, &Mtus::resolve(&config)));
        return ExitCode::SUCCESS;
    }
    match daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every message already ends with its cause.
            eprintln!("vxtund: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Text or JSON on standard error; text to the journal (with each record's level as its
/// priority) when standard error is systemd's journal stream.
fn init_logging(filter: EnvFilter, format: LogFormat) {
    let stderr = std::io::stderr;
    let journal = match format {
        LogFormat::Text if vxtund::logs::stderr_is_journal() => tracing_journald::layer().ok(),
        _ => None,
    };
    let (text, json) = match (format, &journal) {
        (_, Some(_)) => (None, None),
        (LogFormat::Text, None) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            ),
            None,
        ),
        (LogFormat::Json, None) => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(text)
        .with(json)
        .init();
}

fn print_manual() -> ExitCode {
    use std::io::Write;
    let page = vxtund::manual::vxtund_page(Args::command());
    match std::io::stdout().write_all(&page) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vxtund: writing the manual: {e}");
            ExitCode::FAILURE
        }
    }
}
