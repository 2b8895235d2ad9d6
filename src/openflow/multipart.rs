//! Multipart messages (statistics and descriptions): the request and reply bodies vxtund
//! serves, `ofp_port` (also in PORT_STATUS), table features, and the splitting of a long
//! reply into messages of at most 65535 bytes.
//!
//! ```text
//! ofp_multipart_request/reply: | ofp_header (8) | type (2) | flags (2) | pad (4) | body |
//! ```

use super::action::{decode_instructions, encode_instructions, Instruction};
use super::buf::{padded8, Put, Reader};
use super::oxm::{decode_match, encode_match, Oxm};
use super::{DecodeError, HEADER_LEN, MAX_MESSAGE_LEN, OFPBRC_BAD_LEN, OFPET_BAD_REQUEST};
use super::{OFPET_TABLE_FEATURES_FAILED, OFPTFFC_BAD_LEN, OFPT_MULTIPART_REPLY, VERSION};

/// Description of the switch.
pub const OFPMP_DESC: u16 = 0;
/// Individual flow statistics.
pub const OFPMP_FLOW: u16 = 1;
/// Aggregate flow statistics.
pub const OFPMP_AGGREGATE: u16 = 2;
/// Flow table statistics.
pub const OFPMP_TABLE: u16 = 3;
/// Port statistics.
pub const OFPMP_PORT_STATS: u16 = 4;
/// Queue statistics.
pub const OFPMP_QUEUE: u16 = 5;
/// Group counter statistics.
pub const OFPMP_GROUP: u16 = 6;
/// Group description.
pub const OFPMP_GROUP_DESC: u16 = 7;
/// Group features.
pub const OFPMP_GROUP_FEATURES: u16 = 8;
/// Meter statistics.
pub const OFPMP_METER: u16 = 9;
/// Meter configuration.
pub const OFPMP_METER_CONFIG: u16 = 10;
/// Meter features.
pub const OFPMP_METER_FEATURES: u16 = 11;
/// Table features.
pub const OFPMP_TABLE_FEATURES: u16 = 12;
/// Port description.
pub const OFPMP_PORT_DESC: u16 = 13;
/// Experimenter extension.
pub const OFPMP_EXPERIMENTER: u16 = 0xffff;

/// Request flag: more requests follow.
pub const OFPMPF_REQ_MORE: u16 = 1;
/// Reply flag: more replies follow.
pub const OFPMPF_REPLY_MORE: u16 = 1;

/// `ofp_header` plus the multipart type, flags and padding.
pub const MULTIPART_HEADER_LEN: usize = HEADER_LEN + 8;
/// Width of the strings of `ofp_desc` but the serial number.
pub const DESC_STR_LEN: usize = 256;
/// Width of `ofp_desc.serial_num`.
pub const SERIAL_NUM_LEN: usize = 32;
/// Width of a port name.
pub const OFP_MAX_PORT_NAME_LEN: usize = 16;
/// Width of a table name.
pub const OFP_MAX_TABLE_NAME_LEN: usize = 32;
/// Length of `ofp_port`.
pub const PORT_LEN: usize = 64;
/// Length of `ofp_port_stats`.
pub const PORT_STATS_LEN: usize = 112;
/// Length of `ofp_table_stats`.
pub const TABLE_STATS_LEN: usize = 24;
/// Length of `ofp_aggregate_stats_reply`.
pub const AGGREGATE_LEN: usize = 24;
/// Length of `ofp_flow_stats` before its match.
pub const FLOW_STATS_FIXED_LEN: usize = 48;
/// Length of `ofp_flow_stats_request` / `ofp_aggregate_stats_request` before the match.
pub const FLOW_STATS_REQUEST_FIXED_LEN: usize = 32;
/// Length of `ofp_port_stats_request`.
pub const PORT_STATS_REQUEST_LEN: usize = 8;
/// Length of `ofp_table_features` before its properties.
pub const TABLE_FEATURES_FIXED_LEN: usize = 64;

