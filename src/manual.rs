//! The manual pages `vxtund(8)` and `vxtunctl(8)`: generated from the command-line definitions
//! (clap_mangen), with sections clap does not know appended: the configuration file's keys,
//! signals, files, and how `trace` reads a description. `vxtund --man` and `vxtunctl --man`
//! print them (debian/rules writes them during the package build; the package installs them).

use clap_mangen::Man;

/// `vxtund(8)`.
pub fn vxtund_page(cmd: clap::Command) -> Vec<u8> {
    page(cmd, VXTUND_EXTRA)
}

/// `vxtunctl(8)`.
pub fn vxtunctl_page(cmd: clap::Command) -> Vec<u8> {
    page(cmd, VXTUNCTL_EXTRA)
}

fn page(cmd: clap::Command, extra: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = Man::new(cmd).section("8").manual("vxtund").render(&mut out);
    out.extend_from_slice(extra.as_bytes());
    out
}

const VXTUND_EXTRA: &str = r#".SH CONFIGURATION
The file is TOML; unknown keys are refused, and every error names FILE:LINE:COL. Only [underlay] is required. /usr/share/doc/vxtund/docs/config.md describes every key at length, with what a reload may change.
.SS [device]
.TP
\fBname\fR
The TAP device (port 1, also called LOCAL): created if missing, opened if it exists. Default vxt0.
.TP
\fBmtu\fR
Its MTU. Default: the smallest tunnel MTU.
.TP
\fBbridge\fR
An existing bridge to enslave the TAP to.
.TP
\fBaddresses\fR
Addresses to put on the TAP, as ADDRESS/PREFIX.
.TP
\fBoffload\fR
TAP offloads (checksum, TSO, USO). Default true.
.TP
\fBmac\fR
The TAP's MAC address. Default: derived from the machine id, the device name and the underlay addresses, stable across restarts.
.TP
\fBqueues\fR
TAP queues, one data-path worker each (1 to 64). Default: one per core.
.TP
\fBworker_threads\fR
Threads per worker: 2 runs each direction (TAP to tunnels, tunnels to TAP) on a thread of its own, 1 runs both in one loop, with about a third of the wake-ups. Default 2.
.TP
\fBbatch_wait_us\fR
After a wake-up that follows a batch smaller than full, wait this long (up to 1000) before reading. Default 0 (off).
.TP
\fBbusy_poll_us\fR
Before a data-path thread sleeps, poll its TAP queue and sockets this long (up to 10000) without sleeping, yielding the CPU to other runnable threads between looks: while frames keep coming nobody has to wake the thread, for a busy core while traffic lasts (and this long after each frame when it is sparse). Default 0 (off).
.TP
\fBtxqueuelen\fR
Frames each TAP queue holds until a worker reads them (1 to 100000), as ip link's txqueuelen. Default: 4000 on a TAP vxtund creates; an existing device keeps its own.
.TP
\fBfast_path\fR
"auto" (default): BPF programs in the kernel forward the flows vxtund has decided (VXLAN over IPv4), where they load and attach; otherwise the userspace path, with one log line saying why. "on": refuse to start without them. "off": the userspace path alone.
.TP
\fBfast_path_entries\fR
The most flows the kernel fast path caches (1 to 4194304). Default 65536.
.SS [underlay]
.TP
\fBlocal\fR
Source address of outer packets, or a list of one IPv4 and one IPv6 address. Required.
.TP
\fBmtu\fR
Underlay MTU. Default: that of the route to each remote, followed as the kernel learns path MTUs.
.TP
\fBoffload\fR
UDP GSO and GRO on the VXLAN sockets. Default true.
.TP
\fBinner_checksum\fR
Verify received inner checksums before coalescing for the TAP: "auto" (only for datagrams that came without an outer UDP checksum, which over IPv4 the kernel's vxlan sends by default; a non-zero one, verified by the kernel, covers the inner frame), "verify", "trust". Default "auto". Behind a hub that relays frames received over IPv4 without UDP checksums, use "verify".
.TP
\fBflow_spread\fR
How VXLAN flows get their outer source ports: "hash" (RFC 7348, as the kernel's vxlan), or "balance": each new TCP connection (a SYN) takes the next of 16 turns and keeps it while it is active, so that a receiving vxtund, which picks its worker by the source port, spreads consecutive connections evenly over its workers. Other traffic keeps the hash. Default "balance"; a restart is needed to change it.
.TP
\fBsrc_port_range\fR
[MIN, MAX]: the outer UDP source ports of VXLAN. Default: the kernel's net.ipv4.ip_local_port_range.
.SS [[tunnel]] (ports 2, 3, ... in file order)
.TP
\fBname\fR, \fBtype\fR, \fBremote\fR
Port name, "vxlan" or "gre", remote VTEP address. Required.
.TP
\fBvni\fR, \fBdst_port\fR, \fBsrc_port_range\fR
VXLAN: 24-bit VNI (default 0), UDP port (default 8472), this tunnel's own outer source ports.
.TP
\fBkey\fR, \fBcsum\fR, \fBseq\fR
GRE: RFC 2890 key, checksums, sequence numbers.
.TP
\fBmss_clamp\fR, \fBdf\fR, \fBtos\fR, \fBttl\fR
"auto", "off" or an MSS; outer DF "set", "unset" or "inherit"; outer TOS, a value or "inherit" (ECN follows the inner packet); outer TTL, "auto", a value or "inherit".
.TP
\fBsplit_horizon\fR, \fBport\fR
A split-horizon group; the OpenFlow port number.
.SS [flows]
.TP
\fBrules\fR
Flows in ovs\-ofctl syntax. Without them: actions=normal.
.TP
\fBmac_ageing\fR, \fBmac_table_size\fR
The MAC table of actions=normal (300 s, 8192 entries).
.SS [control]
.TP
\fBsocket\fR
vxtunctl's socket. Default /run/vxtund/NAME.sock for NAME.toml, mode 0600.
.TP
\fBgroup\fR
A group also allowed to use it (mode 0660).
.SS [openflow]
.TP
\fBlisten\fR
punix:PATH, ptcp:PORT[:IP] and pssl:PORT[:IP] (TLS) targets. Default punix:/run/vxtund/NAME.mgmt; [] turns it off. A ptcp: target beyond loopback is warned about at start.
.TP
\fBdatapath_id\fR
Up to 16 hex digits. Default: derived, stable per segment.
.TP
\fBcontrollers\fR
tcp:IP[:PORT], ssl:IP[:PORT] (TLS; port 6653 by default) and unix:PATH controllers to dial.
.TP
\fBfail_mode\fR
While no controller is connected: "standalone" (default) forwards by actions=normal, "secure" keeps the table.
.TP
\fBinactivity_probe\fR, \fBmax_backoff\fR
Seconds of silence before an ECHO to a controller (default 5); the longest wait between attempts to reach one (default 8).
.TP
\fBpacket_in_rate\fR, \fBpacket_in_burst\fR
PACKET_INs per second at most, and the burst above it (default 1000 and 100).
.TP
\fBprivate_key\fR, \fBcertificate\fR, \fBca_cert\fR
PEM files for pssl: and ssl: (as ovs\-vsctl set\-ssl takes them): our key, our certificate (and intermediates), and the CA a peer's certificate must chain to. Both sides present certificates; a peer's is checked for its chain and validity period, not its name (as Open vSwitch). Read again on every reload. The key file, and a config file that sets private_key, must not be readable by group or others: vxtund refuses them otherwise.
.SS [metrics]
.TP
\fBlisten\fR
IP:PORT where GET /metrics serves Prometheus' text format. Off by default.
.SS [evpn]
.TP
\fBasn\fR, \fBneighbors\fR, \fBvni\fR
The fabric's AS (iBGP), the BGP peers (route reflectors, port 179), the VNI. Required.
.TP
\fBrouter_id\fR, \fBroute_targets\fR
The BGP identifier (default: the underlay's local IPv4 address); route targets imported and exported (default ASN:VNI).
.TP
\fBhold_time\fR, \fBdst_port\fR
Hold time proposed, 0 or 3 to 65535 s (default 90); the VTEPs' VXLAN port (default 8472).
.TP
\fBmax_routes\fR, \fBmax_vteps\fR
Routes held and remote VTEPs at most; more are refused and counted (default 200000 and 4096).
.TP
\fBpassword\fR
TCP MD5 (RFC 2385) with every neighbor, 1 to 80 bytes; a neighbor written as a table
{ address = "IP", password = "..." } has its own. The file must then be mode 0600.
.SH SIGNALS
SIGTERM and SIGINT stop the daemon; SIGHUP reloads the configuration file; SIGUSR1 logs every counter.
.SH SYSTEMD
Runs as Type=notify: READY=1 once the TAP and sockets are up, RELOADING=1 and READY=1 around each reload, STOPPING=1, and WATCHDOG=1 while every thread that must live turns: each data\-path thread, the control thread, and those that run of the OpenFlow, metrics, path\-MTU, fast\-path sweeper and EVPN threads (WatchdogSec=). The log names a thread that stops turning.
.SH FILES
/etc/vxtund/NAME.toml, /run/vxtund/NAME.sock, /run/vxtund/NAME.mgmt, /usr/share/doc/vxtund/docs/
.SH "SEE ALSO"
vxtunctl(8), ovs\-ofctl(8), systemd.service(5)
"#;

const VXTUNCTL_EXTRA: &str = r#".SH TRACE
\fBvxtunctl trace\fR DESCRIPTION [PACKET] shows what the daemon would do with a frame, as ovs\-appctl ofproto/trace does, without sending or counting anything: the flow that matches (text, priority, counters), its actions, the egress ports by name, what MTU handling and MSS clamping would do, and how the frame leaves by each tunnel (its VNI or GRE key and remote, the outer TOS, TTL and DF, and the inner flow's hash that picks the source port; see docs/operations.md). DESCRIPTION takes the match fields of flows (in_port, dl_src, dl_dst, dl_type, arp, ip, ipv6, icmp, icmp6, tcp, udp, tcp6, udp6, nw_src, nw_dst, ipv6_src, ipv6_dst, nw_proto, tp_src, tp_dst) with single addresses, plus tcp_flags=syn, mss=N (the SYN's MSS option, default 1460), ip_len=N (the IP packet's length) and df=no. Fields left out take defaults (in_port=LOCAL, MACs 02:00:00:00:00:01 > 02:00:00:00:00:02, an ICMP echo for ip and ipv6). PACKET, if given, is an Ethernet frame in hex; DESCRIPTION then gives only in_port.
.SH FILES
/run/vxtund/NAME.sock: the control socket of the daemon run with NAME.toml.
.SH "SEE ALSO"
vxtund(8), ovs\-ofctl(8), ovs\-appctl(8)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// The manual names every key the parser accepts, in its table's section.
    #[test]
    fn the_configuration_section_names_every_key() {
        let mut missing = Vec::new();
        for (table, key) in crate::config::accepted_keys() {
            let heading = match table {
                "tunnel" => ".SS [[tunnel]]".to_owned(),
                t => format!(".SS [{t}]\n"),
            };
            let Some(at) = VXTUND_EXTRA.find(&heading) else {
                missing.push(format!("[{table}]"));
                continue;
            };
            let section = &VXTUND_EXTRA[at + heading.len()..];
            let end = section.find("\n.S").unwrap_or(section.len());
            if !section[..end].contains(&format!("\\fB{key}\\fR")) {
                missing.push(format!("{table}.{key}"));
            }
        }
        assert!(missing.is_empty(), "not in vxtund(8): {missing:?}");
    }
}
