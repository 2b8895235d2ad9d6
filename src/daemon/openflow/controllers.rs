//! Dialling the controllers of `[openflow] controllers`: one task per controller that connects
//! (`tcp:` or `unix:`), runs the session, and when the controller is unreachable or goes away
//! tries again for ever, waiting 1 s, then twice as long each time up to `max_backoff`, as
//! Open vSwitch's rconn does. A failure is logged once per incident.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::session::{self, Kind};
use super::Plane;
use crate::config::ControllerTarget;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait between attempts.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// A connection to a controller, either kind.
enum Stream {
    Tcp(tokio::net::TcpStream),
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
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&target)).await {
            Ok(Ok(stream)) => {
                failing = false;
                info!(controller = name, "OpenFlow: connected to the controller");
                let started = Instant::now();
                let kind = Kind::Controller { probe };
                let ended = match stream {
                    Stream::Tcp(s) => session::run(s, &name, Arc::clone(&plane), kind).await,
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
            Ok(Err(e)) if failing => {
                debug!(
                    controller = name,
                    "OpenFlow: still cannot reach the controller: {e}"
                )
            }
            Ok(Err(e)) => {
                warn!(
                    controller = name,
                    "OpenFlow: cannot reach the controller: {e}; retrying"
                );
                failing = true;
            }
            Err(_) if failing => {}
            Err(_) => {
                warn!(
                    controller = name,
                    "OpenFlow: connecting to the controller timed out; retrying"
                );
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

async fn connect(target: &ControllerTarget) -> io::Result<Stream> {
    match target {
        ControllerTarget::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Stream::Tcp(stream))
        }
        ControllerTarget::Unix(path) => {
            Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?))
        }
    }
}