/// Table feature property: instructions of a flow entry.
pub const OFPTFPT_INSTRUCTIONS: u16 = 0;
/// ... of the table-miss flow entry.
pub const OFPTFPT_INSTRUCTIONS_MISS: u16 = 1;
/// Tables a GOTO_TABLE may name.
pub const OFPTFPT_NEXT_TABLES: u16 = 2;
/// ... from the table-miss flow entry.
pub const OFPTFPT_NEXT_TABLES_MISS: u16 = 3;
/// Actions of WRITE_ACTIONS.
pub const OFPTFPT_WRITE_ACTIONS: u16 = 4;
/// ... for the table-miss flow entry.
pub const OFPTFPT_WRITE_ACTIONS_MISS: u16 = 5;
/// Actions of APPLY_ACTIONS.
pub const OFPTFPT_APPLY_ACTIONS: u16 = 6;
/// ... for the table-miss flow entry.
pub const OFPTFPT_APPLY_ACTIONS_MISS: u16 = 7;
/// Fields a match may use.
pub const OFPTFPT_MATCH: u16 = 8;
/// Fields that may be wildcarded (omitted).
pub const OFPTFPT_WILDCARDS: u16 = 10;
/// Fields a SET_FIELD in WRITE_ACTIONS may write.
pub const OFPTFPT_WRITE_SETFIELD: u16 = 12;
/// ... for the table-miss flow entry.
pub const OFPTFPT_WRITE_SETFIELD_MISS: u16 = 13;
/// Fields a SET_FIELD in APPLY_ACTIONS may write.
pub const OFPTFPT_APPLY_SETFIELD: u16 = 14;
/// ... for the table-miss flow entry.
pub const OFPTFPT_APPLY_SETFIELD_MISS: u16 = 15;
/// Experimenter property.
pub const OFPTFPT_EXPERIMENTER: u16 = 0xfffe;
/// Experimenter property for the table-miss flow entry.
pub const OFPTFPT_EXPERIMENTER_MISS: u16 = 0xffff;

/// Length of an instruction or action id in a table features property (type, len).
const FEATURE_ID_LEN: u16 = 4;
/// Length of a property's type and length fields.
const PROP_HEADER_LEN: usize = 4;

/// OFPT_MULTIPART_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    /// `OFPMPF_REQ_MORE` if more requests of this one follow.
    pub flags: u16,
    /// The request.
    pub body: MultipartRequestBody,
}

/// The body of a multipart request, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    /// OFPMP_DESC.
    Desc,
    /// OFPMP_FLOW.
    Flow(FlowStatsRequest),
    /// OFPMP_AGGREGATE.
    Aggregate(FlowStatsRequest),
    /// OFPMP_TABLE.
    Table,
    /// OFPMP_PORT_STATS for one port or `OFPP_ANY`.
    PortStats {
        /// The port, or `OFPP_ANY` for all.
        port_no: u32,
    },
    /// OFPMP_PORT_DESC.
    PortDesc,
    /// OFPMP_TABLE_FEATURES: empty to query, else the tables to set.
    TableFeatures(Vec<TableFeatures>),
    /// Any other type (the caller answers BAD_REQUEST/BAD_MULTIPART), its body as sent.
    Other {
        /// The `OFPMP_*` type.
        mp_type: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// The body of OFPMP_FLOW and OFPMP_AGGREGATE requests: which flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// The table, or `OFPTT_ALL`.
    pub table_id: u8,
    /// Only flows that output to this port, or `OFPP_ANY`.
    pub out_port: u32,
    /// Only flows that output to this group, or `OFPG_ANY`.
    pub out_group: u32,
    /// Only flows whose cookie equals this under `cookie_mask`.
    pub cookie: u64,
    /// The cookie bits that must match (0: any cookie).
    pub cookie_mask: u64,
    /// Only flows this match covers.
    pub match_: Vec<Oxm>,
}

/// OFPT_MULTIPART_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    /// `OFPMPF_REPLY_MORE` if more replies to the same request follow.
    pub flags: u16,
    /// The reply.
    pub body: MultipartReplyBody,
}

/// The body of a multipart reply, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    /// OFPMP_DESC: fixed-width NUL-padded strings on the wire, cut to fit.
    Desc {
        /// Manufacturer.
        mfr_desc: String,
        /// Hardware.
        hw_desc: String,
        /// Software.
        sw_desc: String,
        /// Serial number (31 bytes at most).
        serial_num: String,
        /// Human-readable description of the datapath.
        dp_desc: String,
    },
    /// OFPMP_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPMP_AGGREGATE.
    Aggregate {
        /// Packets in the flows.
        packet_count: u64,
        /// Bytes in the flows.
        byte_count: u64,
        /// Number of flows.
        flow_count: u32,
    },
    /// OFPMP_TABLE.
    Table(Vec<TableStats>),
    /// OFPMP_PORT_STATS.
    PortStats(Vec<PortStats>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<PortDesc>),
    /// OFPMP_TABLE_FEATURES.
    TableFeatures(Vec<TableFeatures>),
    /// Any other type, its body as sent.
    Other {
        /// The `OFPMP_*` type.
        mp_type: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// `ofp_flow_stats`: one flow entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    /// Its table.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds alive beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// `OFPFF_*` flags.
    pub flags: u16,
    /// Opaque controller-issued identifier.
    pub cookie: u64,
    /// Packets that hit the flow.
    pub packet_count: u64,
    /// Bytes that hit the flow.
    pub byte_count: u64,
    /// Its match.
    pub match_: Vec<Oxm>,
    /// Its instructions.
    pub instructions: Vec<Instruction>,
}

/// `ofp_table_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// The table.
    pub table_id: u8,
    /// Active flow entries.
    pub active_count: u32,
    /// Packets looked up in the table.
    pub lookup_count: u64,
    /// Packets that hit the table.
    pub matched_count: u64,
}

