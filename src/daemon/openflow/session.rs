//! One OpenFlow connection, from HELLO to close, whichever side dialled: framing, limits,
//! the pure [`Agent`] on the blocking pool, and the asynchronous messages (PACKET_IN,
//! FLOW_REMOVED, PORT_STATUS) the switch sends without being asked.
//!
//! A session frames messages (8-byte header, at most 64 KiB each, so its buffer is bounded)
//! and hands them (each, or a burst that has already arrived) to the agent on tokio's blocking
//! pool, so that a dump or an edit of 100,000 flows never holds up other sessions. Events from
//! the switch reach it through a bounded queue of its own; when it is full, events are
//! dropped and counted, never waited for.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::info;

use super::super::ops::SwitchHandle;
use super::Plane;
use crate::openflow::agent::{Agent, AsyncEvent, Outcome};
use crate::openflow::{
    Message, HEADER_LEN, OFPBRC_BAD_LEN, OFPBRC_BAD_VERSION, OFPET_BAD_REQUEST, VERSION,
};

/// Most messages handed to the agent at once (those already received).
const MAX_BATCH: usize = 4096;
/// The read buffer of a session.
const READ_BUFFER: usize = 16 * 1024;
/// How long a new connection has to send its HELLO.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a management session is probed with ECHO; a second such silence
/// closes it. Controller connections use `[openflow] inactivity_probe`.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the rest of a message may take once its first byte has arrived.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer may take to be written before the session is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many events may wait for one session.
const EVENT_QUEUE: usize = 1024;

/// Which side dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A client of `[openflow] listen` (ovs-ofctl, a service controller): asynchronous
    /// messages only once it asks for them with a non-zero miss_send_len, as Open vSwitch.
    Service,
    /// A controller vxtund dialled: probed after `probe` of silence, gets asynchronous
    /// messages, and counts for the fail mode.
    Controller {
        /// The inactivity probe.
        probe: Duration,
    },
}

/// Runs one connection until it closes.
pub(super) async fn run<S>(stream: S, peer: &str, plane: Arc<Plane>, kind: Kind) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = plane.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut events) = mpsc::channel::<Arc<AsyncEvent>>(EVENT_QUEUE);
    plane.subscribe(id, tx);
    let mut counted = false;
    let result = serve(stream, peer, &plane, kind, id, &mut events, &mut counted).await;
    plane.unsubscribe(id);
    if counted {
        plane.controller_down(peer);
    }
    result
}

async fn serve<S>(
    stream: S,
    peer: &str,
    plane: &Arc<Plane>,
    kind: Kind,
    id: u64,
    events: &mut mpsc::Receiver<Arc<AsyncEvent>>,
    counted: &mut bool,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = &plane.shared;
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let mut agent = match kind {
        Kind::Service => Agent::new(id, shared.datapath_id).service(),
        Kind::Controller { .. } => Agent::new(id, shared.datapath_id),
    };
    write(&mut wr, &[agent.hello()]).await?;
    let mut probed = false;
    let mut last_heard = Instant::now();
    loop {
        let wait = match (agent.negotiated(), kind) {
            (false, _) => HELLO_TIMEOUT,
            (true, Kind::Service) => PROBE_INTERVAL,
            (true, Kind::Controller { probe }) => probe,
        };
        // Wait for the start of a message without consuming it, so that the probe timer can
        // fire between messages; a message once begun must then arrive within its own limit.
        let started = tokio::select! {
            r = async { rd.fill_buf().await.map(|b| !b.is_empty()) } => r?,
            _ = tokio::time::sleep_until(last_heard + wait) => {
                if !agent.negotiated() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no HELLO"));
                }
                if probed {
                    info!(
                        peer,
                        "OpenFlow: no answer to an echo request for {}s; closing",
                        last_heard.elapsed().as_secs()
                    );
                    return Ok(());
                }
                probed = true;
                last_heard = Instant::now();
                write(&mut wr, &[agent.echo_probe()]).await?;
                continue;
            }
            Some(event) = events.recv() => {
                let dp = SwitchHandle(shared);
                if let Some(message) = agent.async_message(&dp, &event) {
                    write(&mut wr, &[message]).await?;
                }
                continue;
            }
        };
        if !started {
            return Ok(());
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
        let dp = Arc::clone(shared);
        let (back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = agent.handle_batch(&mut SwitchHandle(&dp), &messages);
            (agent, outcome)
        })
        .await
        .map_err(io::Error::other)?;
        agent = back;
        if !*counted && agent.negotiated() && matches!(kind, Kind::Controller { .. }) {
            *counted = true;
            plane.controller_up(peer);
        }
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
