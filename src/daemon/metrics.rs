//! The Prometheus endpoint of `[metrics] listen`: `GET /metrics` over HTTP/1.1 (hyper) on a
//! single-threaded tokio runtime of its own thread.
//!
//! A scrape reads the counters as every control plane does (`Shared::query`: every shard's
//! counters added up without the shards' locks), takes the numbers ([`Snapshot::take`]) and
//! renders the text outside every lock, so a scrape never holds up a data-path thread.
//! Hygiene against junk, slow clients and floods: at most [`MAX_CONNECTIONS`] at once (more are
//! closed on accept), [`HEADER_TIMEOUT`] to send a request's head, a request head of at most
//! [`MAX_REQUEST`] bytes, [`CONNECTION_TIMEOUT`] for a whole connection; 404 for other paths,
//! 405 (with `Allow`) for other methods, and hyper's 400/431 for what is not HTTP. Every
//! refusal is counted by reason (`vxtund_metrics_requests_refused_total`), never a panic.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tracing::{debug, warn};

use super::notify::{self, Role};
use super::Shared;
use crate::metrics::{render, Snapshot};

/// Most connections at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection may last, keep-alive included.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head (hyper's smallest buffer).
pub const MAX_REQUEST: usize = 8192;

/// The metrics listener could not be set up.
#[derive(Debug, Error)]
#[error("metrics listener {addr}: {what}: {source}")]
pub struct MetricsError {
    addr: SocketAddr,
    what: &'static str,
    source: io::Error,
}

/// Why a request or connection was refused; each has a counter.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NotFound,
    MethodNotAllowed,
    BadRequest,
    Timeout,
    TooManyConnections,
}

const REFUSALS: [(Refusal, &str); 5] = [
    (Refusal::NotFound, "not_found"),
    (Refusal::MethodNotAllowed, "method_not_allowed"),
    (Refusal::BadRequest, "bad_request"),
    (Refusal::Timeout, "timeout"),
    (Refusal::TooManyConnections, "too_many_connections"),
];

/// The daemon's own counters that the metrics show beside the switch's.
#[derive(Debug)]
pub(super) struct DaemonCounters {
    /// Reloads applied.
    pub(super) reloads_applied: AtomicU64,
    /// Reloads refused.
    pub(super) reloads_refused: AtomicU64,
    refused: [AtomicU64; REFUSALS.len()],
    started: SystemTime,
}

impl DaemonCounters {
    pub(super) fn new() -> DaemonCounters {
        DaemonCounters {
            reloads_applied: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            refused: Default::default(),
            started: SystemTime::now(),
        }
    }

    fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Binds `addr` at start-up, so that a port in use stops the daemon before it runs.
pub(super) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, MetricsError> {
    let fail = |what| move |source| MetricsError { addr, what, source };
    let listener = std::net::TcpListener::bind(addr).map_err(fail("binding"))?;
    listener
        .set_nonblocking(true)
        .map_err(fail("making it non-blocking"))?;
    Ok(listener)
}

/// The metrics text as a scrape sees it.
pub(super) fn scrape(sh: &Shared) -> String {
    let mut snapshot = sh.query(Snapshot::take);
    snapshot.threads = sh.thread_frames();
    let c = &sh.counters;
    snapshot.reloads = (
        c.reloads_applied.load(Ordering::Relaxed),
        c.reloads_refused.load(Ordering::Relaxed),
    );
    snapshot.http_refused = REFUSALS
        .iter()
        .map(|&(why, name)| (name, c.refused[why as usize].load(Ordering::Relaxed)))
        .collect();
    snapshot.fast_path = super::fastpath::metrics(sh);
    snapshot.version = env!("CARGO_PKG_VERSION");
    snapshot.start_time_seconds = c
        .started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut text = render(&snapshot);
    text.push_str(&sh.evpn_metrics());
    text
}

/// Serves `GET /metrics` until the daemon stops.
pub(super) fn serve(shared: Arc<Shared>, listener: std::net::TcpListener) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (sh, connections) = (Arc::clone(&shared), Arc::new(AtomicUsize::new(0)));
        tokio::spawn(async move { accept_loop(&listener, &sh, &connections).await });
        notify::beat_in_runtime(&shared, Role::Metrics);
        shared.stop.raised().await
    });
    runtime.shutdown_background();
    result
}

async fn accept_loop(
    listener: &tokio::net::TcpListener,
    shared: &Arc<Shared>,
    connections: &Arc<AtomicUsize>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                warn!("metrics: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            connections.fetch_sub(1, Ordering::AcqRel);
            shared.counters.refuse(Refusal::TooManyConnections);
            debug!(%peer, "metrics: {MAX_CONNECTIONS} connections already; closed");
            continue;
        }
        let (shared, connections) = (Arc::clone(shared), Arc::clone(connections));
        tokio::spawn(async move {
            connection(stream, &shared).await;
            connections.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let sh = Arc::clone(&sh);
        async move { Ok::<_, Infallible>(answer(&sh, &request)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST)
        // A client may shut its side down once the request is sent (curl --http1.1 with
        // stdin, scripted probes): without this hyper can close on that end of file before
        // the answer is written, and the client gets nothing.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_timeout() => shared.counters.refuse(Refusal::Timeout),
        Ok(Err(e)) if e.is_incomplete_message() || e.is_closed() || e.is_canceled() => {}
        Ok(Err(e)) => {
            debug!("metrics: {e}");
            shared.counters.refuse(Refusal::BadRequest);
        }
        Err(_) => shared.counters.refuse(Refusal::Timeout),
    }
}

fn answer(sh: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        sh.counters.refuse(Refusal::NotFound);
        return reply(
            StatusCode::NOT_FOUND,
            "vxtund serves only /metrics\n".into(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        sh.counters.refuse(Refusal::MethodNotAllowed);
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = reply(StatusCode::OK, scrape(sh));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
