//! The configuration file: the only module that knows TOML.
//!
//! [`Config::load`] reads a file into raw serde structs (unknown keys rejected), then turns them
//! into validated domain types. Every error names the file, line and column and says what is
//! wrong; nothing half-valid gets through.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::fdb;
use crate::flow::{parse_flow, Action, Flow, PortNo};
use crate::switch::{
    DfMode, GreTunnel, MssClamp, Port, PortKind, PortOptions, PortTable, VxlanTunnel,
};
use crate::wire::tunnel::{TosMode, TtlMode};
use crate::wire::{self, vxlan};

/// The Linux kernel's default VXLAN port (IANA's is 4789).
pub const DEFAULT_VXLAN_PORT: u16 = 8472;
/// The device name used when the config gives none.
pub const DEFAULT_DEVICE: &str = "vxt0";
/// Underlay MTU assumed when none is configured and none can be read from the system.
pub const FALLBACK_UNDERLAY_MTU: u16 = 1500;
/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;
/// Port numbers from here up are reserved in OpenFlow.
const PORT_MAX: u32 = 0xffff_ff00;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The TAP device.
    pub device: DeviceConfig,
    /// The underlay network.
    pub underlay: UnderlayConfig,
    /// All ports: the device as port 1, then the tunnels.
    pub ports: Vec<Port>,
    /// The flows; `actions=normal` alone when the file has no `[flows]`.
    pub flows: Vec<Flow>,
    /// MAC learning table: ageing time.
    pub fdb_ageing: Duration,
    /// MAC learning table: most entries.
    pub fdb_max_entries: usize,
    /// The control socket `vxtunctl` talks to.
    pub control_socket: PathBuf,
    /// A group given read and write access to the control socket (mode 0660), besides root.
    pub control_group: Option<String>,
    /// The OpenFlow management side.
    pub openflow: OpenFlowConfig,
    /// `[metrics] listen`: where `GET /metrics` is served (Prometheus text format); off when
    /// `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[evpn]`: BGP EVPN, remote VTEPs and MACs learnt from the fabric; off when `None`.
    pub evpn: Option<EvpnConfig>,
    /// Files the config names, for the checks of [`Config::load`].
    pub(crate) files: Vec<NamedFile>,
}

/// The `[evpn]` section: vxtund as a VTEP of one VNI in a BGP EVPN fabric (RFC 7432, RFC 8365).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnConfig {
    /// Our AS; sessions are iBGP (the neighbours are in it too).
    pub asn: u32,
    /// The BGP peers (usually route reflectors), port 179.
    pub neighbors: Vec<Neighbor>,
    /// The VNI.
    pub vni: u32,
    /// Our BGP identifier: `router_id`, else the underlay's local IPv4 address.
    pub router_id: std::net::Ipv4Addr,
    /// Our VTEP address: the underlay's local address of the first neighbour's family. It is
    /// the next hop of our routes and where remote VTEPs send to.
    pub vtep: IpAddr,
    /// Route targets imported and exported (default `ASN:VNI`, as FRR derives them).
    pub route_targets: Vec<crate::evpn::RouteTarget>,
    /// The hold time proposed, in seconds (0, or 3 to 65535).
    pub hold_time: u16,
    /// The UDP port of the remote VTEPs' VXLAN (and ours).
    pub dst_port: u16,
    /// Most routes held from all peers; beyond, routes are refused and counted.
    pub max_routes: usize,
    /// Most remote VTEPs (tunnel ports); beyond, type-3 routes are refused and counted.
    pub max_vteps: usize,
}

/// A BGP peer of `[evpn] neighbors`: `"IP"`, or `{ address = "IP", password = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// Its address (port 179).
    pub address: IpAddr,
    /// The TCP MD5 signature key (RFC 2385) of the session: the neighbour's own `password`,
    /// else `[evpn] password`, else none.
    pub password: Option<Password>,
}

/// A secret from the config file: never printed (`Debug` says `Password(..)`), compared in
/// full.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The key's bytes, as the kernel takes them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The longest TCP MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`), as FRR's `password`.
pub const MAX_PASSWORD_LEN: usize = 80;

/// Default `[evpn] hold_time`, as GoBGP's.
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default `[evpn] max_routes`.
pub const DEFAULT_MAX_ROUTES: usize = 200_000;
/// Default `[evpn] max_vteps`.
pub const DEFAULT_MAX_VTEPS: usize = 4096;

/// The `[openflow]` section: where OpenFlow clients such as `ovs-ofctl` connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFlowConfig {
    /// Passive targets to listen on. Default: `punix:/run/vxtund/<config name>.mgmt`, the
    /// counterpart of Open vSwitch's `<bridge>.mgmt`; empty when the file says `listen = []`.
    pub listen: Vec<ListenTarget>,
    /// The datapath id; `None` derives a stable one (see `daemon::openflow`).
    pub datapath_id: Option<u64>,
    /// Controllers vxtund dials (`tcp:IP[:PORT]`, `unix:PATH`).
    pub controllers: Vec<ControllerTarget>,
    /// What happens while no controller is connected.
    pub fail_mode: FailMode,
    /// Silence on a controller connection after which vxtund sends an ECHO request; a second
    /// such silence drops the connection.
    pub inactivity_probe: Duration,
    /// The longest wait between attempts to reach a controller (the wait doubles from 1 s).
    pub max_backoff: Duration,
    /// PACKET_INs per second the daemon sends at most (on average), and the burst.
    pub packet_in_rate: u32,
    /// See `packet_in_rate`.
    pub packet_in_burst: u32,
    /// `private_key`, `certificate`, `ca_cert`: the PEM files of `pssl:` and `ssl:` targets
    /// (named after Open vSwitch's `set-ssl`); re-read on every reload.
    pub tls: Option<TlsFiles>,
}

/// The PEM files OpenFlow's TLS uses, both as server (`pssl:`) and as client (`ssl:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our private key (PKCS#8, PKCS#1 or SEC1): readable by its owner alone.
    pub private_key: PathBuf,
    /// Our certificate, and the intermediates after it, if any.
    pub certificate: PathBuf,
    /// The CA certificate(s) a peer's certificate must chain to.
    pub ca_cert: PathBuf,
}

/// A file the config names, checked by [`Config::load`] (readable; for secrets, by its owner
/// alone).
#[derive(Debug, Clone)]
pub(crate) struct NamedFile {
    /// The key, as `section.key`.
    key: &'static str,
    path: PathBuf,
    span: Range<usize>,
    secret: bool,
}

/// Open vSwitch's fail modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The table stays as it is while no controller is connected.
    Secure,
    /// Every frame takes `normal` while no controller is connected.
    Standalone,
}

/// A controller to dial, in Open vSwitch's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerTarget {
    /// `tcp:IP[:PORT]` (port 6653 by default).
    Tcp(std::net::SocketAddr),
    /// `ssl:IP[:PORT]` (port 6653 by default): TLS with the files of `[openflow]`, both sides
    /// proving who they are.
    Ssl(std::net::SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl fmt::Display for ControllerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControllerTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            ControllerTarget::Tcp(a) if a.is_ipv6() => write!(f, "tcp:[{}]:{}", a.ip(), a.port()),
            ControllerTarget::Tcp(a) => write!(f, "tcp:{}:{}", a.ip(), a.port()),
            ControllerTarget::Ssl(a) if a.is_ipv6() => write!(f, "ssl:[{}]:{}", a.ip(), a.port()),
            ControllerTarget::Ssl(a) => write!(f, "ssl:{}:{}", a.ip(), a.port()),
        }
    }
}

impl ControllerTarget {
    /// Parses `tcp:IP[:PORT]`, `ssl:IP[:PORT]` (an IPv6 address in brackets) or `unix:PATH`.
    pub fn parse(text: &str) -> Result<ControllerTarget, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path".into());
            }
            return Ok(ControllerTarget::Unix(PathBuf::from(path)));
        }
        let (rest, make): (&str, fn(std::net::SocketAddr) -> ControllerTarget) =
            match (text.strip_prefix("tcp:"), text.strip_prefix("ssl:")) {
                (Some(rest), _) => (rest, ControllerTarget::Tcp),
                (_, Some(rest)) => (rest, ControllerTarget::Ssl),
                (None, None) => {
                    return Err(format!(
                        "`{text}`: expected tcp:IP[:PORT], ssl:IP[:PORT] or unix:PATH"
                    ))
                }
            };
        let (ip, port) = match rest.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((ip, tail)) => (ip, tail.strip_prefix(':')),
                None => return Err(format!("`{text}`: unclosed `[`")),
            },
            None => match rest.split_once(':') {
                Some((ip, port)) => (ip, Some(port)),
                None => (rest, None),
            },
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("`{text}`: `{ip}` is not an IP address"))?;
        let port: u16 = match port {
            None => DEFAULT_OPENFLOW_PORT,
            Some(p) => p
                .parse()
                .map_err(|_| format!("`{text}`: `{p}` is not a TCP port"))?,
        };
        Ok(make(std::net::SocketAddr::new(ip, port)))
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, ControllerTarget::Ssl(_))
    }
}

