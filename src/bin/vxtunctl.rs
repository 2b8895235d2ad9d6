//! `vxtunctl`: change and inspect a running vxtund, with the verbs of `ovs-ofctl`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vxtund::config::CONTROL_DIR;
use vxtund::control::{Request, Response};

/// Talk to a running vxtund over its control socket.
#[derive(Parser)]
#[command(name = "vxtunctl", version, about)]
struct Args {
    /// The daemon's control socket (default: the only socket in /run/vxtund).
    #[arg(short, long, value_name = "SOCKET", global = true)]
    socket: Option<PathBuf>,
    /// Print this manual page (roff, section 8) and exit.
    #[arg(long, hide = true)]
    man: bool,
    #[command(subcommand)]
    verb: Option<Verb>,
}

#[derive(Subcommand)]
enum Verb {
    /// Ports (number, name, type, remote, VNI/key, MTU) with counters, MTU counters, drops.
    Show,
    /// Every flow with n_packets, n_bytes and duration, in the syntax add-flow accepts.
    DumpFlows {
        /// Print as entries of a config's `[flows] rules` list, to make run-time changes permanent.
        #[arg(long)]
        config_format: bool,
    },
    /// Add a flow (replacing one with the same match and priority).
    AddFlow {
        /// The flow, e.g. "ip,nw_dst=172.31.3.0/24,actions=output:tun_km".
        flow: String,
    },
    /// Add the flows in FILE, one per line ("-" for standard input).
    AddFlows {
        /// The file.
        file: PathBuf,
    },
    /// Delete every flow MATCH covers (all flows without MATCH); MATCH may narrow by
    /// cookie=VALUE/MASK and out_port=PORT.
    DelFlows {
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
        /// The match, e.g. "ip,nw_dst=172.31.3.0/24".
        r#match: Option<String>,
    },
    /// Change the actions of every flow the match covers: "MATCH,actions=..." (cookie=VALUE/MASK
    /// narrows, cookie=VALUE sets the cookie, reset_counts restarts the counters).
    ModFlows {
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
        /// The match and the new actions.
        flow: String,
    },
    /// Replace the whole table with the flows in FILE, in one step.
    ReplaceFlows {
        /// The file ("-" for standard input).
        file: PathBuf,
    },
    /// Counters of one port, or of all.
    DumpPorts {
        /// Port number or name.
        port: Option<String>,
    },
    /// Learnt MAC addresses with port and age.
    FdbShow,
    /// Forget every learnt MAC address.
    FdbFlush,
    /// Re-read the daemon's config file and apply it, as SIGHUP does (if the file's flows
    /// changed they replace the table, run-time changes included; if not, the table in force
    /// stays); a broken file is refused and nothing changes.
    Reload,
    /// BGP EVPN: the sessions with their state and uptime, the remote VTEPs and their ports,
    /// the MAC routes (local or remote, the VTEP, the sequence number), routes refused.
    Evpn,
    /// What the daemon would do with a frame, as ovs-appctl ofproto/trace: the flow that
    /// matches (text, priority, counters), its actions, the egress ports, MTU handling and MSS
    /// clamping. Nothing is sent or counted.
    Trace {
        /// The frame in flow syntax with single addresses, e.g.
        /// "in_port=tun_kl,ip,nw_src=172.31.2.1,nw_dst=172.31.3.1"; also tcp_flags=syn, mss=N,
        /// ip_len=N, df=no. Left-out fields take defaults.
        description: String,
        /// The frame as hex bytes instead (then DESCRIPTION gives only in_port).
        packet: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.man {
        use std::io::Write;
        let page = vxtund::manual::vxtunctl_page(<Args as clap::CommandFactory>::command());
        return match std::io::stdout().write_all(&page) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    match run(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vxtunctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<String, String> {
    let Some(verb) = args.verb else {
        return Err("a command is needed (see vxtunctl --help)".into());
    };
    let request = match verb {
        Verb::Show => Request::Show,
        Verb::DumpFlows { config_format } => Request::DumpFlows { config_format },
        Verb::AddFlow { flow } => Request::AddFlows(vec![flow]),
        Verb::AddFlows { file } => Request::AddFlows(read_flows(&file)?),
        Verb::DelFlows { strict, r#match } => Request::DelFlows {
            strict,
            pattern: r#match,
        },
        Verb::ModFlows { strict, flow } => Request::ModFlows { strict, flow },
        Verb::ReplaceFlows { file } => Request::ReplaceFlows(read_flows(&file)?),
        Verb::DumpPorts { port } => Request::DumpPorts(port),
        Verb::FdbShow => Request::FdbShow,
        Verb::FdbFlush => Request::FdbFlush,
        Verb::Reload => Request::Reload,
        Verb::Evpn => Request::Evpn,
        Verb::Trace {
            description,
            packet,
        } => Request::Trace {
            description,
            packet,
        },
    };
    let socket = match args.socket {
        Some(s) => s,
        None => only_socket()?,
    };
    let answer = vxtund::io::control::call(&socket, &request.encode()).map_err(|e| {
        format!(
            "cannot reach vxtund at {}: {e} (is it running? is this the right socket?)",
            socket.display()
        )
    })?;
    let response = Response::decode(&answer);
    if response.ok {
        Ok(response.text)
    } else {
        Err(response.text)
    }
}

/// Flows from a file or standard input: one per line; blank lines and `#` comments skipped.
fn read_flows(file: &Path) -> Result<Vec<String>, String> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The one control socket in /run/vxtund, when there is exactly one.
fn only_socket() -> Result<PathBuf, String> {
    let sockets: Vec<PathBuf> = std::fs::read_dir(CONTROL_DIR)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    match sockets.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no vxtund control socket in {CONTROL_DIR}: is vxtund running? (or give -s SOCKET)"
        )),
        many => Err(format!(
            "several vxtund control sockets in {CONTROL_DIR}; choose one with -s: {}",
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