/// `ofp_port_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    /// The port.
    pub port_no: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped by RX.
    pub rx_dropped: u64,
    /// Packets dropped by TX.
    pub tx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Frame alignment errors.
    pub rx_frame_err: u64,
    /// Packets with RX overrun.
    pub rx_over_err: u64,
    /// CRC errors.
    pub rx_crc_err: u64,
    /// Collisions.
    pub collisions: u64,
    /// Seconds the port has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
}

/// `ofp_port`: a port's description (PORT_DESC replies, PORT_STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDesc {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name: 16 bytes on the wire, cut to 15 and NUL-terminated.
    pub name: String,
    /// `OFPPC_*` bits.
    pub config: u32,
    /// `OFPPS_*` bits.
    pub state: u32,
    /// Current features (`OFPPF_*`).
    pub curr: u32,
    /// Features advertised.
    pub advertised: u32,
    /// Features supported.
    pub supported: u32,
    /// Features advertised by the peer.
    pub peer: u32,
    /// Current bit rate in kb/s.
    pub curr_speed: u32,
    /// Maximum bit rate in kb/s.
    pub max_speed: u32,
}

/// `ofp_table_features`: one table's capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFeatures {
    /// The table.
    pub table_id: u8,
    /// Its name: 32 bytes on the wire, cut to 31 and NUL-terminated.
    pub name: String,
    /// Metadata bits a match may use.
    pub metadata_match: u64,
    /// Metadata bits WRITE_METADATA may write.
    pub metadata_write: u64,
    /// `OFPTC_*` bits.
    pub config: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// The properties.
    pub properties: Vec<TableFeatureProp>,
}

/// A table features property. ovs-ofctl requires INSTRUCTIONS, NEXT_TABLES, WRITE_ACTIONS,
/// APPLY_ACTIONS, MATCH, WILDCARDS, WRITE_SETFIELD and APPLY_SETFIELD in every table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFeatureProp {
    /// OFPTFPT_INSTRUCTIONS: `OFPIT_*` types.
    Instructions(Vec<u16>),
    /// OFPTFPT_INSTRUCTIONS_MISS.
    InstructionsMiss(Vec<u16>),
    /// OFPTFPT_NEXT_TABLES: table ids.
    NextTables(Vec<u8>),
    /// OFPTFPT_NEXT_TABLES_MISS.
    NextTablesMiss(Vec<u8>),
    /// OFPTFPT_WRITE_ACTIONS: `OFPAT_*` types.
    WriteActions(Vec<u16>),
    /// OFPTFPT_WRITE_ACTIONS_MISS.
    WriteActionsMiss(Vec<u16>),
    /// OFPTFPT_APPLY_ACTIONS: `OFPAT_*` types.
    ApplyActions(Vec<u16>),
    /// OFPTFPT_APPLY_ACTIONS_MISS.
    ApplyActionsMiss(Vec<u16>),
    /// OFPTFPT_MATCH: OXM headers ([`super::oxm_header`]); hasmask set if maskable.
    Match(Vec<u32>),
    /// OFPTFPT_WILDCARDS: OXM headers.
    Wildcards(Vec<u32>),
    /// OFPTFPT_WRITE_SETFIELD: OXM headers.
    WriteSetfield(Vec<u32>),
    /// OFPTFPT_WRITE_SETFIELD_MISS.
    WriteSetfieldMiss(Vec<u32>),
    /// OFPTFPT_APPLY_SETFIELD: OXM headers.
    ApplySetfield(Vec<u32>),
    /// OFPTFPT_APPLY_SETFIELD_MISS.
    ApplySetfieldMiss(Vec<u32>),
    /// Any other property (experimenter ones included), its body without padding.
    Other {
        /// The `OFPTFPT_*` type.
        prop_type: u16,
        /// The bytes after type and length.
        body: Vec<u8>,
    },
}

/// Splits a long multipart reply into messages of at most 65535 bytes each, all but the last
/// with `OFPMPF_REPLY_MORE`; the last carries `reply.flags`. Entries are never split; an entry
/// too long for any message (a flow with a huge instruction list) is sent alone in one that
/// cannot be represented (see the module notes).
pub fn encode_multipart_reply(xid: u32, reply: &MultipartReply) -> Vec<Vec<u8>> {
    let mp_type = reply.body.mp_type();
    let mut messages = Vec::new();
    let mut current = multipart_start(OFPT_MULTIPART_REPLY, xid, mp_type);
    reply.body.entries(&mut |entry| {
        let mark = current.len();
        entry(&mut current);
        if current.len() > MAX_MESSAGE_LEN && mark > MULTIPART_HEADER_LEN {
            let tail = current.split_off(mark);
            let mut full = std::mem::replace(
                &mut current,
                multipart_start(OFPT_MULTIPART_REPLY, xid, mp_type),
            );
            multipart_finish(&mut full, reply.flags | OFPMPF_REPLY_MORE);
            messages.push(full);
            current.extend_from_slice(&tail);
        }
    });
    multipart_finish(&mut current, reply.flags);
    messages.push(current);
    messages
}

