//! vxtund: a userspace VXLAN tunnel daemon with an OpenFlow-style prefix forwarding table.
//!
//! The crate is a pure core that decides ([`wire`], [`flow`], [`switch`], [`config`]) and a
//! thin I/O shell that moves bytes ([`io`], [`daemon`]). See `ARCHITECTURE.md`.

pub mod bgp;
pub mod config;
pub mod control;
pub mod daemon;
pub mod evpn;
pub mod fastpath;
pub mod fdb;
pub mod flow;
pub mod incident;
pub mod io;
pub mod logs;
pub mod manual;
pub mod metrics;
pub mod openflow;
pub mod packet_in;
pub mod ratelimit;
pub mod segments;
pub mod spread;
pub mod switch;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod trace;
pub mod wire;
