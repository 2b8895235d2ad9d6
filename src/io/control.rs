//! The control socket: a Unix stream socket (mode 0600, or 0660 for a group) on which the
//! daemon answers one request per connection (see [`crate::control`] for the protocol).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// Longest request accepted (a replace-flows of many flows fits).
const MAX_REQUEST: u64 = 64 << 20;

/// Failures while opening a listening socket (vxtunctl's, or an OpenFlow listener).
#[derive(Debug, Error)]
pub enum ControlError {
    /// Another live daemon answers on this path.
    #[error("{path}: another vxtund is listening there")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Creating, binding or securing the socket failed.
    #[error("{path}: {what}: {source}")]
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
    /// and makes it accessible to its owner only (mode 0600), or with `group` to that group too
    /// (mode 0660).
    pub fn bind(path: &Path, group: Option<&str>) -> Result<ControlSocket, ControlError> {
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
        let gid = match group {
            Some(g) => Some(group_id(g).map_err(setup("looking up its group"))?),
            None => None,
        };
        let listener = UnixListener::bind(path).map_err(setup("binding"))?;
        let secured = match gid {
            None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(setup("setting mode 0600")),
            Some(gid) => std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(setup("changing its group"))
                .and_then(|()| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                        .map_err(setup("setting mode 0660"))
                }),
        };
        if let Err(e) = secured {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
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

    /// A second handle on the listening socket (non-blocking), for an event loop of its own.
    pub fn try_clone_listener(&self) -> io::Result<UnixListener> {
        self.listener.try_clone()
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

/// The ID of the system group `name`.
fn group_id(name: &str) -> io::Result<libc::gid_t> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the group name"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid value of the plain C struct `group`.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local that outlives the call; `buf.len()` is the
    // buffer's true size.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if found.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no group `{name}` on this system"),
        ));
    }
    Ok(grp.gr_gid)
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
