//! The switch side of one OpenFlow session, pure: bytes in, answers out. The session's socket
//! lives in the daemon; what the agent needs of the running switch comes through
//! [`Datapath`], which the daemon implements on its shared state and tests implement on a
//! [`Switch`](crate::switch::Switch) of their own.
//!
//! It negotiates OpenFlow 1.3 (HELLO with a version bitmap, HELLO_FAILED otherwise), answers
//! ECHO, FEATURES, GET_CONFIG/SET_CONFIG, BARRIER, ROLE_REQUEST and GET_ASYNC/SET_ASYNC, turns
//! FLOW_MODs into the one flow edit every control plane uses ([`FlowEdit`]), and answers the
//! multipart requests DESC, FLOW, AGGREGATE, TABLE, PORT_STATS, PORT_DESC and TABLE_FEATURES.
//! Everything else gets an ERROR carrying the request's xid and first 64 bytes, in order, so
//! that it arrives before the answer to the BARRIER that follows it.

use std::time::Duration;

use super::convert::{self, OfError, SUPPORTED_FIELDS};
use super::*;
use crate::flow::edit::{CookieFilter, EditError, Edited, FlowEdit, Selector};
use crate::flow::{self, Flow, PortNo};
use crate::packet_in::{PacketInMeta, PacketInReason};
use crate::switch::PortStats as SwitchPortStats;

/// How many bytes of a refused request an ERROR carries.
const ERROR_DATA_LEN: usize = 64;
/// The OpenFlow 1.3 bit of a HELLO version bitmap.
const VERSION_BIT: u32 = 1 << VERSION;
/// What the table says it can hold (a bound, not a promise: the table is a vector).
const MAX_ENTRIES: u32 = 1_000_000;

/// One port as OpenFlow sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Its number (1 is the TAP).
    pub no: PortNo,
    /// Its name (the device's or the tunnel's).
    pub name: String,
    /// Its MAC address (the TAP's; a derived one for tunnels).
    pub hw_addr: [u8; 6],
    /// Its counters.
    pub stats: SwitchPortStats,
    /// How long it has existed.
    pub age: Duration,
}

/// One flow with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    /// The flow.
    pub flow: Flow,
    /// Frames that matched it.
    pub packets: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// How long it has been in the table.
    pub age: Duration,
}

/// What a session may ask of the running switch.
pub trait Datapath {
    /// A line naming this switch for DESC (device and config file).
    fn description(&self) -> String;
    /// The ports, by number.
    fn ports(&self) -> Vec<PortInfo>;
    /// The flows with their counters.
    fn flows(&self) -> Vec<FlowEntry>;
    /// Frames looked up in the table, and those that matched a flow.
    fn table_counts(&self) -> (u64, u64);
    /// Applies a flow edit atomically (the same operation as a file, reload or vxtunctl edit).
    fn edit(&mut self, edit: FlowEdit) -> Result<Edited, EditError>;
    /// Sends a frame a controller gave (PACKET_OUT) as if it came in on `in_port`: with
    /// `actions` as they say, without through the table.
    fn packet_out(&mut self, in_port: PortNo, frame: Vec<u8>, actions: Option<Vec<flow::Action>>);
    /// The switch-wide master election: session `session` asks for `role` with `generation`.
    fn request_role(&mut self, session: u64, role: u32, generation: u64) -> Result<(), OfError>;
    /// The session that is master now, if any.
    fn master(&self) -> Option<u64>;
}

/// The switch-wide state behind ROLE_REQUEST: which session is master and the newest
/// generation id seen (OpenFlow 1.3, section 6.3.7).
#[derive(Debug, Default, Clone)]
pub struct RoleArbiter {
    generation: Option<u64>,
    master: Option<u64>,
}

impl RoleArbiter {
    /// Session `session` asks for `role` (MASTER, SLAVE or EQUAL) with `generation`: a MASTER
    /// or SLAVE request older than the newest seen is STALE. A new master demotes the old one.
    pub fn request(&mut self, session: u64, role: u32, generation: u64) -> Result<(), OfError> {
        if role == OFPCR_ROLE_MASTER || role == OFPCR_ROLE_SLAVE {
            // Compared as the spec says: (int64_t)(generation - newest) < 0 is stale.
            if self
                .generation
                .is_some_and(|g| (generation.wrapping_sub(g) as i64) < 0)
            {
                return Err(OfError::new(OFPET_ROLE_REQUEST_FAILED, OFPRRFC_STALE));
            }
            self.generation = Some(generation);
        }
        match role {
            OFPCR_ROLE_MASTER => self.master = Some(session),
            _ if self.master == Some(session) => self.master = None,
            _ => {}
        }
        Ok(())
    }

    /// The master session.
    pub fn master(&self) -> Option<u64> {
        self.master
    }

    /// Forgets a session that closed.
    pub fn forget(&mut self, session: u64) {
        if self.master == Some(session) {
            self.master = None;
        }
    }
}

/// Something the switch tells its controllers without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncEvent {
    /// A frame for the controllers.
    PacketIn {
        /// Why and from where.
        meta: PacketInMeta,
        /// The whole frame.
        frame: Vec<u8>,
    },
    /// A flow left the table.
    FlowRemoved {
        /// The flow.
        flow: Flow,
        /// Its counters and age when it went.
        packets: u64,
        /// See `packets`.
        bytes: u64,
        /// See `packets`.
        age: Duration,
        /// `OFPRR_IDLE_TIMEOUT`, `OFPRR_HARD_TIMEOUT` or `OFPRR_DELETE`.
        reason: u8,
    },
    /// A port was added, removed or changed (`OFPPR_*`).
    PortStatus {
        /// `OFPPR_ADD`, `OFPPR_DELETE` or `OFPPR_MODIFY`.
        reason: u8,
        /// The port.
        port: PortInfo,
    },
}

/// What to do after a message: send `replies` in order, then close if `close`.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Encoded messages to send.
    pub replies: Vec<Vec<u8>>,
    /// Whether the session ends.
    pub close: bool,
}

/// The state of one session.
pub struct Agent {
    /// This session's number, for the master election.
    id: u64,
    /// A connection the peer dialled (see [`Agent::service`]).
    service: bool,
    datapath_id: u64,
    negotiated: bool,
    config: SwitchConfig,
    role: Role,
    async_config: AsyncConfig,
    next_xid: u32,
}

