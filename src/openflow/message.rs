//! OpenFlow 1.3 messages as one enum, with the entry points [`Message::decode`] and
//! [`Message::encode`], and the bodies of the fixed-layout messages.

use super::action::{decode_actions, decode_instructions, encode_actions, encode_instructions};
use super::action::{Action, Instruction};
use super::buf::{len_u16, Put, Reader};
use super::multipart::{decode_port, encode_port, MultipartReply, MultipartRequest, PortDesc};
use super::oxm::{decode_match, encode_match, Oxm};
use super::*;

/// HELLO element type: the bitmap of supported versions.
pub const OFPHET_VERSIONBITMAP: u16 = 1;
/// Length of a HELLO element's type and length fields.
const HELLO_ELEMENT_HEADER_LEN: usize = 4;
/// Length of FEATURES_REPLY.
const FEATURES_REPLY_LEN: usize = 32;
/// Length of GET_CONFIG_REPLY and SET_CONFIG.
const SWITCH_CONFIG_LEN: usize = 12;
/// Length of PORT_STATUS.
const PORT_STATUS_LEN: usize = 80;
/// Length of ROLE_REQUEST and ROLE_REPLY.
const ROLE_LEN: usize = 24;
/// Length of GET_ASYNC_REPLY and SET_ASYNC.
const ASYNC_CONFIG_LEN: usize = 32;
/// Padding between PACKET_IN's match and its data.
const PACKET_IN_PAD: usize = 2;

/// One OpenFlow 1.3 message (the header's xid travels beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OFPT_HELLO with the version bitmap element (bit n = version n, versions 0-31), or
    /// `None` when the peer sent no bitmap.
    Hello {
        /// The first 32 bits of the version bitmap.
        versions: Option<u32>,
    },
    /// OFPT_ERROR.
    Error {
        /// `OFPET_*`.
        err_type: u16,
        /// The code within the type (for `OFPET_EXPERIMENTER`, the exp_type; `data` then starts
        /// with the experimenter id).
        code: u16,
        /// At least the first 64 bytes of the failed request, or an ASCII text for
        /// HELLO_FAILED.
        data: Vec<u8>,
    },
    /// OFPT_ECHO_REQUEST with its arbitrary data.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY with the request's data.
    EchoReply(Vec<u8>),
    /// OFPT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined type.
        exp_type: u32,
        /// The rest.
        data: Vec<u8>,
    },
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(SwitchFeatures),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN.
    PacketIn(PacketIn),
    /// OFPT_FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// OFPT_PORT_STATUS.
    PortStatus {
        /// `OFPPR_*`.
        reason: u8,
        /// The port as it now is.
        port: PortDesc,
    },
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod),
    /// OFPT_MULTIPART_REQUEST.
    MultipartRequest(MultipartRequest),
    /// OFPT_MULTIPART_REPLY.
    MultipartReply(MultipartReply),
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// OFPT_ROLE_REQUEST.
    RoleRequest(Role),
    /// OFPT_ROLE_REPLY.
    RoleReply(Role),
    /// OFPT_GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// OFPT_GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// OFPT_SET_ASYNC.
    SetAsync(AsyncConfig),
    /// Any other type (GROUP_MOD, PORT_MOD, TABLE_MOD, QUEUE_GET_CONFIG_*, METER_MOD, or
    /// unassigned): the caller answers BAD_REQUEST/BAD_TYPE. Encodes as a bare header.
    Unknown {
        /// The `ofp_header.type`.
        msg_type: u8,
    },
}

/// The body of FEATURES_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchFeatures {
    /// Datapath unique id: the low 48 bits are a MAC address.
    pub datapath_id: u64,
    /// Packets the switch can buffer at once (0: none).
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// Which auxiliary connection this is (0: the main one).
    pub auxiliary_id: u8,
    /// `OFPC_*` bits.
    pub capabilities: u32,
}

/// The body of GET_CONFIG_REPLY and SET_CONFIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*`.
    pub flags: u16,
    /// Bytes of a table-miss packet to send to the controller.
    pub miss_send_len: u16,
}

/// The body of ROLE_REQUEST and ROLE_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// `OFPCR_ROLE_*`.
    pub role: u32,
    /// Master election generation id.
    pub generation_id: u64,
}

