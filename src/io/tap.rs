//! The TAP device: created (or opened, if it exists) with tun-rs, without the packet-information
//! header, non-blocking so a thread can drain it in batches.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use ipnet::IpNet;

use crate::wire::offload::{VnetHdr, VNET_HDR_LEN};
use thiserror::Error;
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

/// Failures while setting up the TAP device.
#[derive(Debug, Error)]
pub enum TapError {
    /// The device could not be created or opened.
    #[error("opening TAP `{name}`: {source}{}", open_hint(source))]
    Open {
        /// Device name.
        name: String,
        /// The system's answer.
        source: io::Error,
    },
    /// A configuration step on the open device failed.
    #[error("{what} on TAP `{name}`: {source}")]
    Setup {
        /// Device name.
        name: String,
        /// What was being done.
        what: String,
        /// The system's answer.
        source: io::Error,
    },
}

/// A hint for the likely cause of a failed open.
fn open_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => " (vxtund needs CAP_NET_ADMIN)",
        _ if e.raw_os_error() == Some(libc::EBUSY) => " (is another process attached to it?)",
        _ if e.raw_os_error() == Some(libc::EINVAL) => {
            " (is the name taken by a device that is not a TAP?)"
        }
        _ => "",
    }
}

/// An open TAP device, with one or more queues (`IFF_MULTI_QUEUE`): each queue is a descriptor
/// of its own, read and written by one data-path worker. The kernel hands each flow to the
/// queue that last wrote a frame of it (or spreads new flows by their hash), so a flow stays on
/// one queue.
pub struct Tap {
    /// The first queue: also the one the device is configured through.
    dev: SyncDevice,
    /// The other queues.
    more: Vec<SyncDevice>,
    name: String,
    created: bool,
    /// Whether every read and write carries a virtio-net header (offloads on).
    vnet: bool,
}

/// The virtio-net header of a plain frame: no superframe, checksum complete.
const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// What the TAP hands vxtund when offloads are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// Frames with the checksum left to vxtund, and TCP superframes (TSO, IPv4 and IPv6).
    pub tcp: bool,
    /// UDP superframes (USO, Linux 6.2 and later).
    pub udp: bool,
}

/// Which MAC address the TAP gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacChoice {
    /// The kernel's (random for a new device; an existing device keeps its own).
    Kernel,
    /// This one if vxtund creates the device; an existing (persistent) device keeps its own.
    OnCreate([u8; 6]),
    /// This one, also on an existing device.
    Always([u8; 6]),
}

/// How many queues a TAP gets, and how long each one's ring is.
#[derive(Debug, Clone, Copy)]
pub struct Rings {
    /// Queues, one data-path worker each.
    pub queues: usize,
    /// The transmit queue length (frames per ring); `None`:
    /// [`crate::config::DEFAULT_TXQUEUELEN`] if the device is created, else the device's.
    pub txqueuelen: Option<u32>,
}