impl Agent {
    /// A session (numbered `id`, unique in the daemon) of the switch with this datapath id,
    /// before HELLO.
    pub fn new(id: u64, datapath_id: u64) -> Agent {
        Agent {
            id,
            service: false,
            datapath_id,
            negotiated: false,
            config: SwitchConfig {
                flags: OFPC_FRAG_NORMAL,
                miss_send_len: OFP_DEFAULT_MISS_SEND_LEN,
            },
            role: Role {
                role: OFPCR_ROLE_EQUAL,
                generation_id: 0,
            },
            // OpenFlow 1.3's defaults for a master or equal controller (section 7.3.10).
            async_config: AsyncConfig {
                packet_in_mask: [0b11, 0],
                port_status_mask: [0b111, 0b111],
                flow_removed_mask: [0b1111, 0],
            },
            next_xid: 1,
        }
    }

    /// The same session as a service connection (one the peer dialled, as ovs-ofctl does): it
    /// gets asynchronous messages only once it sets a non-zero miss_send_len, as in Open
    /// vSwitch.
    pub fn service(mut self) -> Agent {
        self.service = true;
        self.config.miss_send_len = 0;
        self
    }

    /// The HELLO this side sends first: OpenFlow 1.3 only.
    pub fn hello(&self) -> Vec<u8> {
        Message::Hello {
            versions: Some(VERSION_BIT),
        }
        .encode(0)
    }

    /// An ECHO request to probe a silent peer.
    pub fn echo_probe(&mut self) -> Vec<u8> {
        self.next_xid = self.next_xid.wrapping_add(1);
        Message::EchoRequest(Vec::new()).encode(self.next_xid)
    }

    /// Whether the peer's HELLO settled on OpenFlow 1.3.
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// This session's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The role in force: a master that another session has since replaced is a slave.
    fn role(&self, dp: &dyn Datapath) -> u32 {
        match self.role.role {
            OFPCR_ROLE_MASTER if dp.master() != Some(self.id) => OFPCR_ROLE_SLAVE,
            role => role,
        }
    }

    /// The message `event` becomes for this session, if its role and asynchronous
    /// configuration (SET_ASYNC) want it.
    pub fn async_message(&mut self, dp: &dyn Datapath, event: &AsyncEvent) -> Option<Vec<u8>> {
        if !self.negotiated || (self.service && self.config.miss_send_len == 0) {
            return None;
        }
        let slot = usize::from(self.role(dp) == OFPCR_ROLE_SLAVE);
        let wants = |mask: [u32; 2], reason: u8| mask[slot] & (1u32 << reason) != 0;
        self.next_xid = self.next_xid.wrapping_add(1);
        let message = match event {
            AsyncEvent::PacketIn { meta, frame } => {
                let reason = match meta.reason {
                    PacketInReason::NoMatch => OFPR_NO_MATCH,
                    PacketInReason::Action => OFPR_ACTION,
                };
                if !wants(self.async_config.packet_in_mask, reason) {
                    return None;
                }
                Message::PacketIn(PacketIn {
                    buffer_id: OFP_NO_BUFFER,
                    total_len: u16::try_from(frame.len()).unwrap_or(u16::MAX),
                    reason,
                    table_id: 0,
                    cookie: meta.cookie,
                    match_: vec![Oxm::in_port(meta.in_port.0)],
                    data: frame.clone(),
                })
            }
            AsyncEvent::FlowRemoved {
                flow,
                packets,
                bytes,
                age,
                reason,
            } => {
                if !flow.has_flag(Flow::SEND_FLOW_REM)
                    || !wants(self.async_config.flow_removed_mask, *reason)
                {
                    return None;
                }
                Message::FlowRemoved(FlowRemoved {
                    cookie: flow.cookie,
                    priority: flow.priority,
                    reason: *reason,
                    table_id: 0,
                    duration_sec: u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
                    duration_nsec: age.subsec_nanos(),
                    idle_timeout: flow.idle_timeout,
                    hard_timeout: flow.hard_timeout,
                    packet_count: *packets,
                    byte_count: *bytes,
                    match_: convert::match_to_wire(&flow.matches),
                })
            }
            AsyncEvent::PortStatus { reason, port } => {
                if !wants(self.async_config.port_status_mask, *reason) {
                    return None;
                }
                Message::PortStatus {
                    reason: *reason,
                    port: port_desc(port),
                }
            }
        };
        Some(message.encode(self.next_xid))
    }

    /// Handles messages that arrived together, in order. Consecutive FLOW_MOD ADDs that are
    /// valid and plain (no CHECK_OVERLAP) become one table change; since an ADD has no answer
    /// and nothing reads the table between them, the answers are those of one by one.
    pub fn handle_batch(&mut self, dp: &mut dyn Datapath, messages: &[Vec<u8>]) -> Outcome {
        let mut out = Outcome::default();
        let mut adds: Vec<Flow> = Vec::new();
        let ports: Vec<PortNo> = dp.ports().iter().map(|p| p.no).collect();
        for bytes in messages {
            if let Some(flow) = self.plain_add(dp, &ports, bytes) {
                adds.push(flow);
                continue;
            }
            flush_adds(dp, &mut adds);
            let Outcome { replies, close } = self.handle(dp, bytes);
            out.replies.extend(replies);
            if close {
                out.close = true;
                return out;
            }
        }
        flush_adds(dp, &mut adds);
        out
    }

    /// The flow of a FLOW_MOD ADD that can join a batch: valid, for table 0, no buffer, no
    /// CHECK_OVERLAP, from a session that may edit.
    fn plain_add(&self, dp: &dyn Datapath, ports: &[PortNo], bytes: &[u8]) -> Option<Flow> {
        if !self.negotiated || self.role(dp) == OFPCR_ROLE_SLAVE {
            return None;
        }
        let header = Header::parse(bytes)?;
        if header.version != VERSION || header.msg_type != OFPT_FLOW_MOD {
            return None;
        }
        let Ok((_, Message::FlowMod(fm))) = Message::decode(bytes) else {
            return None;
        };
        if fm.command != OFPFC_ADD
            || fm.table_id != 0
            || fm.buffer_id != OFP_NO_BUFFER
            || fm.flags & OFPFF_CHECK_OVERLAP != 0
        {
            return None;
        }
        convert::flow_from_wire(&fm, &|p| ports.contains(&p)).ok()
    }

