//! The control thread: vxtunctl's socket, one request at a time, answered through
//! [`super::ops`]; and the flows' timeouts, which expire here whatever else runs (OpenFlow or
//! not).

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::notify::Role;
use super::{fastpath, Shared};
use crate::control::{self, Request, Response};
use crate::io::control::ControlSocket;
use crate::io::Poller;

/// How often flows are checked for their timeouts.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(500);

/// Answers `vxtunctl` on the control socket, one request at a time, and expires flows every
/// [`EXPIRY_INTERVAL`], until stopped.
pub(super) fn control_loop(sh: &Shared, control: &ControlSocket) -> Result<(), ()> {
    let mut poller = Poller::new(&[control.fd(), sh.stop.fd()]);
    let mut expiry = Instant::now() + EXPIRY_INTERVAL;
    loop {
        let wait = expiry.saturating_duration_since(Instant::now());
        if let Err(e) = poller.wait_timeout(Some(sh.tick.map_or(wait, |t| t.min(wait)))) {
            error!("waiting for the control socket: {e}");
            return Err(());
        }
        sh.lives.of(Role::Control).beat();
        if poller.ready(1) {
            return Ok(());
        }
        if Instant::now() >= expiry {
            sh.expire_flows();
            expiry = Instant::now() + EXPIRY_INTERVAL;
        }
        if !poller.ready(0) {
            continue;
        }
        let served = control.serve_one(|text| {
            let response = match Request::parse(text) {
                Ok(Request::Reload) => match sh.reload() {
                    Ok(summary) => Response::ok(summary),
                    Err(e) => Response::error(e),
                },
                Ok(Request::Evpn) => match sh.evpn_status() {
                    text if text.is_empty() => Response::error("no [evpn] in the config"),
                    text => Response::ok(text),
                },
                Ok(request) if request.is_edit() => {
                    info!(request = text.lines().next().unwrap_or(""), "flow edit");
                    sh.edit_flows(&request)
                }
                Ok(Request::FdbFlush) => {
                    sh.flush_fdb();
                    Response::ok(String::new())
                }
                Ok(request) => {
                    let now = Instant::now();
                    let mut response =
                        sh.query_mut(|sw| control::execute(sw, &request, sh.started, now));
                    if response.ok && request == Request::Show {
                        response.text.push_str(&sh.workers_status());
                        response.text.push_str(&fastpath::status(sh));
                        response.text.push_str(&sh.openflow_status());
                        response.text.push_str(&sh.evpn_status());
                    }
                    response
                }
                Err(e) => Response::error(e),
            };
            response.encode()
        });
        if let Err(e) = served {
            warn!("serving a control request: {e}");
        }
    }
}
