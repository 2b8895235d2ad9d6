//! OpenFlow sessions: the listeners of `[openflow] listen` (`punix:` and `ptcp:`) and one task
//! per connection, on a single-threaded tokio runtime of their own.
//!
//! A session frames messages (8-byte header, at most 64 KiB each, so its buffer is bounded),
//! hands them (each, or a burst that has already arrived) to the pure [`Agent`] on the
//! blocking pool (a dump or an edit of 100,000 flows
//! never holds up other sessions), and writes the answers back. Nothing here touches the data
//! path except through [`super::ops`], which holds the switch's lock only to copy or swap.
//!
//! Limits against hostile or broken clients: at most [`MAX_SESSIONS`] at once (more are closed
//! on accept), [`HELLO_TIMEOUT`] to say HELLO, an ECHO probe after [`PROBE_INTERVAL`] of
//! silence and a close when the next one passes unanswered, [`MESSAGE_TIMEOUT`] for the rest
//! of a message once begun, and [`WRITE_TIMEOUT`] for a client that does not read its
//! answers. A header that breaks the framing (wrong version, impossible length) is answered
//! with an ERROR and the connection closed, as Open vSwitch does.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tracing::{debug, info, warn};

use super::ops::SwitchHandle;
use super::Shared;
use crate::config::{Config, ListenTarget};
use crate::io::control::{ControlError, ControlSocket};
use crate::openflow::agent::{Agent, Outcome};
use crate::openflow::{
    Message, HEADER_LEN, OFPBRC_BAD_LEN, OFPBRC_BAD_VERSION, OFPET_BAD_REQUEST, VERSION,
};