impl Tap {
    /// Creates the TAP `name` (or attaches to an existing one) with `rings.queues` queues, sets
    /// its MAC (see [`MacChoice`]), MTU, transmit queue length and addresses, enslaves it to
    /// `bridge` and brings it up.
    /// With `offload`, asks for the virtio-net header and the TCP offloads (checksum, TSO4,
    /// TSO6), and UDP's (USO) where the kernel has them. An existing single-queue device is
    /// opened with one queue ([`Tap::queues`] says how many it got).
    pub fn open(
        name: &str,
        mtu: u16,
        addresses: &[IpNet],
        bridge: Option<&str>,
        offload: bool,
        mac: MacChoice,
        rings: Rings,
    ) -> Result<Tap, TapError> {
        let queues = rings.queues;
        let existed = Path::new("/sys/class/net").join(name).exists();
        let build = |offload: bool, multi: bool| {
            DeviceBuilder::new()
                .name(name)
                .layer(Layer::L2)
                .offload(offload)
                .multi_queue(multi)
                .build_sync()
        };
        let open_err = |source| TapError::Open {
            name: name.to_owned(),
            source,
        };
        // A kernel that refuses the offloads still gets a working device, without them.
        let build_any = |multi: bool| match build(offload, multi) {
            Err(e) if offload && e.kind() != io::ErrorKind::PermissionDenied => {
                build(false, multi).map_err(|_| e)
            }
            other => other,
        };
        let (dev, multi) = match build_any(queues > 1) {
            // A persistent device made without IFF_MULTI_QUEUE takes only one queue; one made
            // with it takes only multi-queue opens (then with one queue here).
            Err(e) if existed && e.raw_os_error() == Some(libc::EINVAL) => {
                (build_any(queues <= 1).map_err(|_| open_err(e))?, false)
            }
            other => (other.map_err(open_err)?, queues > 1),
        };
        let mut more = Vec::new();
        if multi {
            for _ in 1..queues {
                match dev.try_clone() {
                    Ok(q) => more.push(q),
                    Err(source) => {
                        return Err(TapError::Setup {
                            name: name.to_owned(),
                            what: format!("opening queue {} of {queues}", more.len() + 2),
                            source,
                        })
                    }
                }
            }
        }
        let setup = |what: String| setup_error(name, what);
        if dev.tcp_gso() {
            // A persistent TAP keeps the header size its last user set (12 for some): ours
            // is 10.
            set_vnet_hdr_size(dev.as_raw_fd())
                .map_err(setup("setting the virtio-net header size".into()))?;
        }
        let tap = Tap {
            vnet: dev.tcp_gso(),
            dev,
            more,
            name: name.to_owned(),
            created: !existed,
        };
        let mac = match mac {
            MacChoice::OnCreate(mac) if tap.created => Some(mac),
            MacChoice::Always(mac) => Some(mac),
            _ => None,
        };
        if let Some(mac) = mac {
            // Before the device is up: its IPv6 link-local address derives from it.
            tap.dev.set_mac_address(mac).map_err(setup(format!(
                "setting MAC {}",
                crate::wire::ethernet::Mac(mac)
            )))?;
        }
        tap.set_mtu(mtu)?;
        let default = tap.created.then_some(crate::config::DEFAULT_TXQUEUELEN);
        if let Some(len) = rings.txqueuelen.or(default) {
            tap.set_txqueuelen(len)?;
        }
        for addr in addresses {
            // A persistent TAP may still carry the address from the last run: not an error.
            tap.add_address(addr)?;
        }
        let master = std::fs::read_link(Path::new("/sys/class/net").join(name).join("master")).ok();
        let already_enslaved = master
            .as_ref()
            .and_then(|m| m.file_name())
            .is_some_and(|m| Some(m.to_string_lossy().as_ref()) == bridge);
        if let (Some(bridge), false) = (bridge, already_enslaved) {
            let index = tap
                .dev
                .if_index()
                .map_err(setup("reading the interface index".into()))?;
            super::netdev::enslave(bridge, index)
                .map_err(setup(format!("enslaving to bridge `{bridge}`")))?;
        }
        tap.dev
            .enabled(true)
            .map_err(setup("bringing the device up".into()))?;
        for q in std::iter::once(&tap.dev).chain(&tap.more) {
            q.set_nonblocking(true)
                .map_err(setup("making reads non-blocking".into()))?;
        }
        Ok(tap)
    }

    /// Whether reads and writes carry a virtio-net header.
    pub fn vnet(&self) -> bool {
        self.vnet
    }

    /// The offloads in force (none when offloads are off).
    pub fn offloads(&self) -> Offloads {
        Offloads {
            tcp: self.vnet,
            udp: self.vnet && self.dev.udp_gso(),
        }
    }

    /// Changes the MTU (on reload).
    pub fn set_mtu(&self, mtu: u16) -> Result<(), TapError> {
        self.dev.set_mtu(mtu).map_err(|source| TapError::Setup {
            name: self.name.clone(),
            what: format!("setting MTU {mtu}"),
            source,
        })
    }