/// OpenFlow's port (IANA).
pub const DEFAULT_OPENFLOW_PORT: u16 = 6653;

/// A passive OpenFlow target in Open vSwitch's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenTarget {
    /// `punix:PATH`: a Unix stream socket, mode 0600.
    Unix(PathBuf),
    /// `ptcp:PORT[:IP]`: TCP, on every address when no IP is given (as Open vSwitch).
    Tcp(std::net::SocketAddr),
    /// `pssl:PORT[:IP]`: TLS over TCP with the files of `[openflow]`; clients must present a
    /// certificate that chains to `ca_cert`.
    Ssl(std::net::SocketAddr),
}

impl fmt::Display for ListenTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenTarget::Unix(p) => write!(f, "punix:{}", p.display()),
            ListenTarget::Tcp(a) if a.is_ipv6() => write!(f, "ptcp:{}:[{}]", a.port(), a.ip()),
            ListenTarget::Tcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            ListenTarget::Ssl(a) if a.is_ipv6() => write!(f, "pssl:{}:[{}]", a.port(), a.ip()),
            ListenTarget::Ssl(a) => write!(f, "pssl:{}:{}", a.port(), a.ip()),
        }
    }
}

impl ListenTarget {
    /// Parses `punix:PATH`, `ptcp:PORT[:IP]` or `pssl:PORT[:IP]` (an IPv6 address may be
    /// bracketed).
    pub fn parse(text: &str) -> Result<ListenTarget, String> {
        if let Some(path) = text.strip_prefix("punix:") {
            if path.is_empty() {
                return Err("`punix:` needs a path".into());
            }
            return Ok(ListenTarget::Unix(PathBuf::from(path)));
        }
        let tcp = text
            .strip_prefix("ptcp:")
            .map(|rest| (rest, ListenTarget::Tcp as fn(_) -> _, "ptcp"))
            .or_else(|| {
                text.strip_prefix("pssl:")
                    .map(|rest| (rest, ListenTarget::Ssl as fn(_) -> _, "pssl"))
            });
        if let Some((rest, make, scheme)) = tcp {
            let (port, ip) = match rest.split_once(':') {
                Some((port, ip)) => (port, Some(ip)),
                None => (rest, None),
            };
            let port: u16 = port.parse().map_err(|_| {
                format!("`{text}`: `{port}` is not a TCP port ({scheme}:PORT[:IP], e.g. {scheme}:6653:127.0.0.1)")
            })?;
            let ip: IpAddr = match ip {
                None => IpAddr::from([0, 0, 0, 0]),
                Some(ip) => ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("`{text}`: `{ip}` is not an IP address"))?,
            };
            return Ok(make(std::net::SocketAddr::new(ip, port)));
        }
        Err(format!(
            "`{text}`: expected punix:PATH, ptcp:PORT[:IP] or pssl:PORT[:IP] (vxtund listens; \
             it does not dial)"
        ))
    }

    /// Whether the target is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, ListenTarget::Ssl(_))
    }

    /// A plain TCP target on an address other than loopback: anyone who reaches that address
    /// can manage the switch.
    pub fn is_plain_beyond_loopback(&self) -> bool {
        matches!(self, ListenTarget::Tcp(a) if !a.ip().is_loopback())
    }
}

/// Where control sockets live by default: `/run/vxtund/<config name>.sock`.
pub const CONTROL_DIR: &str = "/run/vxtund";

/// The `[device]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// TAP device name.
    pub name: String,
    /// MTU; computed from the tunnels when not given.
    pub mtu: Option<u16>,
    /// Existing Linux bridge to enslave the TAP to.
    pub bridge: Option<String>,
    /// Addresses to put on the TAP.
    pub addresses: Vec<IpNet>,
    /// Whether to use the TAP's offloads (virtio-net header, checksum, TSO, USO): on unless
    /// the config turns them off.
    pub offload: bool,
    /// The TAP's MAC address (`mac = "02:..."`); when not given, [`DeviceConfig::mac_for`]
    /// derives a stable one.
    pub mac: Option<wire::ethernet::Mac>,
    /// TAP queues, one data-path worker each (`queues = N`); `None` for one per core.
    pub queues: Option<u16>,
    /// After a wake-up that follows a batch smaller than full, wait this long (microseconds)
    /// for more frames before reading: fewer wake-ups per byte for some latency. 0: off.
    pub batch_wait_us: u32,
    /// Before a data-path thread sleeps, poll its TAP queue or sockets this long
    /// (microseconds) without sleeping, yielding the CPU to other runnable threads between
    /// two looks: while frames keep coming the thread is never put to sleep, so nobody pays
    /// for waking it, at the price of a busy core while traffic lasts (and this long after
    /// each frame when it is sparse). 0: off, sleep at once.
    pub busy_poll_us: u32,
    /// The TAP's transmit queue length in frames (`txqueuelen = N`, as `ip link set ...
    /// txqueuelen`): the ring, one per queue, that holds what the host sends until a worker
    /// reads it, and drops from when full. `None`: [`DEFAULT_TXQUEUELEN`] on a TAP vxtund
    /// creates, and an existing device keeps its own.
    pub txqueuelen: Option<u32>,
    /// Threads per worker (`worker_threads = 1 | 2`): 2 runs each direction on a thread of its
    /// own (TAP -> tunnels, tunnels -> TAP), 1 runs both in one loop.
    pub worker_threads: u8,
    /// Whether frames of flows vxtund has decided are forwarded by its BPF programs in the
    /// kernel (`fast_path = "auto" | "on" | "off"`).
    pub fast_path: FastPathMode,
    /// The most flows the kernel fast path caches (`fast_path_entries = N`).
    pub fast_path_entries: u32,
}

/// Whether the kernel fast path is used (`[device] fast_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FastPathMode {
    /// Where the kernel allows it: on when the programs load and attach, otherwise the
    /// userspace path, with one log line that says why.
    #[default]
    Auto,
    /// Required: vxtund refuses to start without it.
    On,
    /// The userspace path only.
    Off,
}

/// The default `fast_path_entries`: 65,536 flows, 9 MiB of kernel memory.
pub const DEFAULT_FAST_PATH_ENTRIES: u32 = 65_536;

/// The most `fast_path_entries` taken.
pub const MAX_FAST_PATH_ENTRIES: u32 = 4_194_304;

/// The most TAP queues (and data-path workers) a device may have: the kernel's limit for a
/// TAP (`MAX_TAP_QUEUES`) is 256, but more workers than cores only wait for each other.
pub const MAX_QUEUES: u16 = 64;

/// The transmit queue length of a TAP vxtund creates when `txqueuelen` is not set: four times
/// the kernel's 1000, about 35 ms of 1400-byte datagrams at 110k a second. A TAP drops what
/// finds its ring full and never holds its sender back, so the ring is what rides out the
/// moments a worker is not scheduled: with the kernel's 1000, UDP paced at 80 % of the
/// kernel's vxlan rate lost 0.35 % at the sending TAP (0.04-0.26 % in earlier runs); with
/// 4000, nothing, with TCP unchanged (a TCP sender's window, not the ring, bounds its queue).
pub const DEFAULT_TXQUEUELEN: u32 = 4000;

/// The longest `txqueuelen` taken: each entry can hold a 64 KB superframe, so a ring this
/// long can pin gigabytes behind a stalled reader.
pub const MAX_TXQUEUELEN: u32 = 100_000;

/// The longest `batch_wait_us`: a millisecond already costs TCP more than it saves.
pub const MAX_BATCH_WAIT_US: u32 = 1000;

/// The longest `busy_poll_us`: a frame every 10 ms then keeps a core busy all the time.
pub const MAX_BUSY_POLL_US: u32 = 10_000;

impl DeviceConfig {
    /// How many TAP queues and workers: as configured, else one per core the process may run
    /// on (at most [`MAX_QUEUES`]).
    pub fn queue_count(&self) -> usize {
        match self.queues {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(usize::from(MAX_QUEUES)),
        }
    }
}

