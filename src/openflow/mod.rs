//! The OpenFlow 1.3 wire codec (OpenFlow Switch Specification 1.3.5, wire protocol 0x04):
//! messages as types, [`Message::decode`] and [`Message::encode`], no sockets and no clock.
//!
//! Decoding never panics. A message that cannot be accepted becomes a [`DecodeError`] that
//! carries the OpenFlow error (type, code) the switch sends back; what the codec cannot judge
//! (unsupported actions, instructions, multipart types, prerequisites of match fields) decodes
//! to raw variants so that the caller answers with the right error. Encoding writes each
//! structure's length and the padding the specification asks for; a message longer than
//! 65535 bytes cannot be represented (its length field saturates), which is why long multipart
//! replies go through [`encode_multipart_reply`].
//!
//! ```text
//! ofp_header: | version (1) | type (1) | length (2) | xid (4) |
//! ```

mod action;
pub mod agent;
mod buf;
pub mod convert;
mod message;
mod multipart;
mod oxm;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use std::fmt;

pub use action::*;
pub use message::*;
pub use multipart::*;
pub use oxm::*;

/// The protocol version of OpenFlow 1.3.
pub const VERSION: u8 = 0x04;
/// Length of `ofp_header`.
pub const HEADER_LEN: usize = 8;
/// The largest message: its length is a 16-bit field.
pub const MAX_MESSAGE_LEN: usize = 65535;
/// The IANA port of OpenFlow.
pub const OFP_TCP_PORT: u16 = 6653;

const HEADER_VERSION: usize = 0;
const HEADER_TYPE: usize = 1;
const HEADER_LENGTH: usize = 2;
const HEADER_XID: usize = 4;

// Message types (`ofp_type`).
/// Symmetric: version negotiation.
pub const OFPT_HELLO: u8 = 0;
/// Symmetric: an error.
pub const OFPT_ERROR: u8 = 1;
/// Symmetric: liveness request.
pub const OFPT_ECHO_REQUEST: u8 = 2;
/// Symmetric: liveness reply.
pub const OFPT_ECHO_REPLY: u8 = 3;
/// Symmetric: vendor extension.
pub const OFPT_EXPERIMENTER: u8 = 4;
/// Controller/switch: features request.
pub const OFPT_FEATURES_REQUEST: u8 = 5;
/// Controller/switch: features reply.
pub const OFPT_FEATURES_REPLY: u8 = 6;
/// Controller/switch: configuration request.
pub const OFPT_GET_CONFIG_REQUEST: u8 = 7;
/// Controller/switch: configuration reply.
pub const OFPT_GET_CONFIG_REPLY: u8 = 8;
/// Controller/switch: set the configuration.
pub const OFPT_SET_CONFIG: u8 = 9;
/// Asynchronous: a packet for the controller.
pub const OFPT_PACKET_IN: u8 = 10;
/// Asynchronous: a flow was removed.
pub const OFPT_FLOW_REMOVED: u8 = 11;
/// Asynchronous: a port changed.
pub const OFPT_PORT_STATUS: u8 = 12;
/// Controller command: send a packet.
pub const OFPT_PACKET_OUT: u8 = 13;
/// Controller command: change the flow table.
pub const OFPT_FLOW_MOD: u8 = 14;
/// Controller command: change the group table.
pub const OFPT_GROUP_MOD: u8 = 15;
/// Controller command: change a port.
pub const OFPT_PORT_MOD: u8 = 16;
/// Controller command: configure a table.
pub const OFPT_TABLE_MOD: u8 = 17;
/// Multipart request (statistics and descriptions).
pub const OFPT_MULTIPART_REQUEST: u8 = 18;
/// Multipart reply.
pub const OFPT_MULTIPART_REPLY: u8 = 19;
/// Barrier request.
pub const OFPT_BARRIER_REQUEST: u8 = 20;
/// Barrier reply.
pub const OFPT_BARRIER_REPLY: u8 = 21;
/// Queue configuration request.
pub const OFPT_QUEUE_GET_CONFIG_REQUEST: u8 = 22;
/// Queue configuration reply.
pub const OFPT_QUEUE_GET_CONFIG_REPLY: u8 = 23;
/// Controller role request.
pub const OFPT_ROLE_REQUEST: u8 = 24;
/// Controller role reply.
pub const OFPT_ROLE_REPLY: u8 = 25;
/// Asynchronous configuration request.
pub const OFPT_GET_ASYNC_REQUEST: u8 = 26;
/// Asynchronous configuration reply.
pub const OFPT_GET_ASYNC_REPLY: u8 = 27;
/// Set the asynchronous configuration.
pub const OFPT_SET_ASYNC: u8 = 28;
/// Controller command: change a meter.
pub const OFPT_METER_MOD: u8 = 29;

