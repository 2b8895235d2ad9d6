//! Instructions (what a flow entry does: go to a table, apply or write actions, ...) and the
//! actions inside them and inside PACKET_OUT.
//!
//! ```text
//! ofp_instruction: | type (2) | len (2, multiple of 8) | body |
//! ofp_action:      | type (2) | len (2, multiple of 8) | body |
//! ```
//!
//! OUTPUT, GROUP and SET_FIELD actions are typed; any other action is kept raw
//! ([`Action::Other`]) so that the caller can refuse it with BAD_ACTION/BAD_TYPE.

use super::buf::{Put, Reader};
use super::oxm::{decode_oxm, encode_oxm, Oxm, OxmFault};
use super::{DecodeError, OFPBAC_BAD_LEN, OFPBAC_BAD_SET_ARGUMENT, OFPBAC_BAD_SET_LEN};
use super::{OFPBAC_BAD_SET_TYPE, OFPBIC_BAD_LEN, OFPET_BAD_ACTION, OFPET_BAD_INSTRUCTION};

/// Go to a later table.
pub const OFPIT_GOTO_TABLE: u16 = 1;
/// Write metadata under a mask.
pub const OFPIT_WRITE_METADATA: u16 = 2;
/// Merge actions into the action set.
pub const OFPIT_WRITE_ACTIONS: u16 = 3;
/// Apply actions at once.
pub const OFPIT_APPLY_ACTIONS: u16 = 4;
/// Clear the action set.
pub const OFPIT_CLEAR_ACTIONS: u16 = 5;
/// Apply a meter.
pub const OFPIT_METER: u16 = 6;
/// Experimenter instruction.
pub const OFPIT_EXPERIMENTER: u16 = 0xffff;

/// Output to a port.
pub const OFPAT_OUTPUT: u16 = 0;
/// Copy TTL outwards.
pub const OFPAT_COPY_TTL_OUT: u16 = 11;
/// Copy TTL inwards.
pub const OFPAT_COPY_TTL_IN: u16 = 12;
/// Set the MPLS TTL.
pub const OFPAT_SET_MPLS_TTL: u16 = 15;
/// Decrement the MPLS TTL.
pub const OFPAT_DEC_MPLS_TTL: u16 = 16;
/// Push a VLAN tag.
pub const OFPAT_PUSH_VLAN: u16 = 17;
/// Pop the outer VLAN tag.
pub const OFPAT_POP_VLAN: u16 = 18;
/// Push an MPLS tag.
pub const OFPAT_PUSH_MPLS: u16 = 19;
/// Pop the outer MPLS tag.
pub const OFPAT_POP_MPLS: u16 = 20;
/// Set the queue id.
pub const OFPAT_SET_QUEUE: u16 = 21;
/// Apply a group.
pub const OFPAT_GROUP: u16 = 22;
/// Set the IP TTL.
pub const OFPAT_SET_NW_TTL: u16 = 23;
/// Decrement the IP TTL.
pub const OFPAT_DEC_NW_TTL: u16 = 24;
/// Set a header field from an OXM TLV.
pub const OFPAT_SET_FIELD: u16 = 25;
/// Push a PBB service tag.
pub const OFPAT_PUSH_PBB: u16 = 26;
/// Pop the outer PBB service tag.
pub const OFPAT_POP_PBB: u16 = 27;
/// Experimenter action.
pub const OFPAT_EXPERIMENTER: u16 = 0xffff;

/// Length of the type and len fields of an instruction or action.
const TLV_HEADER_LEN: usize = 4;
/// `ofp_instruction_goto_table`, `_actions` (header), `_meter`, `_experimenter` (header) and
/// CLEAR_ACTIONS: type, len, 4 bytes.
const INSTRUCTION_SHORT_LEN: usize = 8;
/// `ofp_instruction_write_metadata`.
const INSTRUCTION_WRITE_METADATA_LEN: usize = 24;
/// `ofp_action_output`.
const ACTION_OUTPUT_LEN: usize = 16;
/// `ofp_action_group`.
const ACTION_GROUP_LEN: usize = 8;
/// The shortest action (`ofp_action_header` with its padding).
const ACTION_MIN_LEN: usize = 8;