impl DeviceConfig {
    /// The TAP's MAC: the configured one, else one derived as systemd's
    /// `MACAddressPolicy=persistent` does, from the machine id (`/etc/machine-id`, read by the
    /// caller) and the device name, here with the underlay addresses too, so that segments on
    /// one machine (namespaces, containers sharing the machine id) differ. Stable across
    /// restarts; locally administered, unicast.
    pub fn mac_for(&self, machine_id: &str, underlay: &UnderlayConfig) -> wire::ethernet::Mac {
        if let Some(mac) = self.mac {
            return mac;
        }
        // FNV-1a: stable across builds and versions, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let parts = [machine_id, "\0", &self.name, "\0", &underlay.locals_text()];
        for byte in parts.iter().flat_map(|p| p.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let b = hash.to_be_bytes();
        // As systemd: clear the multicast bit, set the locally administered one.
        wire::ethernet::Mac([(b[2] & 0xfe) | 0x02, b[3], b[4], b[5], b[6], b[7]])
    }
}

/// The `[underlay]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderlayConfig {
    /// Source addresses of outer packets (and where the daemon listens): at most one IPv4 and
    /// one IPv6 address.
    pub local: Vec<IpAddr>,
    /// MTU of the underlay; read from the route to each remote when not given.
    pub mtu: Option<u16>,
    /// Whether VXLAN sockets use UDP GSO and GRO: on unless the config turns them off.
    pub offload: bool,
    /// The outer UDP source ports of VXLAN (inclusive); `None` for the kernel's
    /// `net.ipv4.ip_local_port_range`, as the kernel's vxlan.
    pub src_port_range: Option<(u16, u16)>,
    /// How VXLAN flows get their outer source ports: by hash, or new TCP connections in turn.
    pub flow_spread: FlowSpread,
    /// Whether received TCP/UDP segments are checksummed again before they are coalesced for
    /// the TAP.
    pub inner_checksum: InnerChecksum,
}

/// Whether vxtund verifies the inner checksums of frames it receives from VXLAN tunnels before
/// coalescing them into a superframe for the TAP (the kernel finishes a superframe's checksums
/// itself, so a segment damaged on the way must be caught before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InnerChecksum {
    /// Trust where the kernel has verified a non-zero outer UDP checksum over the whole inner
    /// frame: always over IPv6, where it refuses a zero checksum; over IPv4 for datagrams
    /// that came with a checksum, and verify those that came without (the kernel's vxlan
    /// default), whose zero checksum tells nothing.
    #[default]
    Auto,
    /// Always verify.
    Verify,
    /// Never verify: every VXLAN peer sends UDP checksums (vxtund does; the kernel's vxlan
    /// with `udpcsum`).
    Trust,
}

/// How a VXLAN flow's outer source port is chosen (see [`crate::spread`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowSpread {
    /// From the inner flow's hash (RFC 7348 section 5), as the kernel's vxlan.
    Hash,
    /// New TCP connections take the pool's ports in turn, so that a receiving vxtund spreads
    /// them evenly over its workers; everything else by hash.
    #[default]
    Balance,
}

/// The choice of `choices` whose word is `value`, or what the config file should have said.
fn one_of<T: Copy>(
    value: &str,
    key: &str,
    choices: &[T],
    word: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    choices
        .iter()
        .copied()
        .find(|&c| word(c) == value)
        .ok_or_else(|| {
            let words: Vec<String> = choices
                .iter()
                .map(|&c| format!("\"{}\"", word(c)))
                .collect();
            let expected = match words.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            format!("{key} `{value}`: expected {expected}")
        })
}

impl FlowSpread {
    /// Every choice, for parsing by [`FlowSpread::word`].
    pub const ALL: [FlowSpread; 2] = [FlowSpread::Hash, FlowSpread::Balance];

    /// The word in the config file.
    pub fn word(self) -> &'static str {
        match self {
            FlowSpread::Hash => "hash",
            FlowSpread::Balance => "balance",
        }
    }
}

impl InnerChecksum {
    /// Every choice, for parsing by [`InnerChecksum::word`].
    pub const ALL: [InnerChecksum; 3] = [
        InnerChecksum::Auto,
        InnerChecksum::Verify,
        InnerChecksum::Trust,
    ];

    /// Whether inner checksums are verified for datagrams received with
    /// (`outer_checksum_verified`) or without an outer UDP checksum the kernel verified.
    pub fn verify(self, outer_checksum_verified: bool) -> bool {
        match self {
            InnerChecksum::Auto => !outer_checksum_verified,
            InnerChecksum::Verify => true,
            InnerChecksum::Trust => false,
        }
    }

    /// The word in the config file.
    pub fn word(self) -> &'static str {
        match self {
            InnerChecksum::Auto => "auto",
            InnerChecksum::Verify => "verify",
            InnerChecksum::Trust => "trust",
        }
    }
}

impl UnderlayConfig {
    /// The local addresses, for listings: `192.168.200.101, 2001:db8::101`.
    pub fn locals_text(&self) -> String {
        let texts: Vec<String> = self.local.iter().map(|l| l.to_string()).collect();
        texts.join(", ")
    }

    /// The local address of `remote`'s address family.
    pub fn local_for(&self, remote: IpAddr) -> Option<IpAddr> {
        self.local
            .iter()
            .copied()
            .find(|l| l.is_ipv4() == remote.is_ipv4())
    }
}