// Reserved ports (`ofp_port_no`).
/// The highest number of a physical or logical port.
pub const OFPP_MAX: u32 = 0xffff_ff00;
/// Send the packet out of the port it came in on.
pub const OFPP_IN_PORT: u32 = 0xffff_fff8;
/// Submit the packet to the first flow table (PACKET_OUT only).
pub const OFPP_TABLE: u32 = 0xffff_fff9;
/// The traditional non-OpenFlow pipeline (for vxtund: MAC learning).
pub const OFPP_NORMAL: u32 = 0xffff_fffa;
/// Flood along the non-blocked ports, not the ingress.
pub const OFPP_FLOOD: u32 = 0xffff_fffb;
/// All ports but the ingress.
pub const OFPP_ALL: u32 = 0xffff_fffc;
/// To the controller.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// The local networking stack (for vxtund: the TAP).
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// Any port: a wildcard in filters; "no port".
pub const OFPP_ANY: u32 = 0xffff_ffff;

/// The highest group number.
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// All groups (group delete).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// Any group: a wildcard in filters.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// `buffer_id` of a packet not buffered in the switch.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// The highest table number.
pub const OFPTT_MAX: u8 = 0xfe;
/// All tables (FLOW_MOD delete, flow statistics).
pub const OFPTT_ALL: u8 = 0xff;
/// The default `miss_send_len`.
pub const OFP_DEFAULT_MISS_SEND_LEN: u16 = 128;
/// `max_len` of an output to the controller: the most that can be buffered.
pub const OFPCML_MAX: u16 = 0xffe5;
/// `max_len` of an output to the controller: send the whole packet, unbuffered.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;

// FLOW_MOD commands (`ofp_flow_mod_command`).
/// Add a flow.
pub const OFPFC_ADD: u8 = 0;
/// Modify the actions of every matching flow.
pub const OFPFC_MODIFY: u8 = 1;
/// Modify the flow with exactly this match and priority.
pub const OFPFC_MODIFY_STRICT: u8 = 2;
/// Delete every matching flow.
pub const OFPFC_DELETE: u8 = 3;
/// Delete the flow with exactly this match and priority.
pub const OFPFC_DELETE_STRICT: u8 = 4;

// FLOW_MOD flags (`ofp_flow_mod_flags`).
/// Send FLOW_REMOVED when the flow expires or is deleted.
pub const OFPFF_SEND_FLOW_REM: u16 = 1 << 0;
/// Refuse an add that overlaps a flow of the same priority.
pub const OFPFF_CHECK_OVERLAP: u16 = 1 << 1;
/// Reset the counters of the flows modified.
pub const OFPFF_RESET_COUNTS: u16 = 1 << 2;
/// Do not count packets.
pub const OFPFF_NO_PKT_COUNTS: u16 = 1 << 3;
/// Do not count bytes.
pub const OFPFF_NO_BYT_COUNTS: u16 = 1 << 4;

// Switch capabilities (`ofp_capabilities`).
/// Flow statistics.
pub const OFPC_FLOW_STATS: u32 = 1 << 0;
/// Table statistics.
pub const OFPC_TABLE_STATS: u32 = 1 << 1;
/// Port statistics.
pub const OFPC_PORT_STATS: u32 = 1 << 2;
/// Group statistics.
pub const OFPC_GROUP_STATS: u32 = 1 << 3;
/// Can reassemble IP fragments.
pub const OFPC_IP_REASM: u32 = 1 << 5;
/// Queue statistics.
pub const OFPC_QUEUE_STATS: u32 = 1 << 6;
/// Blocks looping ports.
pub const OFPC_PORT_BLOCKED: u32 = 1 << 8;