    /// Handles one whole message (header included).
    pub fn handle(&mut self, dp: &mut dyn Datapath, bytes: &[u8]) -> Outcome {
        let mut out = Outcome::default();
        let Some(header) = Header::parse(bytes) else {
            out.close = true;
            return out;
        };
        let xid = header.xid;
        let error = |e: OfError| {
            Message::Error {
                err_type: e.err_type,
                code: e.code,
                data: bytes[..bytes.len().min(ERROR_DATA_LEN)].to_vec(),
            }
            .encode(xid)
        };
        if usize::from(header.length) < HEADER_LEN || usize::from(header.length) != bytes.len() {
            out.replies
                .push(error(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)));
            out.close = true;
            return out;
        }
        if !self.negotiated {
            return self.hello_from_peer(&header, bytes);
        }
        if header.version != VERSION {
            out.replies
                .push(error(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_VERSION)));
            return out;
        }
        let message = match Message::decode(bytes) {
            Ok((_, m)) => m,
            Err(e) => {
                out.replies.push(error(OfError::new(e.err_type, e.code)));
                return out;
            }
        };
        match self.answer(dp, xid, message) {
            Ok(replies) => out.replies = replies,
            Err(e) => out.replies.push(error(e)),
        }
        out
    }

    fn hello_from_peer(&mut self, header: &Header, bytes: &[u8]) -> Outcome {
        let mut out = Outcome::default();
        let versions = match Message::decode(bytes) {
            Ok((_, Message::Hello { versions })) => versions,
            // A HELLO of another version may not decode as ours: its header still says.
            _ if header.msg_type == OFPT_HELLO => None,
            _ => {
                out.replies
                    .push(hello_failed(header.xid, OFPHFC_EPERM, "expected HELLO"));
                out.close = true;
                return out;
            }
        };
        let common = match versions {
            Some(bitmap) => bitmap & VERSION_BIT != 0,
            None => header.version >= VERSION,
        };
        if common {
            self.negotiated = true;
        } else {
            out.replies.push(hello_failed(
                header.xid,
                OFPHFC_INCOMPATIBLE,
                "vxtund speaks OpenFlow 1.3 (0x04) only",
            ));
            out.close = true;
        }
        out
    }

    fn answer(
        &mut self,
        dp: &mut dyn Datapath,
        xid: u32,
        message: Message,
    ) -> Result<Vec<Vec<u8>>, OfError> {
        let one = |m: Message| Ok(vec![m.encode(xid)]);
        match message {
            Message::Hello { .. } | Message::EchoReply(_) => Ok(Vec::new()),
            Message::EchoRequest(data) => one(Message::EchoReply(data)),
            Message::Experimenter { .. } => {
                Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_EXPERIMENTER))
            }
            Message::FeaturesRequest => one(Message::FeaturesReply(SwitchFeatures {
                datapath_id: self.datapath_id,
                n_buffers: 0,
                n_tables: 1,
                auxiliary_id: 0,
                capabilities: OFPC_FLOW_STATS | OFPC_TABLE_STATS | OFPC_PORT_STATS,
            })),
            Message::GetConfigRequest => one(Message::GetConfigReply(self.config)),
            Message::SetConfig(config) => {
                if config.flags & OFPC_FRAG_MASK != OFPC_FRAG_NORMAL {
                    return Err(OfError::new(OFPET_SWITCH_CONFIG_FAILED, OFPSCFC_BAD_FLAGS));
                }
                self.config = config;
                Ok(Vec::new())
            }
            Message::BarrierRequest => one(Message::BarrierReply),
            Message::RoleRequest(role) => {
                if role.role > OFPCR_ROLE_SLAVE {
                    return Err(OfError::new(OFPET_ROLE_REQUEST_FAILED, OFPRRFC_BAD_ROLE));
                }
                if role.role != OFPCR_ROLE_NOCHANGE {
                    dp.request_role(self.id, role.role, role.generation_id)?;
                    self.role = role;
                }
                let current = Role {
                    role: self.role(dp),
                    generation_id: self.role.generation_id,
                };
                one(Message::RoleReply(current))
            }
            Message::GetAsyncRequest => one(Message::GetAsyncReply(self.async_config)),
            Message::SetAsync(config) => {
                self.async_config = config;
                Ok(Vec::new())
            }
            Message::FlowMod(fm) => {
                if self.role(dp) == OFPCR_ROLE_SLAVE {
                    return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_IS_SLAVE));
                }
                flow_mod(dp, &fm)?;
                Ok(Vec::new())
            }
            Message::PacketOut(po) => {
                if self.role(dp) == OFPCR_ROLE_SLAVE {
                    return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_IS_SLAVE));
                }
                packet_out(dp, po)?;
                Ok(Vec::new())
            }
            Message::MultipartRequest(request) => self.multipart(dp, xid, request),
            _ => Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE)),
        }
    }

    fn multipart(
        &self,
        dp: &mut dyn Datapath,
        xid: u32,
        request: MultipartRequest,
    ) -> Result<Vec<Vec<u8>>, OfError> {
        let body = match request.body {
            MultipartRequestBody::Desc => MultipartReplyBody::Desc {
                mfr_desc: "The vxtund developers".into(),
                hw_desc: "vxtund userspace VXLAN/GRE switch".into(),
                sw_desc: env!("CARGO_PKG_VERSION").into(),
                serial_num: "None".into(),
                dp_desc: dp.description(),
            },
            MultipartRequestBody::Flow(filter) => {
                let flows = selected_flows(dp, &filter)?;
                MultipartReplyBody::Flow(
                    flows
                        .iter()
                        .map(|e| convert::flow_stats(&e.flow, e.packets, e.bytes, e.age))
                        .collect(),
                )
            }
            MultipartRequestBody::Aggregate(filter) => {
                let flows = selected_flows(dp, &filter)?;
                MultipartReplyBody::Aggregate {
                    packet_count: flows.iter().map(|e| e.packets).sum(),
                    byte_count: flows.iter().map(|e| e.bytes).sum(),
                    flow_count: u32::try_from(flows.len()).unwrap_or(u32::MAX),
                }
            }
            MultipartRequestBody::Table => {
                let (lookups, matched) = dp.table_counts();
                MultipartReplyBody::Table(vec![TableStats {
                    table_id: 0,
                    active_count: u32::try_from(dp.flows().len()).unwrap_or(u32::MAX),
                    lookup_count: lookups,
                    matched_count: matched,
                }])
            }
            MultipartRequestBody::PortStats { port_no } => {
                let ports = dp.ports();
                let wanted: Vec<&PortInfo> = match port_no {
                    OFPP_ANY => ports.iter().collect(),
                    p => {
                        let p = convert::port_from_wire(p)
                            .ok_or(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_PORT))?;
                        let found: Vec<&PortInfo> = ports.iter().filter(|i| i.no == p).collect();
                        if found.is_empty() {
                            return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_PORT));
                        }
                        found
                    }
                };
                MultipartReplyBody::PortStats(wanted.into_iter().map(port_stats).collect())
            }
            MultipartRequestBody::PortDesc => {
                MultipartReplyBody::PortDesc(dp.ports().iter().map(port_desc).collect())
            }
            MultipartRequestBody::TableFeatures(set) if set.is_empty() => {
                MultipartReplyBody::TableFeatures(vec![table_features()])
            }
            MultipartRequestBody::TableFeatures(_) => {
                return Err(OfError::new(OFPET_TABLE_FEATURES_FAILED, OFPTFFC_EPERM))
            }
            _ => return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_MULTIPART)),
        };
        Ok(encode_multipart_reply(
            xid,
            &MultipartReply { flags: 0, body },
        ))
    }
}