impl Config {
    /// Reads and validates `path`. A file that holds a secret must be readable by its owner
    /// alone ([`refuse_exposed_secrets`]); the files it names must be readable, a private key
    /// by its owner alone, and the TLS files must hold what their keys say
    /// ([`crate::tls::Material::load`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: 0,
            col: 0,
            message: format!("cannot read the file: {e}"),
        })?;
        let config = Config::parse(path, &text)?;
        refuse_exposed_secrets(&config)?;
        check_named_files(&config, &text)?;
        Ok(config)
    }

    /// Validates `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |span: Option<Range<usize>>, message: String| {
            ConfigError::at(path, text, span, message)
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| err(e.span(), e.message().trim().to_owned()))?;

        let device = validate_device(raw.device, &err)?;
        let local = parse_locals(&raw.underlay.local)
            .map_err(|m| err(Some(raw.underlay.local.span()), m))?;
        let underlay = UnderlayConfig {
            local,
            mtu: check_mtu(raw.underlay.mtu, 576, &err)?,
            offload: raw.underlay.offload.unwrap_or(true),
            inner_checksum: match &raw.underlay.inner_checksum {
                None => InnerChecksum::Auto,
                Some(v) => one_of(v.get_ref(), "inner_checksum", &InnerChecksum::ALL, |c| {
                    c.word()
                })
                .map_err(|m| err(Some(v.span()), m))?,
            },
            flow_spread: match &raw.underlay.flow_spread {
                None => FlowSpread::Balance,
                Some(v) => one_of(v.get_ref(), "flow_spread", &FlowSpread::ALL, |c| c.word())
                    .map_err(|m| err(Some(v.span()), m))?,
            },
            src_port_range: match &raw.underlay.src_port_range {
                None => None,
                Some(r) => Some(parse_port_range(r.get_ref()).map_err(|m| err(Some(r.span()), m))?),
            },
        };

        let mut ports = vec![Port {
            no: PortNo::LOCAL,
            name: device.name.clone(),
            kind: PortKind::Local,
            options: Default::default(),
        }];
        let explicit: HashSet<u32> = raw
            .tunnels
            .iter()
            .filter_map(|t| t.get_ref().port.as_ref().map(|p| *p.get_ref()))
            .collect();
        let mut next_port = 2;
        let mut names = HashSet::new();
        let mut endpoints = HashSet::new();
        for spanned in raw.tunnels {
            let span = spanned.span();
            let t = spanned.into_inner();
            let name = t.name.get_ref().clone();
            check_tunnel_name(&name, &device.name).map_err(|m| err(Some(t.name.span()), m))?;
            if !names.insert(name.clone()) {
                return Err(err(
                    Some(t.name.span()),
                    format!("duplicate tunnel name `{name}`"),
                ));
            }
            let remote = parse_ip(&t.remote).map_err(|m| err(Some(t.remote.span()), m))?;
            let Some(local) = underlay.local_for(remote) else {
                let family = if remote.is_ipv4() { "IPv4" } else { "IPv6" };
                return Err(err(
                    Some(t.remote.span()),
                    format!(
                        "remote {remote} is {family}, but underlay.local has no {family} address"
                    ),
                ));
            };
            if remote == local || remote.is_unspecified() || remote.is_multicast() {
                return Err(err(
                    Some(t.remote.span()),
                    format!("remote {remote} must be another host's unicast address"),
                ));
            }
            let only_for = |field: &str, span: Range<usize>, kind: &str| {
                err(
                    Some(span),
                    format!("`{field}` applies only to {kind} tunnels"),
                )
            };
            let kind = match t.kind.get_ref().as_str() {
                "vxlan" => {
                    if let Some(k) = &t.key {
                        return Err(only_for("key", k.span(), "gre"));
                    }
                    if let Some(c) = &t.csum {
                        return Err(only_for("csum", c.span(), "gre"));
                    }
                    if let Some(q) = &t.seq {
                        return Err(only_for("seq", q.span(), "gre"));
                    }
                    if let Some(r) = &t.src_port_range {
                        parse_port_range(r.get_ref()).map_err(|m| err(Some(r.span()), m))?;
                    }
                    let vni = match &t.vni {
                        Some(v) if *v.get_ref() > vxlan::VNI_MAX => {
                            return Err(err(
                                Some(v.span()),
                                format!("vni {} is larger than 16777215 (24 bits)", v.get_ref()),
                            ))
                        }
                        Some(v) => *v.get_ref(),
                        None => 0,
                    };
                    let dst_port = match &t.dst_port {
                        Some(p) if *p.get_ref() == 0 => {
                            return Err(err(Some(p.span()), "dst_port must not be 0".into()))
                        }
                        Some(p) => *p.get_ref(),
                        None => DEFAULT_VXLAN_PORT,
                    };
                    if !endpoints.insert((remote, Endpoint::Vxlan(vni, dst_port))) {
                        return Err(err(
                            Some(span),
                            format!("another tunnel already goes to {remote} port {dst_port} with vni {vni}"),
                        ));
                    }
                    PortKind::Vxlan(VxlanTunnel {
                        remote,
                        vni,
                        dst_port,
                    })
                }
                "gre" => {
                    if let Some(v) = &t.vni {
                        return Err(only_for("vni", v.span(), "vxlan"));
                    }
                    if let Some(p) = &t.dst_port {
                        return Err(only_for("dst_port", p.span(), "vxlan"));
                    }
                    if let Some(r) = &t.src_port_range {
                        return Err(only_for("src_port_range", r.span(), "vxlan"));
                    }
                    let key = t.key.as_ref().map(|k| *k.get_ref());
                    if !endpoints.insert((remote, Endpoint::Gre(key))) {
                        let which = key.map_or("no key".to_owned(), |k| format!("key {k}"));
                        return Err(err(
                            Some(span),
                            format!("another gre tunnel already goes to {remote} with {which} (tell them apart by key)"),
                        ));
                    }
                    PortKind::Gre(GreTunnel {
                        remote,
                        key,
                        csum: t.csum.as_ref().is_some_and(|c| *c.get_ref()),
                        seq: t.seq.as_ref().is_some_and(|q| *q.get_ref()),
                    })
                }
                other => {
                    return Err(err(
                        Some(t.kind.span()),
                        format!("unknown tunnel type `{other}` (expected `vxlan` or `gre`)"),
                    ))
                }
            };
            let no = match &t.port {
                Some(p) => {
                    let n = *p.get_ref();
                    if !(2..PORT_MAX).contains(&n) {
                        return Err(err(
                            Some(p.span()),
                            format!("port {n}: tunnel ports are numbered from 2 (1 is the device)"),
                        ));
                    }
                    if ports.iter().any(|q| q.no == PortNo(n)) {
                        return Err(err(Some(p.span()), format!("port {n} is used twice")));
                    }
                    n
                }
                None => {
                    while explicit.contains(&next_port)
                        || ports.iter().any(|q| q.no == PortNo(next_port))
                    {
                        next_port += 1;
                    }
                    next_port
                }
            };
            let split_horizon = match t.split_horizon {
                Some(g) => {
                    check_group_name(g.get_ref()).map_err(|m| err(Some(g.span()), m))?;
                    Some(g.into_inner())
                }
                None => None,
            };
            let options = PortOptions {
                split_horizon,
                tos: match &t.tos {
                    None => TosMode::default(),
                    Some(v) => parse_tos(v.get_ref()).map_err(|m| err(Some(v.span()), m))?,
                },
                ttl: match &t.ttl {
                    None => TtlMode::default(),
                    Some(v) => parse_ttl(v.get_ref()).map_err(|m| err(Some(v.span()), m))?,
                },
                // A VXLAN tunnel's own range, or the underlay's: the switch knows its ports.
                src_port_range: match &t.src_port_range {
                    None if matches!(kind, PortKind::Vxlan(_)) => underlay.src_port_range,
                    None => None,
                    Some(r) => Some(parse_port_range(r.get_ref()).map_err(|m| err(Some(r.span()), m))?),
                },
                mss_clamp: match &t.mss_clamp {
                    None => MssClamp::Auto,
                    Some(v) => parse_mss_clamp(v.get_ref()).map_err(|m| err(Some(v.span()), m))?,
                },
                df: match t.df.as_ref().map(|d| (d.get_ref().as_str(), d.span())) {
                    None | Some(("set", _)) => DfMode::Set,
                                        Some((mode @ ("unset" | "inherit"), span)) if remote.is_ipv6() => {
                        return Err(err(Some(span), format!("df `{mode}`: IPv6 has no DF bit; outer IPv6 packets are never fragmented")))
                    }
                    Some(("unset", _)) => DfMode::Unset,
                    Some(("inherit", _)) => DfMode::Inherit,
                    Some((other, span)) => {
                        return Err(err(
                            Some(span),
                            format!("df `{other}`: expected \"set\", \"unset\" or \"inherit\""),
                        ))
                    }
                },
            };
            ports.push(Port {
                no: PortNo(no),
                name,
                kind,
                options,
            });
        }

        let (openflow, files) = validate_openflow(raw.openflow, path, &err)?;
        let resolver = PortTable(&ports);
        let (flows, fdb_ageing, fdb_max_entries) = match raw.flows {
            // With controllers, the table starts empty, as Open vSwitch's does: the controller
            // fills it (and in standalone mode `normal` forwards until one connects).
            None if !openflow.controllers.is_empty() => {
                (Vec::new(), fdb::DEFAULT_AGEING, fdb::DEFAULT_CAPACITY)
            }
            None => (
                vec![Flow::normal()],
                fdb::DEFAULT_AGEING,
                fdb::DEFAULT_CAPACITY,
            ),
            Some(f) => {
                let rules = match f.rules {
                    None => Vec::new(),
                    Some(r) if r.get_ref().is_empty() => return Err(err(
                        Some(r.span()),
                        "`rules` is empty, which would drop every frame: write \"actions=drop\" \
                             for that, or leave `rules` out for actions=normal"
                            .into(),
                    )),
                    Some(r) => r.into_inner(),
                };
                let mut flows = Vec::with_capacity(rules.len().max(1));
                if rules.is_empty() {
                    flows.push(Flow::normal());
                }
                for rule in &rules {
                    let flow = parse_flow(rule.get_ref(), &resolver).map_err(|e| {
                        // Point inside the string: past the opening quote, at the token.
                        let at = rule.span().start + 1 + e.offset;
                        err(
                            Some(at..at + 1),
                            format!("flow `{}`: {}", rule.get_ref(), e.message),
                        )
                    })?;
                    flows.push(flow);
                }
                let ageing = match f.mac_ageing {
                    Some(a) if *a.get_ref() == 0 => {
                        return Err(err(
                            Some(a.span()),
                            "mac_ageing must be at least 1 second".into(),
                        ))
                    }
                    Some(a) => Duration::from_secs(*a.get_ref()),
                    None => fdb::DEFAULT_AGEING,
                };
                let size = match f.mac_table_size {
                    Some(s) if *s.get_ref() == 0 => {
                        return Err(err(
                            Some(s.span()),
                            "mac_table_size must be at least 1".into(),
                        ))
                    }
                    Some(s) => *s.get_ref(),
                    None => fdb::DEFAULT_CAPACITY,
                };
                (flows, ageing, size)
            }
        };
        let (socket, group) = raw.control.map_or((None, None), |c| (c.socket, c.group));
        let control_group = match group {
            Some(g) => {
                check_group_name(g.get_ref()).map_err(|m| err(Some(g.span()), m))?;
                Some(g.into_inner())
            }
            None => None,
        };
        let control_socket = match socket {
            Some(p) if p.get_ref().is_empty() => {
                return Err(err(
                    Some(p.span()),
                    "control.socket must not be empty".into(),
                ))
            }
            Some(p) => PathBuf::from(p.into_inner()),
            None => Path::new(CONTROL_DIR).join(format!("{}.sock", config_name(path))),
        };
        let metrics_listen = match raw.metrics.and_then(|m| m.listen) {
            None => None,
            Some(l) => Some(parse_metrics_listen(l.get_ref()).map_err(|m| err(Some(l.span()), m))?),
        };
        let evpn = match raw.evpn {
            None => None,
            Some(e) => Some(validate_evpn(e, &underlay, &err)?),
        };
        Ok(Config {
            files,
            evpn,
            metrics_listen,
            openflow,
            control_socket,
            control_group,
            path: path.to_owned(),
            device,
            underlay,
            ports,
            flows,
            fdb_ageing,
            fdb_max_entries,
        })
    }

    /// The tunnel ports (every port but the device), with their remotes.
    pub fn tunnels(&self) -> impl Iterator<Item = (&Port, IpAddr)> {
        self.ports
            .iter()
            .filter_map(|p| p.kind.remote().map(|r| (p, r)))
    }
}