// Switch configuration flags (`ofp_config_flags`).
/// No special handling of IP fragments.
pub const OFPC_FRAG_NORMAL: u16 = 0;
/// Drop IP fragments.
pub const OFPC_FRAG_DROP: u16 = 1;
/// Reassemble IP fragments.
pub const OFPC_FRAG_REASM: u16 = 2;
/// The bits of the fragment handling mode.
pub const OFPC_FRAG_MASK: u16 = 3;

// Controller roles (`ofp_controller_role`).
/// Keep the current role.
pub const OFPCR_ROLE_NOCHANGE: u32 = 0;
/// Full access, default.
pub const OFPCR_ROLE_EQUAL: u32 = 1;
/// Full access, at most one master.
pub const OFPCR_ROLE_MASTER: u32 = 2;
/// Read-only access.
pub const OFPCR_ROLE_SLAVE: u32 = 3;

// PACKET_IN reasons (`ofp_packet_in_reason`).
/// No matching flow (table-miss flow entry).
pub const OFPR_NO_MATCH: u8 = 0;
/// An action sent it to the controller.
pub const OFPR_ACTION: u8 = 1;
/// The packet had an invalid TTL.
pub const OFPR_INVALID_TTL: u8 = 2;

// FLOW_REMOVED reasons (`ofp_flow_removed_reason`).
/// The idle timeout expired.
pub const OFPRR_IDLE_TIMEOUT: u8 = 0;
/// The hard timeout expired.
pub const OFPRR_HARD_TIMEOUT: u8 = 1;
/// Deleted by a FLOW_MOD.
pub const OFPRR_DELETE: u8 = 2;
/// Its group was removed.
pub const OFPRR_GROUP_DELETE: u8 = 3;

// PORT_STATUS reasons (`ofp_port_reason`).
/// The port was added.
pub const OFPPR_ADD: u8 = 0;
/// The port was removed.
pub const OFPPR_DELETE: u8 = 1;
/// Some attribute of the port changed.
pub const OFPPR_MODIFY: u8 = 2;

// Port configuration (`ofp_port_config`).
/// Administratively down.
pub const OFPPC_PORT_DOWN: u32 = 1 << 0;
/// Drop all packets received.
pub const OFPPC_NO_RECV: u32 = 1 << 2;
/// Drop packets forwarded to the port.
pub const OFPPC_NO_FWD: u32 = 1 << 5;
/// Do not send PACKET_IN for the port.
pub const OFPPC_NO_PACKET_IN: u32 = 1 << 6;

// Port state (`ofp_port_state`).
/// No physical link.
pub const OFPPS_LINK_DOWN: u32 = 1 << 0;
/// Blocked for flooding.
pub const OFPPS_BLOCKED: u32 = 1 << 1;
/// Live for fast failover.
pub const OFPPS_LIVE: u32 = 1 << 2;

// Port features (`ofp_port_features`).
/// 10 Gb full duplex.
pub const OFPPF_10GB_FD: u32 = 1 << 6;
/// Other rate, not in the list.
pub const OFPPF_OTHER: u32 = 1 << 10;
/// Copper medium.
pub const OFPPF_COPPER: u32 = 1 << 11;
/// Fiber medium.
pub const OFPPF_FIBER: u32 = 1 << 12;

// Error types (`ofp_error_type`) and their codes.
/// HELLO failed.
pub const OFPET_HELLO_FAILED: u16 = 0;
/// No compatible version.
pub const OFPHFC_INCOMPATIBLE: u16 = 0;
/// Permissions error.
pub const OFPHFC_EPERM: u16 = 1;