/// Applies the batched ADDs as one edit. Plain ADDs cannot fail.
fn flush_adds(dp: &mut dyn Datapath, adds: &mut Vec<Flow>) {
    if !adds.is_empty() {
        let _ = dp.edit(FlowEdit::Add(std::mem::take(adds)));
    }
}

fn hello_failed(xid: u32, code: u16, why: &str) -> Vec<u8> {
    Message::Error {
        err_type: OFPET_HELLO_FAILED,
        code,
        data: why.as_bytes().to_vec(),
    }
    .encode(xid)
}

/// Applies a FLOW_MOD as a [`FlowEdit`].
fn flow_mod(dp: &mut dyn Datapath, fm: &FlowMod) -> Result<(), OfError> {
    let failed = |code| OfError::new(OFPET_FLOW_MOD_FAILED, code);
    if fm.buffer_id != OFP_NO_BUFFER {
        return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BUFFER_UNKNOWN));
    }
    let deleting = matches!(fm.command, OFPFC_DELETE | OFPFC_DELETE_STRICT);
    let table_ok = fm.table_id == 0 || (fm.table_id == OFPTT_ALL && fm.command != OFPFC_ADD);
    if !table_ok {
        return Err(failed(OFPFMFC_BAD_TABLE_ID));
    }
    let ports: Vec<PortNo> = dp.ports().iter().map(|p| p.no).collect();
    let exists = |p: PortNo| ports.contains(&p);
    let cookie = CookieFilter {
        cookie: fm.cookie,
        mask: fm.cookie_mask,
    };
    let strict = matches!(fm.command, OFPFC_MODIFY_STRICT | OFPFC_DELETE_STRICT);
    let edit = if deleting {
        let matches = convert::match_from_wire(&fm.match_)?;
        let selector = match strict {
            true => Selector::Strict(matches, fm.priority),
            false => Selector::Loose(matches),
        };
        let out_port = match fm.out_port {
            OFPP_ANY => None,
            p => Some(convert::port_from_wire(p).unwrap_or(PortNo(p))),
        };
        FlowEdit::Delete {
            selector,
            cookie,
            out_port,
        }
    } else {
        let flow = convert::flow_from_wire(fm, &exists)?;
        match fm.command {
            OFPFC_ADD => FlowEdit::Add(vec![flow]),
            OFPFC_MODIFY | OFPFC_MODIFY_STRICT => FlowEdit::Modify {
                selector: match strict {
                    true => Selector::Strict(flow.matches, flow.priority),
                    false => Selector::Loose(flow.matches),
                },
                cookie,
                new_cookie: Some(fm.cookie),
                reset_counts: flow.has_flag(Flow::RESET_COUNTS),
                actions: flow.actions,
            },
            _ => return Err(failed(OFPFMFC_BAD_COMMAND)),
        }
    };
    dp.edit(edit).map(drop).map_err(|e| match e {
        EditError::Overlap { .. } => failed(OFPFMFC_OVERLAP),
    })
}

/// Carries out a PACKET_OUT: the frame it carries (vxtund has no buffers), from `in_port`
/// (CONTROLLER, LOCAL or a port), out as its OUTPUT actions say; `TABLE` alone runs it
/// through the flow table.
fn packet_out(dp: &mut dyn Datapath, po: PacketOut) -> Result<(), OfError> {
    if po.buffer_id != OFP_NO_BUFFER {
        return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BUFFER_UNKNOWN));
    }
    let ports: Vec<PortNo> = dp.ports().iter().map(|p| p.no).collect();
    let in_port = match po.in_port {
        OFPP_CONTROLLER => PortNo(OFPP_CONTROLLER),
        p => convert::port_from_wire(p)
            .filter(|p| ports.contains(p))
            .ok_or(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_PORT))?,
    };
    let bad = |code| OfError::new(OFPET_BAD_ACTION, code);
    let table = po.actions.iter().any(|a| {
        matches!(
            a,
            Action::Output {
                port: OFPP_TABLE,
                ..
            }
        )
    });
    let actions = if table {
        if po.actions.len() != 1 {
            return Err(bad(OFPBAC_BAD_OUT_PORT));
        }
        None
    } else {
        let mut list = Vec::with_capacity(po.actions.len());
        for a in &po.actions {
            let action = convert::action_from_wire(a, &|p| ports.contains(&p))?;
            if matches!(action, flow::Action::Controller(_)) {
                return Err(bad(OFPBAC_BAD_OUT_PORT));
            }
            list.push(action);
        }
        Some(list)
    };
    if po.data.is_empty() {
        return Err(OfError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_PACKET));
    }
    dp.packet_out(in_port, po.data, actions);
    Ok(())
}