    /// Sets the transmit queue length (the ring per queue that holds what the host sends
    /// until a worker reads it); returns the length it had.
    pub fn set_txqueuelen(&self, len: u32) -> Result<u32, TapError> {
        let setup = |what: String| setup_error(&self.name, what);
        let old = super::netdev::txqueuelen(&self.name)
            .map_err(setup("reading the transmit queue length".into()))?;
        if old != len {
            super::netdev::set_txqueuelen(&self.name, len)
                .map_err(setup(format!("setting txqueuelen {len}")))?;
        }
        Ok(old)
    }

    /// Puts `addr` on the device (on reload); true when it was not there before.
    pub fn add_address(&self, addr: &IpNet) -> Result<bool, TapError> {
        let added = match addr.addr() {
            IpAddr::V4(a) => self.dev.add_address_v4(a, addr.prefix_len()),
            IpAddr::V6(a) => self.dev.add_address_v6(a, addr.prefix_len()),
        };
        match added {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(source) => Err(TapError::Setup {
                name: self.name.clone(),
                what: format!("adding address {addr}"),
                source,
            }),
        }
    }

    /// Takes `addr` off the device (on reload); an address already gone is not an error.
    pub fn remove_address(&self, addr: &IpNet) -> Result<(), TapError> {
        self.dev
            .remove_address(addr.addr())
            .map_err(|source| TapError::Setup {
                name: self.name.clone(),
                what: format!("removing address {addr}"),
                source,
            })
    }

    /// How many queues the device has.
    pub fn queues(&self) -> usize {
        1 + self.more.len()
    }

    /// Queue `q` (wrapping around, so that every worker has one).
    fn queue(&self, q: usize) -> &SyncDevice {
        match q % self.queues() {
            0 => &self.dev,
            i => &self.more[i - 1],
        }
    }

    /// Reads one frame from queue `q`; `WouldBlock` when none is waiting.
    pub fn recv(&self, q: usize, buf: &mut [u8]) -> io::Result<usize> {
        self.queue(q).recv(buf)
    }

    /// Writes one complete frame to queue `q`.
    pub fn send(&self, q: usize, frame: &[u8]) -> io::Result<usize> {
        let dev = self.queue(q);
        if self.vnet {
            dev.send_vectored(&[io::IoSlice::new(&PLAIN), io::IoSlice::new(frame)])
        } else {
            dev.send(frame)
        }
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether vxtund created the device (it then disappears when vxtund exits).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Writes a TCP superframe (offloads on) to queue `q`: the virtio-net header `hdr`, then
    /// `headers`, then the payloads, gathered in one write.
    pub fn send_superframe<'a>(
        &self,
        q: usize,
        hdr: &VnetHdr,
        headers: &[u8],
        payloads: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        let hdr = hdr.encode();
        let mut pieces: Vec<io::IoSlice<'_>> =
            vec![io::IoSlice::new(&hdr), io::IoSlice::new(headers)];
        for payload in payloads {
            pieces.push(io::IoSlice::new(payload));
        }
        self.queue(q).send_vectored(&pieces)
    }

    /// The descriptor of queue `q`, to poll.
    pub fn fd(&self, q: usize) -> RawFd {
        self.queue(q).as_raw_fd()
    }
}

/// Turns the failure of a setup step (`what`) on device `name` into its error.
fn setup_error(name: &str, what: String) -> impl FnOnce(io::Error) -> TapError {
    let name = name.to_owned();
    move |source| TapError::Setup { name, what, source }
}

/// `TUNSETVNETHDRSZ`: `_IOW('T', 216, int)`.
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;

/// Sets the virtio-net header size of the TAP behind `fd` to [`VNET_HDR_LEN`].
fn set_vnet_hdr_size(fd: RawFd) -> io::Result<()> {
    let size = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int from a live local; `fd` is our open TAP.
    let rc = unsafe { libc::ioctl(fd, TUNSETVNETHDRSZ as _, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