/// One instruction of a flow entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// GOTO_TABLE: continue in table `0`.
    GotoTable(u8),
    /// WRITE_METADATA.
    WriteMetadata {
        /// Value to write.
        metadata: u64,
        /// The bits of the metadata to change.
        mask: u64,
    },
    /// WRITE_ACTIONS: merge into the action set.
    WriteActions(Vec<Action>),
    /// APPLY_ACTIONS: apply at once, in order.
    ApplyActions(Vec<Action>),
    /// CLEAR_ACTIONS.
    ClearActions,
    /// METER with this meter id.
    Meter(u32),
    /// EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// The bytes after the experimenter id, padding included, as sent.
        data: Vec<u8>,
    },
    /// A type this codec does not know (the caller answers BAD_INSTRUCTION/UNKNOWN_INST).
    Unknown {
        /// The instruction type.
        inst_type: u16,
    },
}

impl Instruction {
    /// The `OFPIT_*` type.
    pub fn instruction_type(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => OFPIT_GOTO_TABLE,
            Instruction::WriteMetadata { .. } => OFPIT_WRITE_METADATA,
            Instruction::WriteActions(_) => OFPIT_WRITE_ACTIONS,
            Instruction::ApplyActions(_) => OFPIT_APPLY_ACTIONS,
            Instruction::ClearActions => OFPIT_CLEAR_ACTIONS,
            Instruction::Meter(_) => OFPIT_METER,
            Instruction::Experimenter { .. } => OFPIT_EXPERIMENTER,
            Instruction::Unknown { inst_type } => *inst_type,
        }
    }
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// OUTPUT to `port` (an `OFPP_*` reserved port or a port number).
    Output {
        /// The port.
        port: u32,
        /// With `OFPP_CONTROLLER`: how many bytes of the packet to send.
        max_len: u16,
    },
    /// GROUP: process the packet through this group.
    Group(u32),
    /// SET_FIELD: write the field of this OXM (never masked).
    SetField(Oxm),
    /// Any other action, its body (after type and length, padding included) as sent.
    Other {
        /// The `OFPAT_*` type.
        action_type: u16,
        /// The bytes after the 4-byte type and length.
        body: Vec<u8>,
    },
}

impl Action {
    /// The `OFPAT_*` type.
    pub fn action_type(&self) -> u16 {
        match self {
            Action::Output { .. } => OFPAT_OUTPUT,
            Action::Group(_) => OFPAT_GROUP,
            Action::SetField(_) => OFPAT_SET_FIELD,
            Action::Other { action_type, .. } => *action_type,
        }
    }
}