impl MultipartRequestBody {
    /// The `OFPMP_*` type.
    pub fn mp_type(&self) -> u16 {
        match self {
            MultipartRequestBody::Desc => OFPMP_DESC,
            MultipartRequestBody::Flow(_) => OFPMP_FLOW,
            MultipartRequestBody::Aggregate(_) => OFPMP_AGGREGATE,
            MultipartRequestBody::Table => OFPMP_TABLE,
            MultipartRequestBody::PortStats { .. } => OFPMP_PORT_STATS,
            MultipartRequestBody::PortDesc => OFPMP_PORT_DESC,
            MultipartRequestBody::TableFeatures(_) => OFPMP_TABLE_FEATURES,
            MultipartRequestBody::Other { mp_type, .. } => *mp_type,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::PortDesc => {}
            MultipartRequestBody::Flow(req) | MultipartRequestBody::Aggregate(req) => {
                out.put_u8(req.table_id);
                out.put_zeros(3);
                out.put_u32(req.out_port);
                out.put_u32(req.out_group);
                out.put_zeros(4);
                out.put_u64(req.cookie);
                out.put_u64(req.cookie_mask);
                encode_match(out, &req.match_);
            }
            MultipartRequestBody::PortStats { port_no } => {
                out.put_u32(*port_no);
                out.put_zeros(4);
            }
            MultipartRequestBody::TableFeatures(tables) => {
                tables.iter().for_each(|t| encode_table_features(out, t))
            }
            MultipartRequestBody::Other { body, .. } => out.extend_from_slice(body),
        }
    }

    fn decode(mp_type: u16, body: &[u8]) -> Result<MultipartRequestBody, DecodeError> {
        let empty = |b: MultipartRequestBody| {
            if body.is_empty() {
                Ok(b)
            } else {
                Err(DecodeError::bad_len(format!(
                    "multipart request {mp_type} has a body of {} bytes, not none",
                    body.len()
                )))
            }
        };
        Ok(match mp_type {
            OFPMP_DESC => empty(MultipartRequestBody::Desc)?,
            OFPMP_TABLE => empty(MultipartRequestBody::Table)?,
            OFPMP_PORT_DESC => empty(MultipartRequestBody::PortDesc)?,
            OFPMP_FLOW | OFPMP_AGGREGATE => {
                let mut r = Reader::new(
                    body,
                    OFPET_BAD_REQUEST,
                    OFPBRC_BAD_LEN,
                    "flow stats request",
                );
                let table_id = r.u8()?;
                r.skip(3)?;
                let out_port = r.u32()?;
                let out_group = r.u32()?;
                r.skip(4)?;
                let cookie = r.u64()?;
                let cookie_mask = r.u64()?;
                let (match_, used) = decode_match(r.peek_rest())?;
                r.skip(used)?;
                if r.remaining() != 0 {
                    return Err(r.error(format!("{} bytes after the match", r.remaining())));
                }
                let req = FlowStatsRequest {
                    table_id,
                    out_port,
                    out_group,
                    cookie,
                    cookie_mask,
                    match_,
                };
                if mp_type == OFPMP_FLOW {
                    MultipartRequestBody::Flow(req)
                } else {
                    MultipartRequestBody::Aggregate(req)
                }
            }
            OFPMP_PORT_STATS => {
                if body.len() != PORT_STATS_REQUEST_LEN {
                    return Err(DecodeError::bad_len(format!(
                        "port stats request of {} bytes, not {PORT_STATS_REQUEST_LEN}",
                        body.len()
                    )));
                }
                let mut r = Reader::new(
                    body,
                    OFPET_BAD_REQUEST,
                    OFPBRC_BAD_LEN,
                    "port stats request",
                );
                MultipartRequestBody::PortStats { port_no: r.u32()? }
            }
            OFPMP_TABLE_FEATURES => {
                MultipartRequestBody::TableFeatures(decode_table_features_list(body)?)
            }
            _ => MultipartRequestBody::Other {
                mp_type,
                body: body.to_vec(),
            },
        })
    }
}

impl MultipartRequest {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.body.mp_type());
        out.put_u16(self.flags);
        out.put_zeros(4);
        self.body.encode(out);
    }

    pub(crate) fn decode(body: &[u8]) -> Result<MultipartRequest, DecodeError> {
        let mut r = Reader::new(body, OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, "multipart request");
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        Ok(MultipartRequest {
            flags,
            body: MultipartRequestBody::decode(mp_type, r.rest())?,
        })
    }
}