impl Flow {
    /// The single flow `actions=normal`: a learning switch.
    pub fn normal() -> Flow {
        Flow::new(
            crate::flow::DEFAULT_PRIORITY,
            Default::default(),
            vec![Action::Normal],
        )
    }
}

/// The keys of `config` that hold secrets, as the file spells them.
pub fn secret_keys(config: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if let Some(evpn) = &config.evpn {
        if evpn.neighbors.iter().any(|n| n.password.is_some()) {
            keys.push("[evpn] password");
        }
    }
    if config.openflow.tls.is_some() {
        keys.push("[openflow] private_key");
    }
    keys
}

/// Refuses a config file that holds a secret ([`secret_keys`]) and that group or others may
/// read, as ssh refuses such a private key: the error names the file, its mode and the keys.
/// `Config::load` calls it, so `--check`, the start and every reload refuse such a file.
pub fn refuse_exposed_secrets(config: &Config) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let keys = secret_keys(config);
    if keys.is_empty() {
        return Ok(());
    }
    let refuse = |message: String| ConfigError {
        path: config.path.clone(),
        line: 0,
        col: 0,
        message,
    };
    let mode = std::fs::metadata(&config.path)
        .map_err(|e| refuse(format!("reading its permissions: {e}")))?
        .permissions()
        .mode();
    if mode & 0o044 == 0 {
        return Ok(());
    }
    Err(refuse(format!(
        "holds a secret ({}) but is readable by {} (mode {:04o}): make it readable by its \
         owner alone, the user vxtund runs as (chmod 600)",
        keys.join(", "),
        match (mode & 0o040 != 0, mode & 0o004 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        },
        mode & 0o7777
    )))
}

/// The files `config` names (the TLS files): each readable, a private key by its owner alone,
/// and the TLS files holding what their keys say. Errors point at the key's line in `text`.
fn check_named_files(config: &Config, text: &str) -> Result<(), ConfigError> {
    let err = |span: &Range<usize>, message: String| {
        ConfigError::at(&config.path, text, Some(span.clone()), message)
    };
    for file in &config.files {
        let shown = file.path.display();
        if let Err(e) = std::fs::File::open(&file.path) {
            return Err(err(
                &file.span,
                format!("{} `{shown}`: cannot read it: {e}", file.key),
            ));
        }
        if let Some(mode) = readable_by_others(&file.path).filter(|_| file.secret) {
            return Err(err(
                &file.span,
                format!(
                    "{} `{shown}`: mode {mode:04o} lets group or others read the private key: \
                     `chmod 600 {shown}`",
                    file.key
                ),
            ));
        }
    }
    if let Some(tls) = &config.openflow.tls {
        if let Err(e) = crate::tls::Material::load(tls) {
            let key = e.file.key();
            return Err(match config.files.iter().find(|f| f.key == key) {
                Some(f) => err(&f.span, e.to_string()),
                None => ConfigError {
                    path: config.path.clone(),
                    line: 0,
                    col: 0,
                    message: e.to_string(),
                },
            });
        }
    }
    Ok(())
}

/// What a tunnel adds to an inner IP packet: outer IP header, encapsulation header (with its
/// options) and the inner Ethernet header.
pub fn tunnel_overhead(kind: &PortKind) -> usize {
    match kind {
        PortKind::Local => 0,
        PortKind::Vxlan(t) if t.remote.is_ipv4() => wire::VXLAN_OVERHEAD_V4,
        PortKind::Vxlan(_) => wire::VXLAN_OVERHEAD_V6,
        PortKind::Gre(t) => {
            let base = if t.remote.is_ipv4() {
                wire::GRE_OVERHEAD_V4
            } else {
                wire::GRE_OVERHEAD_V6
            };
            let header = wire::gre::Header {
                csum: t.csum,
                key: t.key,
                seq: t.seq.then_some(0),
            };
            base - wire::gre::BASE_LEN + header.len()
        }
    }
}

/// The largest inner IP packet a tunnel of `kind` carries on an underlay with `underlay_mtu`.
pub fn tunnel_mtu(underlay_mtu: u16, kind: &PortKind) -> u16 {
    underlay_mtu.saturating_sub(tunnel_overhead(kind) as u16)
}

/// A configuration error, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn at(path: &Path, text: &str, span: Option<Range<usize>>, message: String) -> ConfigError {
        let (line, col) = match span {
            Some(s) => line_col(text, s.start),
            None => (1, 1),
        };
        ConfigError {
            path: path.to_owned(),
            line,
            col,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

type ErrAt<'a> = dyn Fn(Option<Range<usize>>, String) -> ConfigError + 'a;

fn validate_device(raw: RawDevice, err: &ErrAt<'_>) -> Result<DeviceConfig, ConfigError> {
    let name = match raw.name {
        Some(n) => {
            check_ifname(n.get_ref()).map_err(|m| err(Some(n.span()), m))?;
            n.into_inner()
        }
        None => DEFAULT_DEVICE.to_owned(),
    };
    let bridge = match raw.bridge {
        Some(b) => {
            check_ifname(b.get_ref()).map_err(|m| err(Some(b.span()), m))?;
            Some(b.into_inner())
        }
        None => None,
    };
    let mut addresses = Vec::new();
    for a in &raw.addresses {
        let net: IpNet = a.get_ref().parse().map_err(|_| {
            err(
                Some(a.span()),
                format!(
                    "address `{}`: expected ADDRESS/PREFIX such as 172.31.1.254/24",
                    a.get_ref()
                ),
            )
        })?;
        addresses.push(net);
    }
    let mac = match raw.mac {
        Some(m) => {
            let mac: wire::ethernet::Mac = m
                .get_ref()
                .parse()
                .map_err(|e| err(Some(m.span()), format!("mac `{}`: {e}", m.get_ref())))?;
            if mac.is_multicast() || mac.0 == [0; 6] {
                return Err(err(
                    Some(m.span()),
                    format!("mac `{mac}`: a device needs a unicast address, not zero"),
                ));
            }
            Some(mac)
        }
        None => None,
    };
    Ok(DeviceConfig {
        name,
        mtu: check_mtu(raw.mtu, 68, err)?,
        bridge,
        addresses,
        offload: raw.offload.unwrap_or(true),
        mac,
        queues: match raw.queues {
            Some(q) if !(1..=MAX_QUEUES).contains(q.get_ref()) => {
                return Err(err(
                    Some(q.span()),
                    format!(
                        "queues {}: expected 1 to {MAX_QUEUES} (or no `queues` for one per core)",
                        q.get_ref()
                    ),
                ))
            }
            q => q.map(Spanned::into_inner),
        },
        worker_threads: match raw.worker_threads {
            Some(t) if !(1..=2).contains(t.get_ref()) => {
                return Err(err(
                    Some(t.span()),
                    format!(
                        "worker_threads {}: expected 1 (both directions in one loop) or 2 (a \
                         thread per direction)",
                        t.get_ref()
                    ),
                ))
            }
            t => t.map_or(2, Spanned::into_inner),
        },
        fast_path: match raw.fast_path.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
            None | Some(("auto", _)) => FastPathMode::Auto,
            Some(("on", _)) => FastPathMode::On,
            Some(("off", _)) => FastPathMode::Off,
            Some((other, span)) => {
                return Err(err(
                    Some(span),
                    format!("fast_path `{other}`: expected \"auto\", \"on\" or \"off\""),
                ))
            }
        },
        fast_path_entries: match raw.fast_path_entries {
            Some(n) if !(1..=MAX_FAST_PATH_ENTRIES).contains(n.get_ref()) => {
                return Err(err(
                    Some(n.span()),
                    format!(
                        "fast_path_entries {}: expected 1 to {MAX_FAST_PATH_ENTRIES}",
                        n.get_ref()
                    ),
                ))
            }
            n => n.map_or(DEFAULT_FAST_PATH_ENTRIES, Spanned::into_inner),
        },
        batch_wait_us: check_micros(raw.batch_wait_us, "batch_wait_us", MAX_BATCH_WAIT_US, err)?,
        busy_poll_us: check_micros(raw.busy_poll_us, "busy_poll_us", MAX_BUSY_POLL_US, err)?,
        txqueuelen: match raw.txqueuelen {
            Some(q) if !(1..=MAX_TXQUEUELEN).contains(q.get_ref()) => {
                return Err(err(
                    Some(q.span()),
                    format!(
                        "txqueuelen {}: expected 1 to {MAX_TXQUEUELEN} (or no `txqueuelen` for \
                         {DEFAULT_TXQUEUELEN} on a TAP vxtund creates, the device's own on another)",
                        q.get_ref()
                    ),
                ))
            }
            q => q.map(Spanned::into_inner),
        },
    })
}

