//! The I/O shell: the TAP device, UDP and raw GRE sockets with batched system calls, TCP MD5
//! keys for BGP, and the few netdev operations the daemon needs. All `unsafe` in vxtund lives under this module.

pub mod bpf;
pub mod control;
pub mod netdev;
pub mod socket;
pub mod steer;
pub mod tap;
pub mod tcp_md5;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Waits for any of a fixed set of descriptors to become readable (`poll`), for as many
/// descriptors as it is given.
pub struct Poller {
    fds: Vec<libc::pollfd>,
}

impl Poller {
    /// A poller over `fds`, in this order.
    pub fn new(fds: &[RawFd]) -> Poller {
        Poller {
            fds: fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
        }
    }

    /// Blocks until at least one descriptor is readable (or a signal interrupts the wait).
    pub fn wait(&mut self) -> io::Result<()> {
        self.wait_timeout(None)
    }

    /// Like [`Poller::wait`], but returns after `timeout` at the latest (then nothing is
    /// ready).
    pub fn wait_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let ms = timeout.map_or(-1, |t| {
            t.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
        });
        self.poll(ms)
    }

    /// Like [`Poller::wait_timeout`], but first polls without sleeping for up to `spin`,
    /// yielding the CPU to any other runnable thread between two looks: while frames keep
    /// coming, the thread is never put to sleep and nobody has to wake it.
    pub fn wait_spinning(
        &mut self,
        spin: std::time::Duration,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<()> {
        let until = std::time::Instant::now() + spin;
        loop {
            self.poll(0)?;
            if self.fds.iter().any(|p| p.revents != 0) {
                return Ok(());
            }
            if std::time::Instant::now() >= until {
                break;
            }
            // SAFETY: sched_yield takes no arguments and cannot fail on Linux.
            unsafe { libc::sched_yield() };
        }
        self.wait_timeout(timeout)
    }

    /// One `poll` with a timeout in milliseconds (-1: none, 0: do not sleep).
    fn poll(&mut self, ms: libc::c_int) -> io::Result<()> {
        // SAFETY: `fds` is a valid array of initialised pollfd structs that outlives the call.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if rc <= 0 {
            self.fds.iter_mut().for_each(|p| p.revents = 0);
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether descriptor `i` was readable (or in error) after the last wait.
    pub fn ready(&self, i: usize) -> bool {
        self.fds
            .get(i)
            .is_some_and(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
    }
}

/// An event threads can poll on (an eventfd): the stop signal, or "the sockets changed".
pub struct Event(OwnedFd);

impl Event {
    /// A new, unsignalled event.
    pub fn new() -> io::Result<Event> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Event(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wakes every thread polling [`Event::fd`]; it stays readable until [`Event::clear`].
    pub fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Makes the event unsignalled again.
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Waits, on a tokio runtime, until the event is raised (it stays raised).
    pub async fn raised(&self) -> io::Result<()> {
        // SAFETY: the descriptor belongs to `self`, which outlives the registration: it is
        // dropped before this function returns, and nothing closes the descriptor meanwhile.
        let registered = unsafe { tokio::io::unix::AsyncFd::register(self.0.as_raw_fd()) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        let _ready = registered.readable().await?;
        Ok(())
    }
}
