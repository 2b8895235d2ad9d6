//! The control socket: a Unix stream socket (mode 0600) on which the daemon answers one
//! request per connection (see [`crate::control`] for the protocol).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// Longest request accepted (a replace-flows of many flows fits).
const MAX_REQUEST: u64 = 64 << 20;

/// Failures while opening the control socket.
#[derive(Debug, Error)]
pub enum ControlError {
    /// Another live daemon answers on this path.
    #[error("control socket {path}: another vxtund is listening there")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Creating, binding or securing the socket failed.
    #[error("control socket {path}: {what}: {source}")]
    Setup {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The system's answer.
        source: io::Error,
    },
}

/// The listening control socket; removed from the file system on drop.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (creating its directory), replacing a stale socket left by a dead daemon,
    /// and makes it accessible to its owner only.
    pub fn bind(path: &Path) -> Result<ControlSocket, ControlError> {
        let setup = |what| {
            move |source| ControlError::Setup {
                path: path.to_owned(),
                what,
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(setup("creating its directory"))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(setup("removing a stale socket"))?;
        }
        let listener = UnixListener::bind(path).map_err(setup("binding"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(setup("setting mode 0600"))?;
        listener
            .set_nonblocking(true)
            .map_err(setup("making it non-blocking"))?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
        })
    }

    /// The descriptor to poll for connections.
    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one waiting connection, reads its request, and writes `answer(request)` back.
    /// Returns Ok(false) when no connection was waiting.
    pub fn serve_one(&self, answer: impl FnOnce(&str) -> String) -> io::Result<bool> {
        let mut stream = match self.listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut request = String::new();
        (&mut stream)
            .take(MAX_REQUEST)
            .read_to_string(&mut request)?;
        stream.write_all(answer(&request).as_bytes())?;
        Ok(true)
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `request` to the daemon at `path` and returns its whole answer.
pub fn call(path: &Path, request: &str) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