/// Most OpenFlow sessions at once, over all listeners. An idle session costs a few KiB.
pub const MAX_SESSIONS: usize = 512;
/// Most messages handed to the agent at once (those already received).
const MAX_BATCH: usize = 4096;
/// The read buffer of a session.
const READ_BUFFER: usize = 16 * 1024;
/// How long a new connection has to send its HELLO.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a session is probed with ECHO; a second such silence closes it.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the rest of a message may take once its first byte has arrived.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer may take to be written before the session is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The listeners, bound at start-up (so that a bad target stops the daemon before it runs).
pub(super) struct Listeners {
    unix: Vec<ControlSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Listeners {
    /// Binds every target of `config`: Unix sockets with mode 0600 (a stale socket is replaced,
    /// a live one refused), TCP on the given address.
    pub(super) fn bind(config: &Config) -> Result<Listeners, ControlError> {
        let mut listeners = Listeners {
            unix: Vec::new(),
            tcp: Vec::new(),
        };
        for target in &config.openflow.listen {
            match target {
                ListenTarget::Unix(path) => listeners.unix.push(ControlSocket::bind(path, None)?),
                ListenTarget::Tcp(addr) => {
                    let listener = std::net::TcpListener::bind(addr).map_err(|source| {
                        ControlError::Setup {
                            path: target.to_string().into(),
                            what: "binding",
                            source,
                        }
                    })?;
                    listener
                        .set_nonblocking(true)
                        .map_err(|source| ControlError::Setup {
                            path: target.to_string().into(),
                            what: "making it non-blocking",
                            source,
                        })?;
                    listeners.tcp.push(listener);
                }
            }
        }
        Ok(listeners)
    }

    /// Whether there is nothing to listen on.
    pub(super) fn is_empty(&self) -> bool {
        self.unix.is_empty() && self.tcp.is_empty()
    }
}

/// The datapath id: the configured one, or one derived from what tells this daemon apart
/// (the machine, the config file's name, the device, the underlay addresses), so that it is
/// stable across restarts and differs between the segments of one machine. 48 bits, as the
/// ids Open vSwitch derives from a bridge's MAC address.
pub(super) fn datapath_id(config: &Config) -> u64 {
    if let Some(id) = config.openflow.datapath_id {
        return id;
    }
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    derive_datapath_id(machine.trim(), config)
}

fn derive_datapath_id(machine_id: &str, config: &Config) -> u64 {
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let stem = config
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let parts = [
        machine_id.to_owned(),
        stem.unwrap_or_default(),
        config.device.name.clone(),
        config.underlay.locals_text(),
    ];
    for part in parts {
        for b in part.bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (hash ^ (hash >> 48)) & 0x0000_ffff_ffff_ffff
}

/// Runs every listener until the daemon stops.
pub(super) fn serve(shared: Arc<Shared>, listeners: Listeners) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(4)
        .build()?;
    let sessions = Arc::new(AtomicUsize::new(0));
    let result = runtime.block_on(async {
        for listener in &listeners.unix {
            let listener = tokio::net::UnixListener::from_std(listener.try_clone_listener()?)?;
            let (shared, sessions) = (Arc::clone(&shared), Arc::clone(&sessions));
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => start(stream, "unix".into(), &shared, &sessions),
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
        }
        for listener in &listeners.tcp {
            let listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
            let (shared, sessions) = (Arc::clone(&shared), Arc::clone(&sessions));
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            start(stream, peer.to_string(), &shared, &sessions)
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
        }
        shared.stop.raised().await?;
        Ok::<(), io::Error>(())
    });
    // Sessions still running (or blocked in a slow client's write) are dropped, not awaited.
    runtime.shutdown_background();
    drop(listeners);
    result
}

async fn accept_failed(e: io::Error) {
    // Out of descriptors and the like: wait rather than spin.
    warn!("OpenFlow: accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Starts a session on `stream`, or closes it at once when [`MAX_SESSIONS`] are running.
fn start<S>(stream: S, peer: String, shared: &Arc<Shared>, sessions: &Arc<AtomicUsize>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if sessions.fetch_add(1, Ordering::AcqRel) >= MAX_SESSIONS {
        sessions.fetch_sub(1, Ordering::AcqRel);
        debug!(
            peer,
            "OpenFlow: {MAX_SESSIONS} sessions already; connection closed"
        );
        return;
    }
    let (shared, sessions) = (Arc::clone(shared), Arc::clone(sessions));
    tokio::spawn(async move {
        match session(stream, &peer, shared).await {
            Ok(()) => debug!(peer, "OpenFlow session closed"),
            Err(e) => debug!(peer, "OpenFlow session ended: {e}"),
        }
        sessions.fetch_sub(1, Ordering::AcqRel);
    });
}

/// One connection, from HELLO to close.
async fn session<S>(stream: S, peer: &str, shared: Arc<Shared>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let mut agent = Agent::new(shared.datapath_id);
    write(&mut wr, &[agent.hello()]).await?;
    let mut probed = false;
    let mut last_heard = Instant::now();
    loop {
        let wait = if agent.negotiated() {
            PROBE_INTERVAL
        } else {
            HELLO_TIMEOUT
        };
        // Wait for the start of a message without consuming it, so that the probe timer can
        // fire between messages; a message once begun must then arrive within its own limit.
        match tokio::time::timeout(wait, rd.fill_buf()).await {
            Ok(Ok([])) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) if !agent.negotiated() => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no HELLO"));
            }
            Err(_) if probed => {
                info!(
                    peer,
                    "OpenFlow: no answer to an echo request for {}s; closing",
                    last_heard.elapsed().as_secs()
                );
                return Ok(());
            }
            Err(_) => {
                probed = true;
                write(&mut wr, &[agent.echo_probe()]).await?;
                continue;
            }
        }
        let expect = agent.negotiated().then_some(VERSION);
        let first = match tokio::time::timeout(MESSAGE_TIMEOUT, read_message(&mut rd, expect)).await
        {
            Ok(Ok(Read::Message(m))) => m,
            Ok(Ok(Read::End)) => return Ok(()),
            Ok(Ok(Read::Refused(error))) => {
                // The stream's framing can no longer be trusted: say why and close.
                let _ = write(&mut wr, &[error]).await;
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a message begun but not finished",
                ))
            }
        };
        probed = false;
        last_heard = Instant::now();
        // Whatever else has already arrived goes along, so that a burst (add-flows of a big
        // file) becomes one table change rather than one per flow.
        let mut messages = vec![first];
        let mut refused = None;
        while messages.len() < MAX_BATCH && complete_message_buffered(rd.buffer()) {
            match read_message(&mut rd, expect).await? {
                Read::Message(m) => messages.push(m),
                Read::End => break,
                // Answered after the messages before it, then the session closes.
                Read::Refused(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        let dp = Arc::clone(&shared);
        let (back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = agent.handle_batch(&mut SwitchHandle(&dp), &messages);
            (agent, outcome)
        })
        .await
        .map_err(io::Error::other)?;
        agent = back;
        let Outcome { replies, close } = outcome;
        write(&mut wr, &replies).await?;
        if close {
            return Ok(());
        }
        if let Some(error) = refused {
            let _ = write(&mut wr, &[error]).await;
            return Ok(());
        }
    }
}

/// Whether `buffered` starts with a whole message.
fn complete_message_buffered(buffered: &[u8]) -> bool {
    buffered.len() >= HEADER_LEN
        && buffered.len() >= usize::from(u16::from_be_bytes([buffered[2], buffered[3]]))
}

/// What [`read_message`] read.
enum Read {
    /// A whole message.
    Message(Vec<u8>),
    /// The end of the stream, between messages.
    End,
    /// A header that breaks the framing (a length below the header's own, or the wrong
    /// version after HELLO), and the ERROR to send before closing.
    Refused(Vec<u8>),
}

/// Reads one message. With `expect`, a header of another version is refused before its body
/// is read: its length cannot be trusted either.
async fn read_message<R: AsyncRead + Unpin>(rd: &mut R, expect: Option<u8>) -> io::Result<Read> {
    let mut header = [0u8; HEADER_LEN];
    match rd.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Read::End),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let refuse = |code| {
        let xid = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        Message::Error {
            err_type: OFPET_BAD_REQUEST,
            code,
            data: header.to_vec(),
        }
        .encode(xid)
    };
    if expect.is_some_and(|v| v != header[0]) {
        return Ok(Read::Refused(refuse(OFPBRC_BAD_VERSION)));
    }
    if len < HEADER_LEN {
        return Ok(Read::Refused(refuse(OFPBRC_BAD_LEN)));
    }
    let mut message = vec![0u8; len];
    message[..HEADER_LEN].copy_from_slice(&header);
    rd.read_exact(&mut message[HEADER_LEN..]).await?;
    Ok(Read::Message(message))
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, messages: &[Vec<u8>]) -> io::Result<()> {
    let all = async {
        for m in messages {
            wr.write_all(m).await?;
        }
        wr.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, all)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_datapath_ids_are_stable_and_tell_segments_apart() {
        let config = |name: &str, local: &str| {
            let text = format!("[underlay]\nlocal = \"{local}\"\n");
            Config::parse(std::path::Path::new(name), &text).unwrap()
        };
        let seg1 = config("/etc/vxtund/seg1.toml", "192.168.200.101");
        let seg2 = config("/etc/vxtund/seg2.toml", "192.168.200.102");
        let a = derive_datapath_id("0123", &seg1);
        assert_eq!(a, derive_datapath_id("0123", &seg1), "stable");
        assert_ne!(a, derive_datapath_id("0123", &seg2), "per segment");
        assert_ne!(a, derive_datapath_id("4567", &seg1), "per machine");
        assert_eq!(a >> 48, 0, "48 bits");
    }
}