impl MultipartReplyBody {
    /// The `OFPMP_*` type.
    pub fn mp_type(&self) -> u16 {
        match self {
            MultipartReplyBody::Desc { .. } => OFPMP_DESC,
            MultipartReplyBody::Flow(_) => OFPMP_FLOW,
            MultipartReplyBody::Aggregate { .. } => OFPMP_AGGREGATE,
            MultipartReplyBody::Table(_) => OFPMP_TABLE,
            MultipartReplyBody::PortStats(_) => OFPMP_PORT_STATS,
            MultipartReplyBody::PortDesc(_) => OFPMP_PORT_DESC,
            MultipartReplyBody::TableFeatures(_) => OFPMP_TABLE_FEATURES,
            MultipartReplyBody::Other { mp_type, .. } => *mp_type,
        }
    }

    /// Calls `each` with the encoder of every entry in turn (of the whole body for DESC,
    /// AGGREGATE and other types): the units a long reply is split between messages at.
    fn entries(&self, each: &mut dyn FnMut(EntryEncoder)) {
        match self {
            MultipartReplyBody::Desc {
                mfr_desc,
                hw_desc,
                sw_desc,
                serial_num,
                dp_desc,
            } => each(&|out| {
                out.put_string(mfr_desc, DESC_STR_LEN);
                out.put_string(hw_desc, DESC_STR_LEN);
                out.put_string(sw_desc, DESC_STR_LEN);
                out.put_string(serial_num, SERIAL_NUM_LEN);
                out.put_string(dp_desc, DESC_STR_LEN);
            }),
            MultipartReplyBody::Flow(v) => {
                v.iter().for_each(|e| each(&|o| encode_flow_stats(o, e)))
            }
            MultipartReplyBody::Aggregate {
                packet_count,
                byte_count,
                flow_count,
            } => each(&|out| {
                out.put_u64(*packet_count);
                out.put_u64(*byte_count);
                out.put_u32(*flow_count);
                out.put_zeros(4);
            }),
            MultipartReplyBody::Table(v) => {
                v.iter().for_each(|e| each(&|o| encode_table_stats(o, e)))
            }
            MultipartReplyBody::PortStats(v) => {
                v.iter().for_each(|e| each(&|o| encode_port_stats(o, e)))
            }
            MultipartReplyBody::PortDesc(v) => v.iter().for_each(|e| each(&|o| encode_port(o, e))),
            MultipartReplyBody::TableFeatures(v) => v
                .iter()
                .for_each(|e| each(&|o| encode_table_features(o, e))),
            MultipartReplyBody::Other { body, .. } => each(&|out| out.extend_from_slice(body)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.entries(&mut |entry| entry(out));
    }

    fn decode(mp_type: u16, body: &[u8]) -> Result<MultipartReplyBody, DecodeError> {
        let mut r = Reader::new(body, OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, "multipart reply");
        Ok(match mp_type {
            OFPMP_DESC => {
                let desc = MultipartReplyBody::Desc {
                    mfr_desc: r.string(DESC_STR_LEN)?,
                    hw_desc: r.string(DESC_STR_LEN)?,
                    sw_desc: r.string(DESC_STR_LEN)?,
                    serial_num: r.string(SERIAL_NUM_LEN)?,
                    dp_desc: r.string(DESC_STR_LEN)?,
                };
                expect_end(&r)?;
                desc
            }
            OFPMP_FLOW => {
                let mut flows = Vec::new();
                while r.remaining() > 0 {
                    flows.push(decode_flow_stats(&mut r)?);
                }
                MultipartReplyBody::Flow(flows)
            }
            OFPMP_AGGREGATE => {
                let agg = MultipartReplyBody::Aggregate {
                    packet_count: r.u64()?,
                    byte_count: r.u64()?,
                    flow_count: r.u32()?,
                };
                r.skip(4)?;
                expect_end(&r)?;
                agg
            }
            OFPMP_TABLE => {
                MultipartReplyBody::Table(fixed_list(&mut r, TABLE_STATS_LEN, decode_table_stats)?)
            }
            OFPMP_PORT_STATS => MultipartReplyBody::PortStats(fixed_list(
                &mut r,
                PORT_STATS_LEN,
                decode_port_stats,
            )?),
            OFPMP_PORT_DESC => {
                MultipartReplyBody::PortDesc(fixed_list(&mut r, PORT_LEN, decode_port)?)
            }
            OFPMP_TABLE_FEATURES => {
                MultipartReplyBody::TableFeatures(decode_table_features_list(body)?)
            }
            _ => MultipartReplyBody::Other {
                mp_type,
                body: body.to_vec(),
            },
        })
    }
}

impl MultipartReply {
    /// Encodes the whole reply as one message body (after the header); see
    /// [`encode_multipart_reply`] for replies that may not fit.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.body.mp_type());
        out.put_u16(self.flags);
        out.put_zeros(4);
        self.body.encode(out);
    }

    pub(crate) fn decode(body: &[u8]) -> Result<MultipartReply, DecodeError> {
        let mut r = Reader::new(body, OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, "multipart reply");
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        Ok(MultipartReply {
            flags,
            body: MultipartReplyBody::decode(mp_type, r.rest())?,
        })
    }
}

/// Appends one entry of a multipart reply (see `MultipartReplyBody::entries`).
type EntryEncoder<'a> = &'a dyn Fn(&mut Vec<u8>);

/// A message header and multipart header with the length still to be written.
fn multipart_start(msg_type: u8, xid: u32, mp_type: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(MULTIPART_HEADER_LEN);
    out.put_u8(VERSION);
    out.put_u8(msg_type);
    out.put_u16(0);
    out.put_u32(xid);
    out.put_u16(mp_type);
    out.put_u16(0);
    out.put_zeros(4);
    out
}

/// Writes the flags and the message length.
fn multipart_finish(message: &mut Vec<u8>, flags: u16) {
    message[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&flags.to_be_bytes());
    message.patch_len(0, 2);
}

fn expect_end(r: &Reader) -> Result<(), DecodeError> {
    match r.remaining() {
        0 => Ok(()),
        n => Err(r.error(format!("{n} bytes too many"))),
    }
}

/// A list of fixed-size entries filling the rest of `r`.
fn fixed_list<T>(
    r: &mut Reader,
    size: usize,
    decode: fn(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    if r.remaining() % size != 0 {
        return Err(r.error(format!(
            "{} bytes is not a whole number of {size}-byte entries",
            r.remaining()
        )));
    }
    let mut out = Vec::with_capacity(r.remaining() / size);
    while r.remaining() > 0 {
        out.push(decode(r)?);
    }
    Ok(out)
}

fn encode_flow_stats(out: &mut Vec<u8>, f: &FlowStats) {
    let start = out.len();
    out.put_u16(0);
    out.put_u8(f.table_id);
    out.put_zeros(1);
    out.put_u32(f.duration_sec);
    out.put_u32(f.duration_nsec);
    out.put_u16(f.priority);
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_u16(f.flags);
    out.put_zeros(4);
    out.put_u64(f.cookie);
    out.put_u64(f.packet_count);
    out.put_u64(f.byte_count);
    encode_match(out, &f.match_);
    encode_instructions(out, &f.instructions);
    out.patch_len(start, 0);
}

fn decode_flow_stats(r: &mut Reader) -> Result<FlowStats, DecodeError> {
    let rest = r.peek_rest();
    let len = usize::from(super::buf::be16(rest, 0).unwrap_or(0));
    if len < FLOW_STATS_FIXED_LEN || len > rest.len() {
        return Err(r.error(format!(
            "flow stats entry of length {len} ({} bytes left)",
            rest.len()
        )));
    }
    let mut e = Reader::new(
        r.bytes(len)?,
        OFPET_BAD_REQUEST,
        OFPBRC_BAD_LEN,
        "flow stats",
    );
    e.skip(2)?;
    let table_id = e.u8()?;
    e.skip(1)?;
    let duration_sec = e.u32()?;
    let duration_nsec = e.u32()?;
    let priority = e.u16()?;
    let idle_timeout = e.u16()?;
    let hard_timeout = e.u16()?;
    let flags = e.u16()?;
    e.skip(4)?;
    let cookie = e.u64()?;
    let packet_count = e.u64()?;
    let byte_count = e.u64()?;
    let (match_, used) = decode_match(e.peek_rest())?;
    e.skip(used)?;
    let instructions = decode_instructions(e.rest())?;
    Ok(FlowStats {
        table_id,
        duration_sec,
        duration_nsec,
        priority,
        idle_timeout,
        hard_timeout,
        flags,
        cookie,
        packet_count,
        byte_count,
        match_,
        instructions,
    })
}

fn encode_table_stats(out: &mut Vec<u8>, t: &TableStats) {
    out.put_u8(t.table_id);
    out.put_zeros(3);
    out.put_u32(t.active_count);
    out.put_u64(t.lookup_count);
    out.put_u64(t.matched_count);
}

fn decode_table_stats(r: &mut Reader) -> Result<TableStats, DecodeError> {
    let table_id = r.u8()?;
    r.skip(3)?;
    Ok(TableStats {
        table_id,
        active_count: r.u32()?,
        lookup_count: r.u64()?,
        matched_count: r.u64()?,
    })
}

fn encode_port_stats(out: &mut Vec<u8>, p: &PortStats) {
    out.put_u32(p.port_no);
    out.put_zeros(4);
    for v in [
        p.rx_packets,
        p.tx_packets,
        p.rx_bytes,
        p.tx_bytes,
        p.rx_dropped,
        p.tx_dropped,
        p.rx_errors,
        p.tx_errors,
        p.rx_frame_err,
        p.rx_over_err,
        p.rx_crc_err,
        p.collisions,
    ] {
        out.put_u64(v);
    }
    out.put_u32(p.duration_sec);
    out.put_u32(p.duration_nsec);
}

fn decode_port_stats(r: &mut Reader) -> Result<PortStats, DecodeError> {
    let port_no = r.u32()?;
    r.skip(4)?;
    Ok(PortStats {
        port_no,
        rx_packets: r.u64()?,
        tx_packets: r.u64()?,
        rx_bytes: r.u64()?,
        tx_bytes: r.u64()?,
        rx_dropped: r.u64()?,
        tx_dropped: r.u64()?,
        rx_errors: r.u64()?,
        tx_errors: r.u64()?,
        rx_frame_err: r.u64()?,
        rx_over_err: r.u64()?,
        rx_crc_err: r.u64()?,
        collisions: r.u64()?,
        duration_sec: r.u32()?,
        duration_nsec: r.u32()?,
    })
}

/// Appends an `ofp_port`.
pub(crate) fn encode_port(out: &mut Vec<u8>, p: &PortDesc) {
    out.put_u32(p.port_no);
    out.put_zeros(4);
    out.extend_from_slice(&p.hw_addr);
    out.put_zeros(2);
    out.put_string(&p.name, OFP_MAX_PORT_NAME_LEN);
    for v in [
        p.config,
        p.state,
        p.curr,
        p.advertised,
        p.supported,
        p.peer,
        p.curr_speed,
        p.max_speed,
    ] {
        out.put_u32(v);
    }
}

/// Reads an `ofp_port`.
pub(crate) fn decode_port(r: &mut Reader) -> Result<PortDesc, DecodeError> {
    let port_no = r.u32()?;
    r.skip(4)?;
    let hw_addr = r.array()?;
    r.skip(2)?;
    Ok(PortDesc {
        port_no,
        hw_addr,
        name: r.string(OFP_MAX_PORT_NAME_LEN)?,
        config: r.u32()?,
        state: r.u32()?,
        curr: r.u32()?,
        advertised: r.u32()?,
        supported: r.u32()?,
        peer: r.u32()?,
        curr_speed: r.u32()?,
        max_speed: r.u32()?,
    })
}

fn encode_table_features(out: &mut Vec<u8>, t: &TableFeatures) {
    let start = out.len();
    out.put_u16(0);
    out.put_u8(t.table_id);
    out.put_zeros(5);
    out.put_string(&t.name, OFP_MAX_TABLE_NAME_LEN);
    out.put_u64(t.metadata_match);
    out.put_u64(t.metadata_write);
    out.put_u32(t.config);
    out.put_u32(t.max_entries);
    for prop in &t.properties {
        encode_prop(out, prop);
    }
    out.patch_len(start, 0);
}

fn encode_prop(out: &mut Vec<u8>, prop: &TableFeatureProp) {
    use TableFeatureProp as P;
    let start = out.len();
    out.put_u16(prop.prop_type());
    out.put_u16(0);
    match prop {
        P::Instructions(ids)
        | P::InstructionsMiss(ids)
        | P::WriteActions(ids)
        | P::WriteActionsMiss(ids)
        | P::ApplyActions(ids)
        | P::ApplyActionsMiss(ids) => {
            for &id in ids {
                out.put_u16(id);
                out.put_u16(FEATURE_ID_LEN);
            }
        }
        P::NextTables(tables) | P::NextTablesMiss(tables) => out.extend_from_slice(tables),
        P::Match(oxms)
        | P::Wildcards(oxms)
        | P::WriteSetfield(oxms)
        | P::WriteSetfieldMiss(oxms)
        | P::ApplySetfield(oxms)
        | P::ApplySetfieldMiss(oxms) => oxms.iter().for_each(|&h| out.put_u32(h)),
        P::Other { body, .. } => out.extend_from_slice(body),
    }
    out.patch_len(start, 2);
    out.pad_to_8(start);
}

impl TableFeatureProp {
    /// The `OFPTFPT_*` type.
    pub fn prop_type(&self) -> u16 {
        use TableFeatureProp as P;
        match self {
            P::Instructions(_) => OFPTFPT_INSTRUCTIONS,
            P::InstructionsMiss(_) => OFPTFPT_INSTRUCTIONS_MISS,
            P::NextTables(_) => OFPTFPT_NEXT_TABLES,
            P::NextTablesMiss(_) => OFPTFPT_NEXT_TABLES_MISS,
            P::WriteActions(_) => OFPTFPT_WRITE_ACTIONS,
            P::WriteActionsMiss(_) => OFPTFPT_WRITE_ACTIONS_MISS,
            P::ApplyActions(_) => OFPTFPT_APPLY_ACTIONS,
            P::ApplyActionsMiss(_) => OFPTFPT_APPLY_ACTIONS_MISS,
            P::Match(_) => OFPTFPT_MATCH,
            P::Wildcards(_) => OFPTFPT_WILDCARDS,
            P::WriteSetfield(_) => OFPTFPT_WRITE_SETFIELD,
            P::WriteSetfieldMiss(_) => OFPTFPT_WRITE_SETFIELD_MISS,
            P::ApplySetfield(_) => OFPTFPT_APPLY_SETFIELD,
            P::ApplySetfieldMiss(_) => OFPTFPT_APPLY_SETFIELD_MISS,
            P::Other { prop_type, .. } => *prop_type,
        }
    }
}

fn features_error(detail: String) -> DecodeError {
    DecodeError::new(OFPET_TABLE_FEATURES_FAILED, OFPTFFC_BAD_LEN, detail)
}

fn decode_table_features_list(mut body: &[u8]) -> Result<Vec<TableFeatures>, DecodeError> {
    let mut tables = Vec::new();
    while !body.is_empty() {
        let len = usize::from(super::buf::be16(body, 0).unwrap_or(0));
        if len < TABLE_FEATURES_FIXED_LEN || len > body.len() {
            return Err(features_error(format!(
                "table features entry of length {len} ({} bytes left)",
                body.len()
            )));
        }
        let mut r = Reader::new(
            &body[..len],
            OFPET_TABLE_FEATURES_FAILED,
            OFPTFFC_BAD_LEN,
            "table features",
        );
        body = &body[len..];
        r.skip(2)?;
        let table_id = r.u8()?;
        r.skip(5)?;
        let name = r.string(OFP_MAX_TABLE_NAME_LEN)?;
        let metadata_match = r.u64()?;
        let metadata_write = r.u64()?;
        let config = r.u32()?;
        let max_entries = r.u32()?;
        let mut properties = Vec::new();
        let mut rest = r.rest();
        while !rest.is_empty() {
            let [t0, t1, l0, l1, ..] = *rest else {
                return Err(features_error(format!(
                    "{} trailing bytes after the properties",
                    rest.len()
                )));
            };
            let prop_type = u16::from_be_bytes([t0, t1]);
            let plen = usize::from(u16::from_be_bytes([l0, l1]));
            if plen < PROP_HEADER_LEN || padded8(plen) > rest.len() {
                return Err(features_error(format!(
                    "property {prop_type} of length {plen} (padded {}) but {} bytes left",
                    padded8(plen),
                    rest.len()
                )));
            }
            properties.push(decode_prop(prop_type, &rest[PROP_HEADER_LEN..plen])?);
            rest = &rest[padded8(plen)..];
        }
        tables.push(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        });
    }
    Ok(tables)
}

fn decode_prop(prop_type: u16, body: &[u8]) -> Result<TableFeatureProp, DecodeError> {
    use TableFeatureProp as P;
    let ids = || -> Result<Vec<u16>, DecodeError> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let [t0, t1, l0, l1, ..] = *rest else {
                return Err(features_error(format!(
                    "property {prop_type}: {} trailing bytes",
                    rest.len()
                )));
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            if len < usize::from(FEATURE_ID_LEN) || len > rest.len() {
                return Err(features_error(format!(
                    "property {prop_type}: id of length {len} ({} bytes left)",
                    rest.len()
                )));
            }
            out.push(u16::from_be_bytes([t0, t1]));
            rest = &rest[len..];
        }
        Ok(out)
    };
    let oxms = || -> Result<Vec<u32>, DecodeError> {
        if body.len() % 4 != 0 {
            return Err(features_error(format!(
                "property {prop_type}: {} bytes of OXM headers",
                body.len()
            )));
        }
        Ok(body
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    Ok(match prop_type {
        OFPTFPT_INSTRUCTIONS => P::Instructions(ids()?),
        OFPTFPT_INSTRUCTIONS_MISS => P::InstructionsMiss(ids()?),
        OFPTFPT_NEXT_TABLES => P::NextTables(body.to_vec()),
        OFPTFPT_NEXT_TABLES_MISS => P::NextTablesMiss(body.to_vec()),
        OFPTFPT_WRITE_ACTIONS => P::WriteActions(ids()?),
        OFPTFPT_WRITE_ACTIONS_MISS => P::WriteActionsMiss(ids()?),
        OFPTFPT_APPLY_ACTIONS => P::ApplyActions(ids()?),
        OFPTFPT_APPLY_ACTIONS_MISS => P::ApplyActionsMiss(ids()?),
        OFPTFPT_MATCH => P::Match(oxms()?),
        OFPTFPT_WILDCARDS => P::Wildcards(oxms()?),
        OFPTFPT_WRITE_SETFIELD => P::WriteSetfield(oxms()?),
        OFPTFPT_WRITE_SETFIELD_MISS => P::WriteSetfieldMiss(oxms()?),
        OFPTFPT_APPLY_SETFIELD => P::ApplySetfield(oxms()?),
        OFPTFPT_APPLY_SETFIELD_MISS => P::ApplySetfieldMiss(oxms()?),
        _ => P::Other {
            prop_type,
            body: body.to_vec(),
        },
    })
}