fn check_mtu(
    mtu: Option<Spanned<u16>>,
    min: u16,
    err: &ErrAt<'_>,
) -> Result<Option<u16>, ConfigError> {
    match mtu {
        Some(m) if *m.get_ref() < min => Err(err(
            Some(m.span()),
            format!("mtu {} is below the minimum of {min}", m.get_ref()),
        )),
        Some(m) => Ok(Some(m.into_inner())),
        None => Ok(None),
    }
}

/// A number of microseconds `key` that may be at most `max`; 0 (the default) turns it off.
fn check_micros(
    us: Option<Spanned<u32>>,
    key: &str,
    max: u32,
    err: &ErrAt<'_>,
) -> Result<u32, ConfigError> {
    match us {
        Some(w) if *w.get_ref() > max => Err(err(
            Some(w.span()),
            format!("{key} {}: at most {max} (0 turns it off)", w.get_ref()),
        )),
        w => Ok(w.map_or(0, Spanned::into_inner)),
    }
}

fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name `{name}` must be 1 to {IFNAME_MAX} bytes long"
        ));
    }
    if name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
        || name == "."
        || name == ".."
    {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    Ok(())
}

/// A split-horizon group or a system group: letters, digits, `_`, `-` and `.`.
fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(format!(
            "group `{name}` must be 1 to 32 letters, digits, `_`, `-` or `.`"
        ));
    }
    Ok(())
}

fn check_tunnel_name(name: &str, device: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(format!(
            "tunnel name `{name}` may only hold letters, digits, `_`, `-` and `.`"
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "tunnel name `{name}` must not be a number (numbers are port numbers)"
        ));
    }
    if name.eq_ignore_ascii_case("local") || name == device {
        return Err(format!(
            "tunnel name `{name}` is taken by the device (port 1)"
        ));
    }
    if name.starts_with("evpn-") {
        return Err(format!(
            "tunnel name `{name}`: names starting with `evpn-` are kept for the ports of the \
             VTEPs that BGP EVPN learns"
        ));
    }
    Ok(())
}

fn parse_locals(value: &Spanned<toml::Value>) -> Result<Vec<IpAddr>, String> {
    let texts: Vec<&str> = match value.get_ref() {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| "underlay.local: expected addresses as strings".to_owned())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("underlay.local: expected an address or a list of addresses".into()),
    };
    let mut locals: Vec<IpAddr> = Vec::new();
    for text in texts {
        let addr: IpAddr = text
            .parse()
            .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address"))?;
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(format!(
                "underlay.local {addr} must be a unicast address of this host"
            ));
        }
        if locals.iter().any(|l| l.is_ipv4() == addr.is_ipv4()) {
            return Err("underlay.local takes at most one IPv4 and one IPv6 address".into());
        }
        locals.push(addr);
    }
    if locals.is_empty() {
        return Err("underlay.local needs at least one address".into());
    }
    Ok(locals)
}

fn parse_mss_clamp(value: &toml::Value) -> Result<MssClamp, String> {
    const EXPECTED: &str = "mss_clamp: expected \"auto\", \"off\" or an MSS from 88 to 65495";
    match value {
        toml::Value::String(s) if s == "auto" => Ok(MssClamp::Auto),
        toml::Value::String(s) if s == "off" => Ok(MssClamp::Off),
        toml::Value::Integer(n) => u16::try_from(*n)
            .ok()
            .filter(|n| (88..=65495).contains(n))
            .map(MssClamp::Fixed)
            .ok_or_else(|| EXPECTED.to_owned()),
        _ => Err(EXPECTED.to_owned()),
    }
}

/// `tos`: "inherit" or a TOS byte 0..=255, as `ip link add type vxlan tos`.
fn parse_tos(value: &toml::Value) -> Result<TosMode, String> {
    const EXPECTED: &str = "tos: expected \"inherit\" or a TOS value from 0 to 255";
    match value {
        toml::Value::String(s) if s == "inherit" => Ok(TosMode::Inherit),
        toml::Value::Integer(n) => u8::try_from(*n)
            .map(TosMode::Fixed)
            .map_err(|_| EXPECTED.to_owned()),
        _ => Err(EXPECTED.to_owned()),
    }
}

/// `ttl`: "inherit", "auto" (the system's default) or 1..=255, as `ip link add type vxlan ttl`.
fn parse_ttl(value: &toml::Value) -> Result<TtlMode, String> {
    const EXPECTED: &str = "ttl: expected \"inherit\", \"auto\" or a TTL from 1 to 255";
    match value {
        toml::Value::String(s) if s == "inherit" => Ok(TtlMode::Inherit),
        toml::Value::String(s) if s == "auto" => Ok(TtlMode::Default),
        toml::Value::Integer(n) => u8::try_from(*n)
            .ok()
            .filter(|&t| t > 0)
            .map(TtlMode::Fixed)
            .ok_or_else(|| EXPECTED.to_owned()),
        _ => Err(EXPECTED.to_owned()),
    }
}

/// `src_port_range`: `[MIN, MAX]`, 1 <= MIN <= MAX <= 65535.
fn parse_port_range(value: &toml::Value) -> Result<(u16, u16), String> {
    const EXPECTED: &str =
        "src_port_range: expected [MIN, MAX] with 1 <= MIN <= MAX <= 65535, e.g. [32768, 60999]";
    let toml::Value::Array(items) = value else {
        return Err(EXPECTED.to_owned());
    };
    let ports: Vec<u16> = items
        .iter()
        .filter_map(|v| v.as_integer().and_then(|n| u16::try_from(n).ok()))
        .collect();
    match ports[..] {
        [min, max] if items.len() == 2 && min >= 1 && min <= max => Ok((min, max)),
        _ => Err(EXPECTED.to_owned()),
    }
}