/// Request was not understood.
pub const OFPET_BAD_REQUEST: u16 = 1;
/// `ofp_header.version` not supported.
pub const OFPBRC_BAD_VERSION: u16 = 0;
/// `ofp_header.type` not supported.
pub const OFPBRC_BAD_TYPE: u16 = 1;
/// Multipart type not supported.
pub const OFPBRC_BAD_MULTIPART: u16 = 2;
/// Experimenter id not supported.
pub const OFPBRC_BAD_EXPERIMENTER: u16 = 3;
/// Experimenter type not supported.
pub const OFPBRC_BAD_EXP_TYPE: u16 = 4;
/// Permissions error.
pub const OFPBRC_EPERM: u16 = 5;
/// Wrong request length for its type.
pub const OFPBRC_BAD_LEN: u16 = 6;
/// The specified buffer has already been used.
pub const OFPBRC_BUFFER_EMPTY: u16 = 7;
/// The specified buffer does not exist.
pub const OFPBRC_BUFFER_UNKNOWN: u16 = 8;
/// Table id invalid or does not exist.
pub const OFPBRC_BAD_TABLE_ID: u16 = 9;
/// Denied because the controller is slave.
pub const OFPBRC_IS_SLAVE: u16 = 10;
/// Invalid port.
pub const OFPBRC_BAD_PORT: u16 = 11;
/// Invalid packet in the packet-out.
pub const OFPBRC_BAD_PACKET: u16 = 12;
/// The multipart request overflowed the assigned buffer.
pub const OFPBRC_MULTIPART_BUFFER_OVERFLOW: u16 = 13;

/// Error in an action description.
pub const OFPET_BAD_ACTION: u16 = 2;
/// Unknown or unsupported action type.
pub const OFPBAC_BAD_TYPE: u16 = 0;
/// Length problem in actions.
pub const OFPBAC_BAD_LEN: u16 = 1;
/// Unknown experimenter id.
pub const OFPBAC_BAD_EXPERIMENTER: u16 = 2;
/// Unknown action for the experimenter id.
pub const OFPBAC_BAD_EXP_TYPE: u16 = 3;
/// Problem validating the output port.
pub const OFPBAC_BAD_OUT_PORT: u16 = 4;
/// Bad action argument.
pub const OFPBAC_BAD_ARGUMENT: u16 = 5;
/// Permissions error.
pub const OFPBAC_EPERM: u16 = 6;
/// Cannot handle this many actions.
pub const OFPBAC_TOO_MANY: u16 = 7;
/// Problem validating the output queue.
pub const OFPBAC_BAD_QUEUE: u16 = 8;
/// Invalid group id in a forward action.
pub const OFPBAC_BAD_OUT_GROUP: u16 = 9;
/// The action cannot apply to this match, or a set-field prerequisite is missing.
pub const OFPBAC_MATCH_INCONSISTENT: u16 = 10;
/// The action order is unsupported for the action list in an apply-actions instruction.
pub const OFPBAC_UNSUPPORTED_ORDER: u16 = 11;
/// The action uses an unsupported tag or encapsulation.
pub const OFPBAC_BAD_TAG: u16 = 12;
/// Unsupported type in a SET_FIELD action.
pub const OFPBAC_BAD_SET_TYPE: u16 = 13;
/// Length problem in a SET_FIELD action.
pub const OFPBAC_BAD_SET_LEN: u16 = 14;
/// Bad argument in a SET_FIELD action.
pub const OFPBAC_BAD_SET_ARGUMENT: u16 = 15;

/// Error in an instruction list.
pub const OFPET_BAD_INSTRUCTION: u16 = 3;
/// Unknown instruction.
pub const OFPBIC_UNKNOWN_INST: u16 = 0;
/// The switch or table does not support the instruction.
pub const OFPBIC_UNSUP_INST: u16 = 1;
/// Invalid table id.
pub const OFPBIC_BAD_TABLE_ID: u16 = 2;
/// Metadata value unsupported by the datapath.
pub const OFPBIC_UNSUP_METADATA: u16 = 3;
/// Metadata mask value unsupported by the datapath.
pub const OFPBIC_UNSUP_METADATA_MASK: u16 = 4;
/// Unknown experimenter id.
pub const OFPBIC_BAD_EXPERIMENTER: u16 = 5;
/// Unknown instruction for the experimenter id.
pub const OFPBIC_BAD_EXP_TYPE: u16 = 6;
/// Length problem in instructions.
pub const OFPBIC_BAD_LEN: u16 = 7;
/// Permissions error.
pub const OFPBIC_EPERM: u16 = 8;