/// The body of GET_ASYNC_REPLY and SET_ASYNC: which asynchronous messages each role
/// receives (index 0: master or equal, 1: slave), one bit per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncConfig {
    /// PACKET_IN reasons (`1 << OFPR_*`).
    pub packet_in_mask: [u32; 2],
    /// PORT_STATUS reasons (`1 << OFPPR_*`).
    pub port_status_mask: [u32; 2],
    /// FLOW_REMOVED reasons (`1 << OFPRR_*`).
    pub flow_removed_mask: [u32; 2],
}

/// The body of PACKET_IN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// Where the packet is buffered, or `OFP_NO_BUFFER`.
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// `OFPR_*`.
    pub reason: u8,
    /// The table that was looked up.
    pub table_id: u8,
    /// The cookie of the flow entry that sent it.
    pub cookie: u64,
    /// The packet's pipeline fields (IN_PORT at least).
    pub match_: Vec<Oxm>,
    /// The frame (all of it when not buffered).
    pub data: Vec<u8>,
}

/// The body of FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    /// The flow's cookie.
    pub cookie: u64,
    /// Its priority.
    pub priority: u16,
    /// `OFPRR_*`.
    pub reason: u8,
    /// Its table.
    pub table_id: u8,
    /// Seconds it was alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Its idle timeout.
    pub idle_timeout: u16,
    /// Its hard timeout.
    pub hard_timeout: u16,
    /// Packets it matched.
    pub packet_count: u64,
    /// Bytes it matched.
    pub byte_count: u64,
    /// Its match.
    pub match_: Vec<Oxm>,
}

/// The body of PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// A buffered packet, or `OFP_NO_BUFFER` with the frame in `data`.
    pub buffer_id: u32,
    /// The ingress port the actions see (`OFPP_CONTROLLER` if none).
    pub in_port: u32,
    /// What to do with the packet.
    pub actions: Vec<Action>,
    /// The frame.
    pub data: Vec<u8>,
}

/// The body of FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod {
    /// Opaque controller-issued identifier.
    pub cookie: u64,
    /// With MODIFY and DELETE: the cookie bits that must match (0: any).
    pub cookie_mask: u64,
    /// The table, or `OFPTT_ALL` for DELETE.
    pub table_id: u8,
    /// `OFPFC_*`.
    pub command: u8,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// A buffered packet to apply the flow to, or `OFP_NO_BUFFER`.
    pub buffer_id: u32,
    /// DELETE: only flows that output to this port, or `OFPP_ANY`.
    pub out_port: u32,
    /// DELETE: only flows that output to this group, or `OFPG_ANY`.
    pub out_group: u32,
    /// `OFPFF_*`.
    pub flags: u16,
    /// The match.
    pub match_: Vec<Oxm>,
    /// The instructions (none: drop).
    pub instructions: Vec<Instruction>,
}