fn validate_openflow(
    raw: Option<RawOpenFlow>,
    path: &Path,
    err: &ErrAt<'_>,
) -> Result<(OpenFlowConfig, Vec<NamedFile>), ConfigError> {
    let raw = raw.unwrap_or(RawOpenFlow {
        listen: None,
        datapath_id: None,
        controllers: None,
        fail_mode: None,
        inactivity_probe: None,
        max_backoff: None,
        packet_in_rate: None,
        packet_in_burst: None,
        private_key: None,
        certificate: None,
        ca_cert: None,
    });
    let (tls, files) = validate_tls(
        path,
        [
            ("openflow.private_key", raw.private_key),
            ("openflow.certificate", raw.certificate),
            ("openflow.ca_cert", raw.ca_cert),
        ],
        err,
    )?;
    let needs_tls = |target: &Spanned<String>, tls_target: bool| {
        if tls_target && tls.is_none() {
            return Err(err(
                Some(target.span()),
                format!(
                    "`{}` needs private_key, certificate and ca_cert in [openflow] \
                     (paths to PEM files, as ovs-vsctl set-ssl takes them)",
                    target.get_ref()
                ),
            ));
        }
        Ok(())
    };
    let mut controllers: Vec<ControllerTarget> = Vec::new();
    for t in raw.controllers.unwrap_or_default() {
        let target = ControllerTarget::parse(t.get_ref()).map_err(|m| err(Some(t.span()), m))?;
        needs_tls(&t, target.is_tls())?;
        if controllers.contains(&target) {
            return Err(err(
                Some(t.span()),
                format!("`{}` is listed twice", t.get_ref()),
            ));
        }
        controllers.push(target);
    }
    let fail_mode = match raw.fail_mode {
        None => FailMode::Standalone,
        Some(m) => match m.get_ref().as_str() {
            "secure" => FailMode::Secure,
            "standalone" => FailMode::Standalone,
            other => {
                return Err(err(
                    Some(m.span()),
                    format!("fail_mode `{other}`: expected \"secure\" or \"standalone\""),
                ))
            }
        },
    };
    let seconds = |v: Option<Spanned<u64>>, default: u64, what: &str| match v {
        None => Ok(Duration::from_secs(default)),
        Some(v) if (1..=3600).contains(v.get_ref()) => Ok(Duration::from_secs(*v.get_ref())),
        Some(v) => Err(err(
            Some(v.span()),
            format!("{what} is in seconds, from 1 to 3600"),
        )),
    };
    let inactivity_probe = seconds(raw.inactivity_probe, 5, "inactivity_probe")?;
    let max_backoff = seconds(raw.max_backoff, 8, "max_backoff")?;
    let positive = |v: Option<Spanned<u32>>, default: u32, what: &str| match v {
        None => Ok(default),
        Some(v) if *v.get_ref() > 0 => Ok(*v.get_ref()),
        Some(v) => Err(err(Some(v.span()), format!("{what} must be at least 1"))),
    };
    let packet_in_rate = positive(
        raw.packet_in_rate,
        crate::packet_in::DEFAULT_RATE,
        "packet_in_rate",
    )?;
    let packet_in_burst = positive(
        raw.packet_in_burst,
        crate::packet_in::DEFAULT_BURST,
        "packet_in_burst",
    )?;
    let listen = match raw.listen {
        None => {
            let name = config_name(path);
            vec![ListenTarget::Unix(
                Path::new(CONTROL_DIR).join(format!("{name}.mgmt")),
            )]
        }
        Some(list) => {
            let mut targets: Vec<ListenTarget> = Vec::new();
            for t in list.into_inner() {
                let target =
                    ListenTarget::parse(t.get_ref()).map_err(|m| err(Some(t.span()), m))?;
                needs_tls(&t, target.is_tls())?;
                if targets.contains(&target) {
                    return Err(err(
                        Some(t.span()),
                        format!("`{}` is listed twice", t.get_ref()),
                    ));
                }
                targets.push(target);
            }
            targets
        }
    };
    let datapath_id = match raw.datapath_id {
        None => None,
        Some(d) => {
            let text = d.get_ref().trim_start_matches("0x");
            let valid = !text.is_empty() && text.len() <= 16;
            match u64::from_str_radix(text, 16) {
                Ok(id) if valid => Some(id),
                _ => {
                    return Err(err(
                        Some(d.span()),
                        format!(
                        "datapath_id `{}`: expected up to 16 hex digits, e.g. \"0000000000000001\"",
                        d.get_ref()
                    ),
                    ))
                }
            }
        }
    };
    let openflow = OpenFlowConfig {
        listen,
        datapath_id,
        controllers,
        fail_mode,
        inactivity_probe,
        max_backoff,
        packet_in_rate,
        packet_in_burst,
        tls,
    };
    Ok((openflow, files))
}

/// `private_key`, `certificate` and `ca_cert`: all three or none. A relative path is taken
/// from the config file's directory.
fn validate_tls(
    path: &Path,
    keys: [(&'static str, Option<Spanned<String>>); 3],
    err: &ErrAt<'_>,
) -> Result<(Option<TlsFiles>, Vec<NamedFile>), ConfigError> {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for (key, value) in keys {
        let Some(value) = value else {
            missing.push(key.trim_start_matches("openflow."));
            continue;
        };
        if value.get_ref().is_empty() {
            return Err(err(Some(value.span()), format!("{key} must not be empty")));
        }
        let file = Path::new(value.get_ref());
        let file = match path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_owned(),
        };
        files.push(NamedFile {
            key,
            path: file,
            span: value.span(),
            secret: key == "openflow.private_key",
        });
    }
    match (&files[..], missing.len()) {
        ([], _) => Ok((None, files)),
        ([private_key, certificate, ca_cert], 0) => {
            let tls = TlsFiles {
                private_key: private_key.path.clone(),
                certificate: certificate.path.clone(),
                ca_cert: ca_cert.path.clone(),
            };
            Ok((Some(tls), files))
        }
        ([first, ..], _) => Err(err(
            Some(first.span.clone()),
            format!(
                "private_key, certificate and ca_cert go together: {} missing",
                missing.join(" and ")
            ),
        )),
    }
}

/// The permission bits of `path` when group or others may read it; `None` when they may not
/// or the file cannot be examined (reading it then says why).
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

fn validate_evpn(
    raw: Spanned<RawEvpn>,
    underlay: &UnderlayConfig,
    err: &ErrAt<'_>,
) -> Result<EvpnConfig, ConfigError> {
    let section = raw.span();
    let raw = raw.into_inner();
    let asn = *raw.asn.get_ref();
    if asn == 0 || asn == u32::from(netgauze_bgp_pkt::iana::AS_TRANS) {
        return Err(err(
            Some(raw.asn.span()),
            format!("asn {asn} is reserved: use the fabric's AS"),
        ));
    }
    let vni = *raw.vni.get_ref();
    if vni > vxlan::VNI_MAX {
        return Err(err(
            Some(raw.vni.span()),
            format!("vni {vni} is larger than 16777215 (24 bits)"),
        ));
    }
    let default_password = match &raw.password {
        Some(p) => Some(check_password(p.get_ref()).map_err(|m| err(Some(p.span()), m))?),
        None => None,
    };
    let mut neighbors: Vec<Neighbor> = Vec::new();
    if raw.neighbors.get_ref().is_empty() {
        return Err(err(
            Some(raw.neighbors.span()),
            "`neighbors` is empty: name at least one BGP peer (a route reflector)".into(),
        ));
    }
    for n in raw.neighbors.get_ref() {
        let (ip, password) = parse_neighbor(n).map_err(|m| err(Some(n.span()), m))?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(err(
                Some(n.span()),
                format!("neighbor {ip} must be a unicast address"),
            ));
        }
        if underlay.local_for(ip).is_none() {
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(err(
                Some(n.span()),
                format!("neighbor {ip} is {family}, but underlay.local has no {family} address"),
            ));
        }
        if neighbors.iter().any(|m| m.address == ip) {
            return Err(err(
                Some(n.span()),
                format!("neighbor {ip} is listed twice"),
            ));
        }
        neighbors.push(Neighbor {
            address: ip,
            password: password.or_else(|| default_password.clone()),
        });
    }
    let vtep = neighbors
        .first()
        .and_then(|n| underlay.local_for(n.address))
        .ok_or_else(|| err(Some(raw.neighbors.span()), "no neighbor".into()))?;
    let router_id =
        match &raw.router_id {
            Some(r) => r.get_ref().parse::<std::net::Ipv4Addr>().map_err(|_| {
                err(
                    Some(r.span()),
                    format!("router_id `{}` is not an IPv4 address", r.get_ref()),
                )
            })?,
            None => match underlay.local.iter().find_map(|l| match l {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            }) {
                Some(v4) => v4,
                None => return Err(err(
                    Some(section),
                    "[evpn] needs `router_id` (an IPv4 address) when underlay.local has no IPv4 \
                     address"
                        .into(),
                )),
            },
        };
    if router_id.is_unspecified() {
        return Err(err(
            raw.router_id.as_ref().map(|r| r.span()),
            "router_id 0.0.0.0 is not a BGP identifier".into(),
        ));
    }
    let route_targets = match &raw.route_targets {
        Some(list) if list.get_ref().is_empty() => {
            return Err(err(
                Some(list.span()),
                "`route_targets` is empty: leave it out for ASN:VNI".into(),
            ))
        }
        Some(list) => {
            let mut rts = Vec::new();
            for t in list.get_ref() {
                let rt: crate::evpn::RouteTarget =
                    t.get_ref().parse().map_err(|m| err(Some(t.span()), m))?;
                if !rts.contains(&rt) {
                    rts.push(rt);
                }
            }
            rts
        }
        None => vec![crate::evpn::RouteTarget::derived(asn, vni).ok_or_else(|| {
            err(
                Some(raw.vni.span()),
                format!(
                    "with a 4-octet asn, ASN:VNI does not fit a route target (vni {vni} > \
                     65535): set `route_targets`"
                ),
            )
        })?],
    };
    let hold_time = match &raw.hold_time {
        Some(h) if matches!(*h.get_ref(), 1 | 2) => {
            return Err(err(
                Some(h.span()),
                "hold_time is 0 (no keepalives) or at least 3 seconds".into(),
            ))
        }
        Some(h) => *h.get_ref(),
        None => DEFAULT_HOLD_TIME,
    };
    let dst_port = match &raw.dst_port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(err(Some(p.span()), "dst_port must not be 0".into()))
        }
        Some(p) => *p.get_ref(),
        None => DEFAULT_VXLAN_PORT,
    };
    let at_least_one = |v: &Option<Spanned<usize>>, default: usize, what: &str| match v {
        Some(n) if *n.get_ref() == 0 => {
            Err(err(Some(n.span()), format!("{what} must be at least 1")))
        }
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    };
    Ok(EvpnConfig {
        asn,
        neighbors,
        vni,
        router_id,
        vtep,
        route_targets,
        hold_time,
        dst_port,
        max_routes: at_least_one(&raw.max_routes, DEFAULT_MAX_ROUTES, "max_routes")?,
        max_vteps: at_least_one(&raw.max_vteps, DEFAULT_MAX_VTEPS, "max_vteps")?,
    })
}