/// Error in a match.
pub const OFPET_BAD_MATCH: u16 = 4;
/// Unsupported match type.
pub const OFPBMC_BAD_TYPE: u16 = 0;
/// Length problem in the match.
pub const OFPBMC_BAD_LEN: u16 = 1;
/// Match uses an unsupported tag or encapsulation.
pub const OFPBMC_BAD_TAG: u16 = 2;
/// Unsupported datalink address mask.
pub const OFPBMC_BAD_DL_ADDR_MASK: u16 = 3;
/// Unsupported network address mask.
pub const OFPBMC_BAD_NW_ADDR_MASK: u16 = 4;
/// Unsupported combination of fields masked or omitted.
pub const OFPBMC_BAD_WILDCARDS: u16 = 5;
/// Unsupported field type in the match.
pub const OFPBMC_BAD_FIELD: u16 = 6;
/// Unsupported value in a match field.
pub const OFPBMC_BAD_VALUE: u16 = 7;
/// Unsupported mask specified in the match.
pub const OFPBMC_BAD_MASK: u16 = 8;
/// A prerequisite was not met.
pub const OFPBMC_BAD_PREREQ: u16 = 9;
/// A field type was duplicated.
pub const OFPBMC_DUP_FIELD: u16 = 10;
/// Permissions error.
pub const OFPBMC_EPERM: u16 = 11;

/// Problem modifying a flow entry.
pub const OFPET_FLOW_MOD_FAILED: u16 = 5;
/// Unspecified error.
pub const OFPFMFC_UNKNOWN: u16 = 0;
/// The flow was not added because the table was full.
pub const OFPFMFC_TABLE_FULL: u16 = 1;
/// The table does not exist.
pub const OFPFMFC_BAD_TABLE_ID: u16 = 2;
/// Attempted to add an overlapping flow with CHECK_OVERLAP set.
pub const OFPFMFC_OVERLAP: u16 = 3;
/// Permissions error.
pub const OFPFMFC_EPERM: u16 = 4;
/// The flow was not added because of an unsupported idle or hard timeout.
pub const OFPFMFC_BAD_TIMEOUT: u16 = 5;
/// Unsupported or unknown command.
pub const OFPFMFC_BAD_COMMAND: u16 = 6;
/// Unsupported or unknown flags.
pub const OFPFMFC_BAD_FLAGS: u16 = 7;

/// Problem modifying a group entry.
pub const OFPET_GROUP_MOD_FAILED: u16 = 6;
/// Port mod request failed.
pub const OFPET_PORT_MOD_FAILED: u16 = 7;
/// The specified port number does not exist.
pub const OFPPMFC_BAD_PORT: u16 = 0;
/// The specified hardware address does not match the port.
pub const OFPPMFC_BAD_HW_ADDR: u16 = 1;
/// The specified config is invalid.
pub const OFPPMFC_BAD_CONFIG: u16 = 2;
/// The specified advertise is invalid.
pub const OFPPMFC_BAD_ADVERTISE: u16 = 3;
/// Permissions error.
pub const OFPPMFC_EPERM: u16 = 4;

/// Table mod request failed.
pub const OFPET_TABLE_MOD_FAILED: u16 = 8;
/// The specified table does not exist.
pub const OFPTMFC_BAD_TABLE: u16 = 0;
/// The specified config is invalid.
pub const OFPTMFC_BAD_CONFIG: u16 = 1;
/// Permissions error.
pub const OFPTMFC_EPERM: u16 = 2;

/// Queue operation failed.
pub const OFPET_QUEUE_OP_FAILED: u16 = 9;