/// Splits `bytes` into (type, whole TLV) of instructions or actions: lengths of at least
/// `min`, multiples of 8, inside `bytes`; otherwise (err_type, code).
fn tlvs<'a>(
    bytes: &'a [u8],
    min: usize,
    err_type: u16,
    code: u16,
    what: &str,
) -> Result<Vec<(u16, &'a [u8])>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let bad = |detail: String| DecodeError::new(err_type, code, format!("{what}: {detail}"));
        let [t0, t1, l0, l1, ..] = *rest else {
            return Err(bad(format!("{} trailing bytes", rest.len())));
        };
        let tlv_type = u16::from_be_bytes([t0, t1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len < min || len % 8 != 0 || len > rest.len() {
            return Err(bad(format!(
                "type {tlv_type} has length {len} ({} bytes left)",
                rest.len()
            )));
        }
        out.push((tlv_type, &rest[..len]));
        rest = &rest[len..];
    }
    Ok(out)
}

/// Decodes an instruction list that fills `bytes`.
pub(crate) fn decode_instructions(bytes: &[u8]) -> Result<Vec<Instruction>, DecodeError> {
    let mut out = Vec::new();
    for (inst_type, tlv) in tlvs(
        bytes,
        INSTRUCTION_SHORT_LEN,
        OFPET_BAD_INSTRUCTION,
        OFPBIC_BAD_LEN,
        "instruction",
    )? {
        let mut r = Reader::new(
            &tlv[TLV_HEADER_LEN..],
            OFPET_BAD_INSTRUCTION,
            OFPBIC_BAD_LEN,
            "instruction",
        );
        let exact = |want: usize| {
            if tlv.len() == want {
                Ok(())
            } else {
                Err(DecodeError::new(
                    OFPET_BAD_INSTRUCTION,
                    OFPBIC_BAD_LEN,
                    format!(
                        "instruction {inst_type} has length {}, not {want}",
                        tlv.len()
                    ),
                ))
            }
        };
        out.push(match inst_type {
            OFPIT_GOTO_TABLE => {
                exact(INSTRUCTION_SHORT_LEN)?;
                Instruction::GotoTable(r.u8()?)
            }
            OFPIT_WRITE_METADATA => {
                exact(INSTRUCTION_WRITE_METADATA_LEN)?;
                r.skip(4)?;
                Instruction::WriteMetadata {
                    metadata: r.u64()?,
                    mask: r.u64()?,
                }
            }
            OFPIT_WRITE_ACTIONS | OFPIT_APPLY_ACTIONS => {
                r.skip(4)?;
                let actions = decode_actions(r.rest())?;
                if inst_type == OFPIT_WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            OFPIT_CLEAR_ACTIONS => {
                exact(INSTRUCTION_SHORT_LEN)?;
                Instruction::ClearActions
            }
            OFPIT_METER => {
                exact(INSTRUCTION_SHORT_LEN)?;
                Instruction::Meter(r.u32()?)
            }
            OFPIT_EXPERIMENTER => Instruction::Experimenter {
                experimenter: r.u32()?,
                data: r.rest().to_vec(),
            },
            _ => Instruction::Unknown { inst_type },
        });
    }
    Ok(out)
}

/// Appends an instruction list. An unknown instruction is written as its bare header (8
/// bytes); experimenter data is padded to a multiple of 8.
pub(crate) fn encode_instructions(out: &mut Vec<u8>, instructions: &[Instruction]) {
    for inst in instructions {
        let start = out.len();
        out.put_u16(inst.instruction_type());
        out.put_u16(0);
        match inst {
            Instruction::GotoTable(table) => {
                out.put_u8(*table);
                out.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.put_zeros(4);
                out.put_u64(*metadata);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(actions) | Instruction::ApplyActions(actions) => {
                out.put_zeros(4);
                encode_actions(out, actions);
            }
            Instruction::ClearActions | Instruction::Unknown { .. } => out.put_zeros(4),
            Instruction::Meter(meter) => out.put_u32(*meter),
            Instruction::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
                out.pad_to_8(start);
            }
        }
        out.patch_len(start, 2);
    }
}

/// Decodes an action list that fills `bytes`.
pub(crate) fn decode_actions(bytes: &[u8]) -> Result<Vec<Action>, DecodeError> {
    let mut out = Vec::new();
    for (action_type, tlv) in tlvs(
        bytes,
        ACTION_MIN_LEN,
        OFPET_BAD_ACTION,
        OFPBAC_BAD_LEN,
        "action",
    )? {
        let body = &tlv[TLV_HEADER_LEN..];
        let mut r = Reader::new(body, OFPET_BAD_ACTION, OFPBAC_BAD_LEN, "action");
        let exact = |want: usize| {
            if tlv.len() == want {
                Ok(())
            } else {
                Err(DecodeError::new(
                    OFPET_BAD_ACTION,
                    OFPBAC_BAD_LEN,
                    format!("action {action_type} has length {}, not {want}", tlv.len()),
                ))
            }
        };
        out.push(match action_type {
            OFPAT_OUTPUT => {
                exact(ACTION_OUTPUT_LEN)?;
                Action::Output {
                    port: r.u32()?,
                    max_len: r.u16()?,
                }
            }
            OFPAT_GROUP => {
                exact(ACTION_GROUP_LEN)?;
                Action::Group(r.u32()?)
            }
            OFPAT_SET_FIELD => {
                let set = |code, detail: String| {
                    DecodeError::new(OFPET_BAD_ACTION, code, format!("set_field: {detail}"))
                };
                let (oxm, _) = decode_oxm(body).map_err(|(fault, detail)| {
                    let code = match fault {
                        OxmFault::Len => OFPBAC_BAD_SET_LEN,
                        OxmFault::Field => OFPBAC_BAD_SET_TYPE,
                        OxmFault::Mask => OFPBAC_BAD_SET_ARGUMENT,
                    };
                    set(code, detail)
                })?;
                if oxm.mask.is_some() {
                    return Err(set(OFPBAC_BAD_SET_ARGUMENT, "masked field".to_string()));
                }
                Action::SetField(oxm)
            }
            _ => Action::Other {
                action_type,
                body: body.to_vec(),
            },
        });
    }
    Ok(out)
}

/// Appends an action list. Each action is padded to a multiple of 8 bytes.
pub(crate) fn encode_actions(out: &mut Vec<u8>, actions: &[Action]) {
    for action in actions {
        let start = out.len();
        out.put_u16(action.action_type());
        out.put_u16(0);
        match action {
            Action::Output { port, max_len } => {
                out.put_u32(*port);
                out.put_u16(*max_len);
                out.put_zeros(6);
            }
            Action::Group(group) => out.put_u32(*group),
            Action::SetField(oxm) => encode_oxm(out, oxm),
            Action::Other { body, .. } => out.extend_from_slice(body),
        }
        out.pad_to_8(start);
        out.patch_len(start, 2);
    }
}