impl Message {
    /// Decodes one whole message (header included, `bytes.len() == header.length`); returns its
    /// xid and the message. A HELLO is accepted at any version (negotiation needs it); every
    /// other message must be version 1.3.
    pub fn decode(bytes: &[u8]) -> Result<(u32, Message), DecodeError> {
        let header = Header::parse(bytes).ok_or_else(|| {
            DecodeError::bad_len(format!("message of {} bytes has no header", bytes.len()))
        })?;
        if usize::from(header.length) != bytes.len() {
            return Err(DecodeError::bad_len(format!(
                "header length {} but {} bytes",
                header.length,
                bytes.len()
            )));
        }
        if header.version != VERSION && header.msg_type != OFPT_HELLO {
            return Err(DecodeError::new(
                OFPET_BAD_REQUEST,
                OFPBRC_BAD_VERSION,
                format!("version {:#04x}, not {VERSION:#04x}", header.version),
            ));
        }
        let body = &bytes[HEADER_LEN..];
        let mut r = Reader::new(body, OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, "message");
        let exact = |want: usize| {
            if bytes.len() == want {
                Ok(())
            } else {
                Err(DecodeError::bad_len(format!(
                    "message type {} of {} bytes, not {want}",
                    header.msg_type,
                    bytes.len()
                )))
            }
        };
        let message = match header.msg_type {
            OFPT_HELLO => Message::Hello {
                versions: decode_hello(body),
            },
            OFPT_ERROR => Message::Error {
                err_type: r.u16()?,
                code: r.u16()?,
                data: r.rest().to_vec(),
            },
            OFPT_ECHO_REQUEST => Message::EchoRequest(body.to_vec()),
            OFPT_ECHO_REPLY => Message::EchoReply(body.to_vec()),
            OFPT_EXPERIMENTER => Message::Experimenter {
                experimenter: r.u32()?,
                exp_type: r.u32()?,
                data: r.rest().to_vec(),
            },
            OFPT_FEATURES_REQUEST => exact(HEADER_LEN).map(|_| Message::FeaturesRequest)?,
            OFPT_FEATURES_REPLY => {
                exact(FEATURES_REPLY_LEN)?;
                let datapath_id = r.u64()?;
                let n_buffers = r.u32()?;
                let n_tables = r.u8()?;
                let auxiliary_id = r.u8()?;
                r.skip(2)?;
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: r.u32()?,
                })
            }
            OFPT_GET_CONFIG_REQUEST => exact(HEADER_LEN).map(|_| Message::GetConfigRequest)?,
            OFPT_GET_CONFIG_REPLY | OFPT_SET_CONFIG => {
                exact(SWITCH_CONFIG_LEN)?;
                let config = SwitchConfig {
                    flags: r.u16()?,
                    miss_send_len: r.u16()?,
                };
                if header.msg_type == OFPT_SET_CONFIG {
                    Message::SetConfig(config)
                } else {
                    Message::GetConfigReply(config)
                }
            }
            OFPT_PACKET_IN => {
                let buffer_id = r.u32()?;
                let total_len = r.u16()?;
                let reason = r.u8()?;
                let table_id = r.u8()?;
                let cookie = r.u64()?;
                let (match_, used) = decode_match(r.peek_rest())?;
                r.skip(used)?;
                r.skip(PACKET_IN_PAD)?;
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    match_,
                    data: r.rest().to_vec(),
                })
            }
            OFPT_FLOW_REMOVED => {
                let cookie = r.u64()?;
                let priority = r.u16()?;
                let reason = r.u8()?;
                let table_id = r.u8()?;
                let duration_sec = r.u32()?;
                let duration_nsec = r.u32()?;
                let idle_timeout = r.u16()?;
                let hard_timeout = r.u16()?;
                let packet_count = r.u64()?;
                let byte_count = r.u64()?;
                let (match_, _) = decode_match(r.peek_rest())?;
                Message::FlowRemoved(FlowRemoved {
                    cookie,
                    priority,
                    reason,
                    table_id,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    hard_timeout,
                    packet_count,
                    byte_count,
                    match_,
                })
            }
            OFPT_PORT_STATUS => {
                exact(PORT_STATUS_LEN)?;
                let reason = r.u8()?;
                r.skip(7)?;
                Message::PortStatus {
                    reason,
                    port: decode_port(&mut r)?,
                }
            }
            OFPT_PACKET_OUT => {
                let buffer_id = r.u32()?;
                let in_port = r.u32()?;
                let actions_len = usize::from(r.u16()?);
                r.skip(6)?;
                let actions = decode_actions(r.bytes(actions_len)?)?;
                Message::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data: r.rest().to_vec(),
                })
            }
            OFPT_FLOW_MOD => Message::FlowMod(decode_flow_mod(&mut r)?),
            OFPT_MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::decode(body)?),
            OFPT_MULTIPART_REPLY => Message::MultipartReply(MultipartReply::decode(body)?),
            OFPT_BARRIER_REQUEST => exact(HEADER_LEN).map(|_| Message::BarrierRequest)?,
            OFPT_BARRIER_REPLY => exact(HEADER_LEN).map(|_| Message::BarrierReply)?,
            OFPT_ROLE_REQUEST | OFPT_ROLE_REPLY => {
                exact(ROLE_LEN)?;
                let role = r.u32()?;
                r.skip(4)?;
                let role = Role {
                    role,
                    generation_id: r.u64()?,
                };
                if header.msg_type == OFPT_ROLE_REQUEST {
                    Message::RoleRequest(role)
                } else {
                    Message::RoleReply(role)
                }
            }
            OFPT_GET_ASYNC_REQUEST => exact(HEADER_LEN).map(|_| Message::GetAsyncRequest)?,
            OFPT_GET_ASYNC_REPLY | OFPT_SET_ASYNC => {
                exact(ASYNC_CONFIG_LEN)?;
                let mut pair = || -> Result<[u32; 2], DecodeError> { Ok([r.u32()?, r.u32()?]) };
                let config = AsyncConfig {
                    packet_in_mask: pair()?,
                    port_status_mask: pair()?,
                    flow_removed_mask: pair()?,
                };
                if header.msg_type == OFPT_SET_ASYNC {
                    Message::SetAsync(config)
                } else {
                    Message::GetAsyncReply(config)
                }
            }
            msg_type => Message::Unknown { msg_type },
        };
        Ok((header.xid, message))
    }

    /// The `OFPT_*` type.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello { .. } => OFPT_HELLO,
            Message::Error { .. } => OFPT_ERROR,
            Message::EchoRequest(_) => OFPT_ECHO_REQUEST,
            Message::EchoReply(_) => OFPT_ECHO_REPLY,
            Message::Experimenter { .. } => OFPT_EXPERIMENTER,
            Message::FeaturesRequest => OFPT_FEATURES_REQUEST,
            Message::FeaturesReply(_) => OFPT_FEATURES_REPLY,
            Message::GetConfigRequest => OFPT_GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => OFPT_GET_CONFIG_REPLY,
            Message::SetConfig(_) => OFPT_SET_CONFIG,
            Message::PacketIn(_) => OFPT_PACKET_IN,
            Message::FlowRemoved(_) => OFPT_FLOW_REMOVED,
            Message::PortStatus { .. } => OFPT_PORT_STATUS,
            Message::PacketOut(_) => OFPT_PACKET_OUT,
            Message::FlowMod(_) => OFPT_FLOW_MOD,
            Message::MultipartRequest(_) => OFPT_MULTIPART_REQUEST,
            Message::MultipartReply(_) => OFPT_MULTIPART_REPLY,
            Message::BarrierRequest => OFPT_BARRIER_REQUEST,
            Message::BarrierReply => OFPT_BARRIER_REPLY,
            Message::RoleRequest(_) => OFPT_ROLE_REQUEST,
            Message::RoleReply(_) => OFPT_ROLE_REPLY,
            Message::GetAsyncRequest => OFPT_GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => OFPT_GET_ASYNC_REPLY,
            Message::SetAsync(_) => OFPT_SET_ASYNC,
            Message::Unknown { msg_type } => *msg_type,
        }
    }

    /// Encodes with this xid (length filled in). A message longer than 65535 bytes cannot be
    /// represented: its length field saturates (use [`encode_multipart_reply`] for replies).
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(
            &Header {
                version: VERSION,
                msg_type: self.msg_type(),
                length: 0,
                xid,
            }
            .to_bytes(),
        );
        match self {
            Message::Hello { versions } => {
                if let Some(bitmap) = versions {
                    out.put_u16(OFPHET_VERSIONBITMAP);
                    out.put_u16((HELLO_ELEMENT_HEADER_LEN + 4) as u16);
                    out.put_u32(*bitmap);
                }
            }
            Message::Error {
                err_type,
                code,
                data,
            } => {
                out.put_u16(*err_type);
                out.put_u16(*code);
                out.extend_from_slice(data);
            }
            Message::EchoRequest(data) | Message::EchoReply(data) => out.extend_from_slice(data),
            Message::Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                out.put_u32(*experimenter);
                out.put_u32(*exp_type);
                out.extend_from_slice(data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest
            | Message::Unknown { .. } => {}
            Message::FeaturesReply(f) => {
                out.put_u64(f.datapath_id);
                out.put_u32(f.n_buffers);
                out.put_u8(f.n_tables);
                out.put_u8(f.auxiliary_id);
                out.put_zeros(2);
                out.put_u32(f.capabilities);
                out.put_u32(0); // reserved
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                out.put_u16(c.flags);
                out.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => {
                out.put_u32(p.buffer_id);
                out.put_u16(p.total_len);
                out.put_u8(p.reason);
                out.put_u8(p.table_id);
                out.put_u64(p.cookie);
                encode_match(&mut out, &p.match_);
                out.put_zeros(PACKET_IN_PAD);
                out.extend_from_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                out.put_u64(f.cookie);
                out.put_u16(f.priority);
                out.put_u8(f.reason);
                out.put_u8(f.table_id);
                out.put_u32(f.duration_sec);
                out.put_u32(f.duration_nsec);
                out.put_u16(f.idle_timeout);
                out.put_u16(f.hard_timeout);
                out.put_u64(f.packet_count);
                out.put_u64(f.byte_count);
                encode_match(&mut out, &f.match_);
            }
            Message::PortStatus { reason, port } => {
                out.put_u8(*reason);
                out.put_zeros(7);
                encode_port(&mut out, port);
            }
            Message::PacketOut(p) => {
                out.put_u32(p.buffer_id);
                out.put_u32(p.in_port);
                let actions_len_at = out.len();
                out.put_u16(0);
                out.put_zeros(6);
                let actions_start = out.len();
                encode_actions(&mut out, &p.actions);
                let actions_len = len_u16(out.len() - actions_start);
                out[actions_len_at..actions_len_at + 2].copy_from_slice(&actions_len.to_be_bytes());
                out.extend_from_slice(&p.data);
            }
            Message::FlowMod(f) => encode_flow_mod(&mut out, f),
            Message::MultipartRequest(m) => m.encode(&mut out),
            Message::MultipartReply(m) => m.encode(&mut out),
            Message::RoleRequest(role) | Message::RoleReply(role) => {
                out.put_u32(role.role);
                out.put_zeros(4);
                out.put_u64(role.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for mask in [a.packet_in_mask, a.port_status_mask, a.flow_removed_mask] {
                    out.put_u32(mask[0]);
                    out.put_u32(mask[1]);
                }
            }
        }
        out.patch_len(0, HEADER_LENGTH);
        out
    }
}

/// The first word of the version bitmap of a HELLO body, if there is a bitmap element.
/// Elements of other types are skipped; a malformed element ends the list (a HELLO is never
/// refused for its elements: a HELLO of OpenFlow 1.0 may carry anything).
fn decode_hello(body: &[u8]) -> Option<u32> {
    let mut rest = body;
    while let [t0, t1, l0, l1, ..] = *rest {
        let element_type = u16::from_be_bytes([t0, t1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len < HELLO_ELEMENT_HEADER_LEN || len > rest.len() {
            return None;
        }
        if element_type == OFPHET_VERSIONBITMAP {
            let bitmaps = &rest[HELLO_ELEMENT_HEADER_LEN..len];
            return Some(match *bitmaps {
                [b0, b1, b2, b3, ..] => u32::from_be_bytes([b0, b1, b2, b3]),
                _ => 0,
            });
        }
        rest = &rest[super::buf::padded8(len).min(rest.len())..];
    }
    None
}

fn decode_flow_mod(r: &mut Reader) -> Result<FlowMod, DecodeError> {
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let table_id = r.u8()?;
    let command = r.u8()?;
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    let flags = r.u16()?;
    r.skip(2)?;
    let (match_, used) = decode_match(r.peek_rest())?;
    r.skip(used)?;
    Ok(FlowMod {
        cookie,
        cookie_mask,
        table_id,
        command,
        idle_timeout,
        hard_timeout,
        priority,
        buffer_id,
        out_port,
        out_group,
        flags,
        match_,
        instructions: decode_instructions(r.rest())?,
    })
}

fn encode_flow_mod(out: &mut Vec<u8>, f: &FlowMod) {
    out.put_u64(f.cookie);
    out.put_u64(f.cookie_mask);
    out.put_u8(f.table_id);
    out.put_u8(f.command);
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_u16(f.priority);
    out.put_u32(f.buffer_id);
    out.put_u32(f.out_port);
    out.put_u32(f.out_group);
    out.put_u16(f.flags);
    out.put_zeros(2);
    encode_match(out, &f.match_);
    encode_instructions(out, &f.instructions);
}