/// The flows a FLOW or AGGREGATE request selects: by table, match (loosely), cookie and
/// out_port, as OpenFlow says.
fn selected_flows(dp: &dyn Datapath, filter: &FlowStatsRequest) -> Result<Vec<FlowEntry>, OfError> {
    if filter.table_id != 0 && filter.table_id != OFPTT_ALL {
        return Ok(Vec::new());
    }
    let pattern = convert::match_from_wire(&filter.match_)?;
    let cookie = CookieFilter {
        cookie: filter.cookie,
        mask: filter.cookie_mask,
    };
    let out_port = match filter.out_port {
        OFPP_ANY => None,
        p => Some(convert::port_from_wire(p).unwrap_or(PortNo(p))),
    };
    Ok(dp
        .flows()
        .into_iter()
        .filter(|e| {
            pattern.covers(&e.flow.matches)
                && cookie.selects(&e.flow)
                && out_port.is_none_or(|p| e.flow.outputs_to(p))
        })
        .collect())
}

fn port_stats(p: &PortInfo) -> PortStats {
    PortStats {
        port_no: p.no.0,
        rx_packets: p.stats.rx_packets,
        tx_packets: p.stats.tx_packets,
        rx_bytes: p.stats.rx_bytes,
        tx_bytes: p.stats.tx_bytes,
        rx_dropped: 0,
        tx_dropped: 0,
        rx_errors: 0,
        tx_errors: p.stats.tx_errors,
        rx_frame_err: 0,
        rx_over_err: 0,
        rx_crc_err: 0,
        collisions: 0,
        duration_sec: u32::try_from(p.age.as_secs()).unwrap_or(u32::MAX),
        duration_nsec: p.age.subsec_nanos(),
    }
}

fn port_desc(p: &PortInfo) -> PortDesc {
    PortDesc {
        port_no: p.no.0,
        hw_addr: p.hw_addr,
        name: p.name.clone(),
        config: 0,
        state: OFPPS_LIVE,
        curr: OFPPF_10GB_FD | OFPPF_OTHER,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    }
}

