//! Dialling the controllers of `[openflow] controllers`: one task per controller that connects
//! (`tcp:`, `ssl:` or `unix:`; `ssl:` with the TLS configuration in force at each attempt, so
//! a reload's new certificates serve the next connection), runs the session, and when the controller is unreachable or goes away
//! tries again for ever, waiting 1 s, then twice as long each time up to `max_backoff`, as
//! Open vSwitch's rconn does. A failure is logged once per incident.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use rustls::pki_types::ServerName;

use super::session::{self, Kind};
use super::{Plane, HANDSHAKE_TIMEOUT};
use crate::config::ControllerTarget;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait between attempts.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// A connection to a controller, any kind.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Unix(tokio::net::UnixStream),
}

/// Keeps a connection to `target` up while the daemon runs.
pub(super) async fn dial(
    plane: Arc<Plane>,
    target: ControllerTarget,
    probe: Duration,
    max_backoff: Duration,
) {
    let name = target.to_string();
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    loop {
        match connect(&target, &plane).await {
            Ok(stream) => {
                failing = false;
                info!(controller = name, "OpenFlow: connected to the controller");
                let started = Instant::now();
                let kind = Kind::Controller { probe };
                let ended = match stream {
                    Stream::Tcp(s) => session::run(s, &name, Arc::clone(&plane), kind).await,
                    Stream::Tls(s) => session::run(s, &name, Arc::clone(&plane), kind).await,
                    Stream::Unix(s) => session::run(s, &name, Arc::clone(&plane), kind).await,
                };
                match ended {
                    Ok(()) => info!(
                        controller = name,
                        "OpenFlow: the controller closed the connection"
                    ),
                    Err(e) => warn!(
                        controller = name,
                        "OpenFlow: the connection to the controller ended: {e}"
                    ),
                }
                if started.elapsed() >= STABLE {
                    backoff = FIRST_BACKOFF;
                }
            }
            Err(e) if failing => {
                debug!(
                    controller = name,
                    "OpenFlow: still cannot reach the controller: {e}"
                )
            }
            Err(e) => {
                warn!(
                    controller = name,
                    "OpenFlow: cannot reach the controller: {e}; retrying"
                );
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

/// Connects within [`CONNECT_TIMEOUT`]; for `ssl:`, then shakes hands within
/// [`HANDSHAKE_TIMEOUT`] (a failed handshake is counted with the listeners' refusals).
async fn connect(target: &ControllerTarget, plane: &Plane) -> io::Result<Stream> {
    let timed_out =
        |what: &str| io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"));
    let tcp = |addr| async move {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connecting"))??;
        let _ = stream.set_nodelay(true);
        Ok::<_, io::Error>(stream)
    };
    match target {
        ControllerTarget::Tcp(addr) => Ok(Stream::Tcp(tcp(*addr).await?)),
        ControllerTarget::Ssl(addr) => {
            let Some(material) = plane.tls() else {
                return Err(io::Error::other("no TLS configuration in force"));
            };
            let stream = tcp(*addr).await?;
            // The certificate's name is not checked (see `crate::tls`): the address serves
            // only as the name the client hello carries.
            let name = ServerName::IpAddress(addr.ip().into());
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&material.client));
            let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream))
                .await
                .map_err(|_| timed_out("the TLS handshake"))
                .and_then(|r| r);
            match shaken {
                Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
                Err(e) => {
                    plane.refuse_tls(&target.to_string(), &e.to_string());
                    Err(io::Error::new(e.kind(), format!("TLS handshake: {e}")))
                }
            }
        }
        ControllerTarget::Unix(path) => {
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(path))
                    .await
                    .map_err(|_| timed_out("connecting"))??;
            Ok(Stream::Unix(stream))
        }
    }
}