/// Switch config request failed.
pub const OFPET_SWITCH_CONFIG_FAILED: u16 = 10;
/// The specified flags are invalid.
pub const OFPSCFC_BAD_FLAGS: u16 = 0;
/// The specified miss_send_len is invalid.
pub const OFPSCFC_BAD_LEN: u16 = 1;
/// Permissions error.
pub const OFPSCFC_EPERM: u16 = 2;

/// Controller role request failed.
pub const OFPET_ROLE_REQUEST_FAILED: u16 = 11;
/// Stale message: an old generation_id.
pub const OFPRRFC_STALE: u16 = 0;
/// The controller role change is unsupported.
pub const OFPRRFC_UNSUP: u16 = 1;
/// Invalid role.
pub const OFPRRFC_BAD_ROLE: u16 = 2;

/// Error in a meter.
pub const OFPET_METER_MOD_FAILED: u16 = 12;

/// Setting table features failed.
pub const OFPET_TABLE_FEATURES_FAILED: u16 = 13;
/// The specified table does not exist.
pub const OFPTFFC_BAD_TABLE: u16 = 0;
/// Invalid metadata mask.
pub const OFPTFFC_BAD_METADATA: u16 = 1;
/// Unknown property type.
pub const OFPTFFC_BAD_TYPE: u16 = 2;
/// Length problem in properties.
pub const OFPTFFC_BAD_LEN: u16 = 3;
/// Unsupported property value.
pub const OFPTFFC_BAD_ARGUMENT: u16 = 4;
/// Permissions error.
pub const OFPTFFC_EPERM: u16 = 5;

/// Experimenter error messages.
pub const OFPET_EXPERIMENTER: u16 = 0xffff;

/// How many bytes of the offending request an ERROR carries (at least 64, says the spec).
pub const ERROR_DATA_LEN: usize = 64;

/// `ofp_header`, the first 8 bytes of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The protocol version (`VERSION` for 1.3).
    pub version: u8,
    /// One of the `OFPT_*` types.
    pub msg_type: u8,
    /// Length of the whole message, this header included.
    pub length: u16,
    /// Transaction id: a reply carries its request's.
    pub xid: u32,
}

impl Header {
    /// Reads the header at the start of `bytes`; `None` if there are fewer than 8 bytes.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let header = bytes.get(..HEADER_LEN)?;
        Some(Header {
            version: header[HEADER_VERSION],
            msg_type: header[HEADER_TYPE],
            length: u16::from_be_bytes([header[HEADER_LENGTH], header[HEADER_LENGTH + 1]]),
            xid: u32::from_be_bytes([
                header[HEADER_XID],
                header[HEADER_XID + 1],
                header[HEADER_XID + 2],
                header[HEADER_XID + 3],
            ]),
        })
    }

    /// The header's 8 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[HEADER_VERSION] = self.version;
        out[HEADER_TYPE] = self.msg_type;
        out[HEADER_LENGTH..HEADER_XID].copy_from_slice(&self.length.to_be_bytes());
        out[HEADER_XID..].copy_from_slice(&self.xid.to_be_bytes());
        out
    }
}

/// Why a message was refused, as the OpenFlow error to send back (type, code); the session
/// sends ERROR with the request's xid and its first [`ERROR_DATA_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// One of the `OFPET_*` error types.
    pub err_type: u16,
    /// The code within the type (`OFPBRC_*`, `OFPBMC_*`, ...).
    pub code: u16,
    /// What was wrong, in words for the log.
    pub detail: String,
}

impl DecodeError {
    /// An error of (`err_type`, `code`) with `detail` for the log.
    pub fn new(err_type: u16, code: u16, detail: impl Into<String>) -> DecodeError {
        DecodeError {
            err_type,
            code,
            detail: detail.into(),
        }
    }

    /// BAD_REQUEST/BAD_LEN.
    pub(crate) fn bad_len(detail: impl Into<String>) -> DecodeError {
        DecodeError::new(OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, detail)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenFlow error type {} code {}: {}",
            self.err_type, self.code, self.detail
        )
    }
}

impl std::error::Error for DecodeError {}
