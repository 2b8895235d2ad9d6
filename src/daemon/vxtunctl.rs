//! The vxtunctl control socket: one request at a time, answered through [`super::ops`].

use std::time::Instant;

use tracing::{info, warn};

use super::{fastpath, wait_unless_stopped, Shared};
use crate::control::{self, Request, Response};
use crate::io::control::ControlSocket;
use crate::io::Poller;

/// Answers `vxtunctl` on the control socket, one request at a time, until stopped.
pub(super) fn control_loop(sh: &Shared, control: &ControlSocket) -> Result<(), ()> {
    let mut poller = Poller::new(&[control.fd(), sh.stop.fd()]);
    loop {
        if let Some(end) = wait_unless_stopped(&mut poller, 1, "the control socket") {
            return end;
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