/// One entry of `[evpn] neighbors`: `"IP"` or `{ address = "IP", password = "..." }`.
fn parse_neighbor(entry: &Spanned<toml::Value>) -> Result<(IpAddr, Option<Password>), String> {
    const FORM: &str = "a neighbor is \"IP\" or { address = \"IP\", password = \"...\" }";
    let address = |text: &str| {
        text.parse::<IpAddr>()
            .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address"))
    };
    match entry.get_ref() {
        toml::Value::String(text) => Ok((address(text)?, None)),
        toml::Value::Table(table) => {
            if let Some(key) = table
                .keys()
                .find(|k| !matches!(k.as_str(), "address" | "password"))
            {
                return Err(format!("unknown key `{key}` in a neighbor: {FORM}"));
            }
            let ip = match table.get("address") {
                Some(toml::Value::String(text)) => address(text)?,
                Some(_) => return Err(format!("a neighbor's address is a string: {FORM}")),
                None => return Err(format!("a neighbor needs `address`: {FORM}")),
            };
            let password = match table.get("password") {
                Some(toml::Value::String(text)) => {
                    Some(check_password(text).map_err(|m| format!("neighbor {ip}: {m}"))?)
                }
                Some(_) => return Err(format!("neighbor {ip}: the password is a string")),
                None => None,
            };
            Ok((ip, password))
        }
        _ => Err(FORM.to_owned()),
    }
}

/// A TCP MD5 key: 1 to 80 bytes, as the kernel (and FRR) take it.
fn check_password(text: &str) -> Result<Password, String> {
    if text.is_empty() {
        return Err("the password is empty: leave it out for no TCP MD5".into());
    }
    if text.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password is {} bytes long; TCP MD5 keys are at most {MAX_PASSWORD_LEN}",
            text.len()
        ));
    }
    Ok(Password(text.to_owned()))
}

/// The name default sockets are named after: the config file's name without `.toml`
/// (`seg1` for `/etc/vxtund/seg1.toml`, as `vxtund@seg1` runs it), so that two daemons with the
/// same device name in two network namespaces do not collide.
pub fn config_name(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("vxtund")
}

/// Every key the configuration file takes, as `(table, key)` pairs in the order the parser
/// declares them: `("device", "name")`, ..., `("tunnel", "type")` (`tunnel` is the
/// `[[tunnel]]` array), ... Read from the serde structs [`Config::parse`] deserializes into,
/// whose field lists are also what refuses an unknown key, so the list cannot drift from what
/// the parser accepts. `tests/docs.rs` holds `docs/config.md` to it.
pub fn accepted_keys() -> Vec<(&'static str, &'static str)> {
    let mut keys = Vec::new();
    for &table in struct_fields::<RawConfig>() {
        let fields = match table {
            "device" => struct_fields::<RawDevice>(),
            "underlay" => struct_fields::<RawUnderlay>(),
            "tunnel" => struct_fields::<RawTunnel>(),
            "flows" => struct_fields::<RawFlows>(),
            "control" => struct_fields::<RawControl>(),
            "openflow" => struct_fields::<RawOpenFlow>(),
            "metrics" => struct_fields::<RawMetrics>(),
            "evpn" => struct_fields::<RawEvpn>(),
            // A table added to RawConfig needs its struct named here; the tests that call
            // this fail until it is.
            other => panic!("config::accepted_keys: no struct for the table `{other}`"),
        };
        keys.extend(fields.iter().map(|&key| (table, key)));
    }
    keys
}

/// `[metrics] listen`: `IP:PORT` (an IPv6 address in brackets).
fn parse_metrics_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "metrics.listen `{text}`: expected IP:PORT, e.g. \"127.0.0.1:9477\" or \"[::1]:9477\""
        )
    })
}

fn parse_ip(text: &Spanned<String>) -> Result<IpAddr, String> {
    text.get_ref()
        .parse()
        .map_err(|_| format!("`{}` is not an IPv4 or IPv6 address", text.get_ref()))
}

/// The keys serde's derive gives struct `T` (renames applied): the list it hands to
/// `deserialize_struct`, caught by [`FieldCatcher`] before anything is read.
fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The catcher always answers with an error once it has the list; nothing else is read.
    let _ = T::deserialize(FieldCatcher(&mut fields));
    fields
}

/// A deserializer that reads nothing: it keeps the field names of the struct asked for.
struct FieldCatcher<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldCatcher<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names taken; nothing read"))
    }

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    device: RawDevice,
    underlay: RawUnderlay,
    #[serde(default, rename = "tunnel")]
    tunnels: Vec<Spanned<RawTunnel>>,
    flows: Option<RawFlows>,
    control: Option<RawControl>,
    openflow: Option<RawOpenFlow>,
    metrics: Option<RawMetrics>,
    evpn: Option<Spanned<RawEvpn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvpn {
    asn: Spanned<u32>,
    neighbors: Spanned<Vec<Spanned<toml::Value>>>,
    password: Option<Spanned<String>>,
    vni: Spanned<u32>,
    router_id: Option<Spanned<String>>,
    route_targets: Option<Spanned<Vec<Spanned<String>>>>,
    hold_time: Option<Spanned<u16>>,
    dst_port: Option<Spanned<u16>>,
    max_routes: Option<Spanned<usize>>,
    max_vteps: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenFlow {
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    datapath_id: Option<Spanned<String>>,
    controllers: Option<Vec<Spanned<String>>>,
    fail_mode: Option<Spanned<String>>,
    inactivity_probe: Option<Spanned<u64>>,
    max_backoff: Option<Spanned<u64>>,
    packet_in_rate: Option<Spanned<u32>>,
    packet_in_burst: Option<Spanned<u32>>,
    private_key: Option<Spanned<String>>,
    certificate: Option<Spanned<String>>,
    ca_cert: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<Spanned<String>>,
    mtu: Option<Spanned<u16>>,
    bridge: Option<Spanned<String>>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    offload: Option<bool>,
    mac: Option<Spanned<String>>,
    queues: Option<Spanned<u16>>,
    batch_wait_us: Option<Spanned<u32>>,
    busy_poll_us: Option<Spanned<u32>>,
    txqueuelen: Option<Spanned<u32>>,
    worker_threads: Option<Spanned<u8>>,
    fast_path: Option<Spanned<String>>,
    fast_path_entries: Option<Spanned<u32>>,
}

/// What tells two tunnels to the same remote apart.
#[derive(Hash, PartialEq, Eq)]
enum Endpoint {
    Vxlan(u32, u16),
    Gre(Option<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnderlay {
    local: Spanned<toml::Value>,
    mtu: Option<Spanned<u16>>,
    offload: Option<bool>,
    inner_checksum: Option<Spanned<String>>,
    flow_spread: Option<Spanned<String>>,
    src_port_range: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    remote: Spanned<String>,
    vni: Option<Spanned<u32>>,
    dst_port: Option<Spanned<u16>>,
    key: Option<Spanned<u32>>,
    csum: Option<Spanned<bool>>,
    seq: Option<Spanned<bool>>,
    mss_clamp: Option<Spanned<toml::Value>>,
    df: Option<Spanned<String>>,
    split_horizon: Option<Spanned<String>>,
    port: Option<Spanned<u32>>,
    tos: Option<Spanned<toml::Value>>,
    ttl: Option<Spanned<toml::Value>>,
    src_port_range: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlows {
    rules: Option<Spanned<Vec<Spanned<String>>>>,
    mac_ageing: Option<Spanned<u64>>,
    mac_table_size: Option<Spanned<usize>>,
}