/// The one table: what it matches, the one instruction and action it takes.
fn table_features() -> TableFeatures {
    // MATCH lists a maskable field with its mask bit; WILDCARDS lists fields without it.
    let header = |field: u8, masked: bool| {
        let len = basic_field(field).map_or(0, |(len, _)| len) * if masked { 2 } else { 1 };
        oxm_header(
            OFPXMC_OPENFLOW_BASIC,
            field,
            masked,
            u8::try_from(len).unwrap_or(0),
        )
    };
    let fields: Vec<u32> = SUPPORTED_FIELDS
        .iter()
        .map(|&(field, maskable)| header(field, maskable))
        .collect();
    let wildcards: Vec<u32> = SUPPORTED_FIELDS
        .iter()
        .map(|&(field, _)| header(field, false))
        .collect();
    let instructions = vec![OFPIT_APPLY_ACTIONS];
    let actions = vec![OFPAT_OUTPUT];
    TableFeatures {
        table_id: 0,
        name: "classifier".into(),
        metadata_match: 0,
        metadata_write: 0,
        config: 0,
        max_entries: MAX_ENTRIES,
        properties: vec![
            TableFeatureProp::Instructions(instructions.clone()),
            TableFeatureProp::InstructionsMiss(instructions),
            TableFeatureProp::NextTables(Vec::new()),
            TableFeatureProp::NextTablesMiss(Vec::new()),
            TableFeatureProp::WriteActions(Vec::new()),
            TableFeatureProp::WriteActionsMiss(Vec::new()),
            TableFeatureProp::ApplyActions(actions.clone()),
            TableFeatureProp::ApplyActionsMiss(actions),
            TableFeatureProp::Match(fields),
            TableFeatureProp::Wildcards(wildcards),
            TableFeatureProp::WriteSetfield(Vec::new()),
            TableFeatureProp::WriteSetfieldMiss(Vec::new()),
            TableFeatureProp::ApplySetfield(Vec::new()),
            TableFeatureProp::ApplySetfieldMiss(Vec::new()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::edit;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;

    /// A switch of three ports whose table is a list, counting the edits it is asked for.
    #[derive(Default)]
    struct TestDp {
        flows: Vec<Flow>,
        edits: usize,
        sent: Vec<(PortNo, Vec<u8>, Option<Vec<flow::Action>>)>,
        roles: RoleArbiter,
    }

    impl Datapath for TestDp {
        fn description(&self) -> String {
            "vxt0 (test)".into()
        }
        fn ports(&self) -> Vec<PortInfo> {
            ["vxt0", "tun_kl", "tun_km"]
                .iter()
                .zip(1..)
                .map(|(name, no)| PortInfo {
                    no: PortNo(no),
                    name: (*name).into(),
                    hw_addr: [2, 0, 0, 0, 0, no as u8],
                    stats: SwitchPortStats {
                        rx_packets: u64::from(no) * 10,
                        ..Default::default()
                    },
                    age: Duration::from_secs(5),
                })
                .collect()
        }
        fn flows(&self) -> Vec<FlowEntry> {
            self.flows
                .iter()
                .map(|f| FlowEntry {
                    flow: f.clone(),
                    packets: 1,
                    bytes: 100,
                    age: Duration::from_millis(1500),
                })
                .collect()
        }
        fn table_counts(&self) -> (u64, u64) {
            (7, 5)
        }
        fn edit(&mut self, e: FlowEdit) -> Result<Edited, EditError> {
            let edited = edit::apply(&self.flows, &e)?;
            self.flows = edited.flows.clone();
            self.edits += 1;
            Ok(edited)
        }
        fn packet_out(
            &mut self,
            in_port: PortNo,
            frame: Vec<u8>,
            actions: Option<Vec<flow::Action>>,
        ) {
            self.sent.push((in_port, frame, actions));
        }
        fn request_role(
            &mut self,
            session: u64,
            role: u32,
            generation: u64,
        ) -> Result<(), OfError> {
            self.roles.request(session, role, generation)
        }
        fn master(&self) -> Option<u64> {
            self.roles.master()
        }
    }

    fn flow(text: &str) -> Flow {
        parse_flow(text, &HubPorts).unwrap()
    }

    fn hello13() -> Vec<u8> {
        Message::Hello {
            versions: Some(VERSION_BIT),
        }
        .encode(1)
    }

    fn session(dp: &mut TestDp) -> Agent {
        let mut agent = Agent::new(1, 0x42);
        let out = agent.handle(dp, &hello13());
        assert!(out.replies.is_empty() && !out.close && agent.negotiated());
        agent
    }

    fn decode_all(out: &Outcome) -> Vec<(u32, Message)> {
        out.replies
            .iter()
            .map(|r| Message::decode(r).unwrap())
            .collect()
    }

    fn flow_mod(command: u8, f: &Flow) -> FlowMod {
        FlowMod {
            cookie: f.cookie,
            cookie_mask: 0,
            table_id: if command == OFPFC_ADD { 0 } else { OFPTT_ALL },
            command,
            idle_timeout: f.idle_timeout,
            hard_timeout: f.hard_timeout,
            priority: f.priority,
            buffer_id: OFP_NO_BUFFER,
            out_port: OFPP_ANY,
            out_group: OFPG_ANY,
            flags: f.flags,
            match_: convert::match_to_wire(&f.matches),
            instructions: convert::actions_to_wire(&f.actions),
        }
    }

    #[test]
    fn hello_settles_on_1_3_or_fails_and_closes() {
        let mut dp = TestDp::default();
        let mut agent = Agent::new(1, 1);
        let ours = Message::decode(&agent.hello()).unwrap().1;
        assert_eq!(
            ours,
            Message::Hello {
                versions: Some(1 << 4)
            }
        );
        // A bitmap of 1.0 and 1.5 only.
        let only_others = Message::Hello {
            versions: Some((1 << 1) | (1 << 6)),
        }
        .encode(9);
        let out = agent.handle(&mut dp, &only_others);
        assert!(out.close && !agent.negotiated());
        match decode_all(&out).as_slice() {
            [(9, Message::Error { err_type, code, .. })] => {
                assert_eq!(
                    (*err_type, *code),
                    (OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE)
                )
            }
            other => panic!("{other:?}"),
        }
        // No bitmap: the header's version decides.
        let mut v1 = hello13();
        v1.truncate(8);
        v1[0] = 1;
        v1[3] = 8;
        let out = Agent::new(1, 1).handle(&mut dp, &v1);
        assert!(out.close, "1.0 only");
        let mut v4 = v1.clone();
        v4[0] = 4;
        let mut agent = Agent::new(1, 1);
        assert!(!agent.handle(&mut dp, &v4).close && agent.negotiated());
        // Anything before HELLO.
        let out = Agent::new(1, 1).handle(&mut dp, &Message::FeaturesRequest.encode(3));
        assert!(out.close && out.replies.len() == 1);
    }

    #[test]
    fn unknown_and_refused_messages_get_errors_with_xid_and_the_request() {
        let mut dp = TestDp::default();
        let mut agent = session(&mut dp);
        let mut unknown = Message::BarrierRequest.encode(77);
        unknown[1] = 99;
        let out = agent.handle(&mut dp, &unknown);
        assert!(!out.close);
        assert_eq!(
            decode_all(&out),
            vec![(
                77,
                Message::Error {
                    err_type: OFPET_BAD_REQUEST,
                    code: OFPBRC_BAD_TYPE,
                    data: unknown.clone()
                }
            )]
        );
        // A GROUP_MOD: vxtund has no groups; the error carries the first 64 bytes.
        let mut group_mod = Message::EchoRequest(vec![0; 100]).encode(78);
        group_mod[1] = OFPT_GROUP_MOD;
        let out = agent.handle(&mut dp, &group_mod);
        match decode_all(&out).as_slice() {
            [(78, Message::Error { data, .. })] => assert_eq!(data.len(), ERROR_DATA_LEN),
            other => panic!("{other:?}"),
        }
        let echo = agent.handle(&mut dp, &Message::EchoRequest(b"hi".to_vec()).encode(5));
        assert_eq!(
            decode_all(&echo),
            vec![(5, Message::EchoReply(b"hi".to_vec()))]
        );
    }

    #[test]
    fn a_refused_flow_mod_errs_before_the_barrier_and_changes_nothing() {
        let mut dp = TestDp {
            flows: vec![flow("ip,nw_dst=10.0.0.0/8,actions=output:2")],
            ..Default::default()
        };
        let mut agent = session(&mut dp);
        let mut fm = flow_mod(OFPFC_ADD, &flow("actions=output:2"));
        fm.instructions = vec![Instruction::ApplyActions(vec![Action::Output {
            port: OFPP_TABLE,
            max_len: 128,
        }])];
        let batch = vec![
            Message::FlowMod(fm).encode(10),
            Message::BarrierRequest.encode(11),
        ];
        let out = agent.handle_batch(&mut dp, &batch);
        let replies = decode_all(&out);
        assert!(
            matches!(
                replies.as_slice(),
                [
                    (
                        10,
                        Message::Error {
                            err_type: OFPET_BAD_ACTION,
                            code: OFPBAC_BAD_OUT_PORT,
                            ..
                        }
                    ),
                    (11, Message::BarrierReply)
                ]
            ),
            "{replies:?}"
        );
        assert_eq!(
            dp.flows,
            vec![flow("ip,nw_dst=10.0.0.0/8,actions=output:2")]
        );
        assert_eq!(dp.edits, 0);
    }

    #[test]
    fn flow_mods_edit_the_table_as_ovs_ofctl_means_them() {
        let mut dp = TestDp::default();
        let mut agent = session(&mut dp);
        let a =
            flow("cookie=0x5,idle_timeout=10,send_flow_rem,ip,nw_dst=10.0.0.0/8,actions=output:2");
        let b = flow("priority=7,tcp,tp_dst=80,actions=LOCAL");
        let adds: Vec<Vec<u8>> = [&a, &b]
            .iter()
            .map(|f| Message::FlowMod(flow_mod(OFPFC_ADD, f)).encode(1))
            .collect();
        assert!(agent.handle_batch(&mut dp, &adds).replies.is_empty());
        assert_eq!(dp.flows, vec![a.clone(), b.clone()], "stored exactly");
        assert_eq!(dp.edits, 1, "a burst of ADDs is one edit");
        // Delete by cookie: only `a` has cookie 5.
        let mut del = flow_mod(OFPFC_DELETE, &flow("actions=drop"));
        del.cookie = 5;
        del.cookie_mask = u64::MAX;
        agent.handle(&mut dp, &Message::FlowMod(del).encode(2));
        assert_eq!(dp.flows, vec![b.clone()]);
        // A strict modify of another priority changes nothing; of the same, the actions.
        let mut m = flow("priority=8,tcp,tp_dst=80,actions=output:3");
        agent.handle(
            &mut dp,
            &Message::FlowMod(flow_mod(OFPFC_MODIFY_STRICT, &m)).encode(3),
        );
        assert_eq!(dp.flows, vec![b.clone()]);
        m.priority = 7;
        agent.handle(
            &mut dp,
            &Message::FlowMod(flow_mod(OFPFC_MODIFY_STRICT, &m)).encode(4),
        );
        assert_eq!(dp.flows[0].actions, m.actions);
        // A delete with out_port only takes flows that output there.
        let mut del = flow_mod(OFPFC_DELETE, &flow("actions=drop"));
        del.out_port = 2;
        agent.handle(&mut dp, &Message::FlowMod(del.clone()).encode(5));
        assert_eq!(dp.flows.len(), 1);
        del.out_port = 3;
        agent.handle(&mut dp, &Message::FlowMod(del).encode(6));
        assert!(dp.flows.is_empty());
    }

    #[test]
    fn a_slave_may_read_but_not_edit() {
        let mut dp = TestDp::default();
        let mut agent = session(&mut dp);
        let role = Message::RoleRequest(Role {
            role: OFPCR_ROLE_SLAVE,
            generation_id: 3,
        });
        let out = agent.handle(&mut dp, &role.encode(1));
        assert!(
            matches!(decode_all(&out).as_slice(), [(1, Message::RoleReply(r))] if r.role == OFPCR_ROLE_SLAVE)
        );
        let add = Message::FlowMod(flow_mod(OFPFC_ADD, &flow("actions=drop"))).encode(2);
        let out = agent.handle_batch(&mut dp, &[add]);
        assert!(matches!(
            decode_all(&out).as_slice(),
            [(
                2,
                Message::Error {
                    err_type: OFPET_BAD_REQUEST,
                    code: OFPBRC_IS_SLAVE,
                    ..
                }
            )]
        ));
        assert!(dp.flows.is_empty());
    }

    #[test]
    fn multipart_answers_describe_the_switch() {
        let mut dp = TestDp {
            flows: (0..20_000u32)
                .map(|i| {
                    flow(&format!(
                        "ip,nw_dst=10.{}.{}.0/24,actions=output:2",
                        i >> 8,
                        i & 0xff
                    ))
                })
                .collect(),
            ..Default::default()
        };
        let mut agent = session(&mut dp);
        let ask = |agent: &mut Agent, dp: &mut TestDp, body| {
            let out = agent.handle(
                dp,
                &Message::MultipartRequest(MultipartRequest { flags: 0, body }).encode(9),
            );
            decode_all(&out)
        };
        let filter = FlowStatsRequest {
            table_id: OFPTT_ALL,
            out_port: OFPP_ANY,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Vec::new(),
        };
        let parts = ask(
            &mut agent,
            &mut dp,
            MultipartRequestBody::Flow(filter.clone()),
        );
        assert!(parts.len() > 1, "a long reply comes in parts");
        let mut n = 0;
        for (i, (xid, m)) in parts.iter().enumerate() {
            let Message::MultipartReply(MultipartReply {
                flags,
                body: MultipartReplyBody::Flow(f),
            }) = m
            else {
                panic!("{m:?}");
            };
            assert_eq!(*xid, 9);
            assert_eq!(
                *flags & 1 == 1,
                i + 1 < parts.len(),
                "REPLY_MORE on all but the last"
            );
            n += f.len();
        }
        assert_eq!(n, 20_000);
        let agg = ask(&mut agent, &mut dp, MultipartRequestBody::Aggregate(filter));
        assert!(
            matches!(
                agg.as_slice(),
                [(
                    _,
                    Message::MultipartReply(MultipartReply {
                        body: MultipartReplyBody::Aggregate {
                            packet_count: 20_000,
                            byte_count: 2_000_000,
                            flow_count: 20_000
                        },
                        ..
                    })
                )]
            ),
            "{agg:?}"
        );
        let ports = ask(
            &mut agent,
            &mut dp,
            MultipartRequestBody::PortStats { port_no: 3 },
        );
        assert!(
            matches!(
                ports.as_slice(),
                [(_, Message::MultipartReply(MultipartReply { body: MultipartReplyBody::PortStats(p), .. }))]
                    if p.len() == 1 && p[0].port_no == 3 && p[0].rx_packets == 30
            ),
            "{ports:?}"
        );
        let unknown = ask(
            &mut agent,
            &mut dp,
            MultipartRequestBody::PortStats { port_no: 9 },
        );
        assert!(matches!(
            unknown.as_slice(),
            [(
                _,
                Message::Error {
                    err_type: OFPET_BAD_REQUEST,
                    code: OFPBRC_BAD_PORT,
                    ..
                }
            )]
        ));
        let features = ask(
            &mut agent,
            &mut dp,
            MultipartRequestBody::TableFeatures(Vec::new()),
        );
        let [(
            _,
            Message::MultipartReply(MultipartReply {
                body: MultipartReplyBody::TableFeatures(t),
                ..
            }),
        )] = features.as_slice()
        else {
            panic!("{features:?}");
        };
        assert_eq!(
            t[0].properties.len(),
            14,
            "every property ovs-ofctl needs, and the misses"
        );
    }

    #[test]
    fn the_master_election_refuses_stale_generations_and_demotes_the_old_master() {
        let mut roles = RoleArbiter::default();
        roles.request(1, OFPCR_ROLE_MASTER, 5).unwrap();
        assert_eq!(roles.master(), Some(1));
        roles.request(2, OFPCR_ROLE_MASTER, 6).unwrap();
        assert_eq!(roles.master(), Some(2), "the new master demotes the old");
        assert_eq!(
            roles.request(1, OFPCR_ROLE_MASTER, 4),
            Err(OfError::new(OFPET_ROLE_REQUEST_FAILED, OFPRRFC_STALE))
        );
        assert_eq!(roles.master(), Some(2));
        // Generation ids wrap: 0 comes after u64::MAX - 1.
        roles
            .request(3, OFPCR_ROLE_SLAVE, u64::MAX - 1)
            .unwrap_err();
        let mut wrap = RoleArbiter::default();
        wrap.request(1, OFPCR_ROLE_MASTER, u64::MAX - 1).unwrap();
        wrap.request(2, OFPCR_ROLE_MASTER, 0).unwrap();
        roles.forget(2);
        assert_eq!(roles.master(), None);

        // Two sessions: the demoted master is a slave and may no longer edit.
        let mut dp = TestDp::default();
        let mut a = session(&mut dp);
        let mut b = Agent::new(2, 0x42);
        b.handle(&mut dp, &hello13());
        let master = |generation_id| {
            Message::RoleRequest(Role {
                role: OFPCR_ROLE_MASTER,
                generation_id,
            })
        };
        a.handle(&mut dp, &master(1).encode(1));
        b.handle(&mut dp, &master(2).encode(1));
        let add = Message::FlowMod(flow_mod(OFPFC_ADD, &flow("actions=drop"))).encode(3);
        assert!(
            !a.handle(&mut dp, &add).replies.is_empty(),
            "a is a slave now"
        );
        assert!(b.handle(&mut dp, &add).replies.is_empty(), "b is master");
        assert_eq!(dp.flows.len(), 1);
    }

    #[test]
    fn asynchronous_messages_follow_the_role_the_async_config_and_the_flow_flags() {
        let mut dp = TestDp::default();
        let mut agent = session(&mut dp);
        let packet_in = AsyncEvent::PacketIn {
            meta: PacketInMeta {
                in_port: PortNo(2),
                reason: PacketInReason::NoMatch,
                cookie: 9,
                max_len: 128,
            },
            frame: vec![0xab; 300],
        };
        let sent = agent.async_message(&dp, &packet_in).unwrap();
        match Message::decode(&sent).unwrap().1 {
            Message::PacketIn(p) => {
                assert_eq!(p.buffer_id, OFP_NO_BUFFER);
                assert_eq!(p.data.len(), 300, "the whole frame: no buffers");
                assert_eq!((p.reason, p.cookie), (OFPR_NO_MATCH, 9));
                assert_eq!(p.match_, vec![Oxm::in_port(2)]);
            }
            other => panic!("{other:?}"),
        }
        let removed = |flags| AsyncEvent::FlowRemoved {
            flow: Flow {
                flags,
                ..flow("idle_timeout=5,ip,actions=drop")
            },
            packets: 3,
            bytes: 300,
            age: Duration::from_secs(8),
            reason: OFPRR_IDLE_TIMEOUT,
        };
        assert!(
            agent.async_message(&dp, &removed(0)).is_none(),
            "no send_flow_rem"
        );
        let sent = agent
            .async_message(&dp, &removed(Flow::SEND_FLOW_REM))
            .unwrap();
        assert!(matches!(
            Message::decode(&sent).unwrap().1,
            Message::FlowRemoved(FlowRemoved {
                reason: OFPRR_IDLE_TIMEOUT,
                packet_count: 3,
                idle_timeout: 5,
                ..
            })
        ));
        // A slave gets no packet-ins by default; SET_ASYNC can ask for them.
        let slave = Message::RoleRequest(Role {
            role: OFPCR_ROLE_SLAVE,
            generation_id: 1,
        });
        agent.handle(&mut dp, &slave.encode(1));
        assert!(agent.async_message(&dp, &packet_in).is_none());
        let wants_all = Message::SetAsync(AsyncConfig {
            packet_in_mask: [0b11, 0b11],
            port_status_mask: [0b111, 0b111],
            flow_removed_mask: [0b1111, 0b1111],
        });
        agent.handle(&mut dp, &wants_all.encode(2));
        assert!(agent.async_message(&dp, &packet_in).is_some());
        // A service connection (ovs-ofctl) gets nothing until it sets a miss_send_len.
        let mut service = Agent::new(5, 1).service();
        service.handle(&mut dp, &hello13());
        assert!(service.async_message(&dp, &packet_in).is_none());
        let config = Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: 128,
        });
        service.handle(&mut dp, &config.encode(3));
        assert!(service.async_message(&dp, &packet_in).is_some());
    }

    #[test]
    fn packet_outs_reach_the_datapath_with_their_actions() {
        let mut dp = TestDp::default();
        let mut agent = session(&mut dp);
        let out = |in_port, actions: Vec<Action>| {
            Message::PacketOut(PacketOut {
                buffer_id: OFP_NO_BUFFER,
                in_port,
                actions,
                data: vec![1; 60],
            })
            .encode(7)
        };
        let output = |port| Action::Output { port, max_len: 0 };
        assert!(agent
            .handle(
                &mut dp,
                &out(OFPP_CONTROLLER, vec![output(OFPP_FLOOD), output(2)])
            )
            .replies
            .is_empty());
        assert!(agent
            .handle(&mut dp, &out(2, vec![output(OFPP_TABLE)]))
            .replies
            .is_empty());
        assert_eq!(
            dp.sent
                .iter()
                .map(|(p, _, a)| (*p, a.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    PortNo(OFPP_CONTROLLER),
                    Some(vec![flow::Action::Flood, flow::Action::Output(PortNo(2))])
                ),
                (PortNo(2), None),
            ]
        );
        for (bad, code) in [
            (
                out(9, vec![output(2)]),
                (OFPET_BAD_REQUEST, OFPBRC_BAD_PORT),
            ),
            (
                out(OFPP_CONTROLLER, vec![output(OFPP_TABLE), output(2)]),
                (OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT),
            ),
            (
                out(OFPP_CONTROLLER, vec![output(OFPP_CONTROLLER)]),
                (OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT),
            ),
        ] {
            match decode_all(&agent.handle(&mut dp, &bad)).as_slice() {
                [(
                    7,
                    Message::Error {
                        err_type, code: c, ..
                    },
                )] => assert_eq!((*err_type, *c), code),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(dp.sent.len(), 2, "refused ones sent nothing");
    }
}
