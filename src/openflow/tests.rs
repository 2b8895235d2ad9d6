//! Property tests (round trips of generated messages of every kind; decoding arbitrary and
//! mutated bytes never panics) and one test per refusal, with the error code it must carry.

use proptest::collection::vec;
use proptest::prelude::*;

use super::samples::{hex, samples};
use super::*;

// ---- generators ----

fn arb_basic_oxm(allow_mask: bool) -> impl Strategy<Value = Oxm> {
    (
        0u8..40,
        any::<bool>(),
        vec(any::<u8>(), 16),
        vec(any::<u8>(), 16),
    )
        .prop_map(move |(field, masked, value, mask)| {
            let (len, maskable) = basic_field(field).expect("field < 40");
            Oxm {
                class: OFPXMC_OPENFLOW_BASIC,
                field,
                value: value[..len].to_vec(),
                mask: (allow_mask && maskable && masked).then(|| mask[..len].to_vec()),
            }
        })
}

fn arb_other_oxm() -> impl Strategy<Value = Oxm> {
    (
        prop_oneof![
            Just(OFPXMC_NXM_0),
            Just(OFPXMC_NXM_1),
            Just(OFPXMC_EXPERIMENTER)
        ],
        0u8..128,
        vec(any::<u8>(), 0..12),
        any::<bool>(),
    )
        .prop_map(|(class, field, value, masked)| Oxm {
            class,
            field,
            mask: masked.then(|| value.iter().map(|b| !b).collect()),
            value,
        })
}

fn arb_match() -> impl Strategy<Value = Vec<Oxm>> {
    vec(
        prop_oneof![4 => arb_basic_oxm(true), 1 => arb_other_oxm()],
        0..8,
    )
    .prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|o| seen.insert((o.class, o.field)));
        v
    })
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        any::<u32>().prop_map(Action::Group),
        arb_basic_oxm(false).prop_map(Action::SetField),
        (any::<u16>(), 0usize..4, any::<u8>())
            .prop_filter("typed actions", |(t, _, _)| ![
                OFPAT_OUTPUT,
                OFPAT_GROUP,
                OFPAT_SET_FIELD
            ]
            .contains(t))
            .prop_map(|(action_type, words, fill)| Action::Other {
                action_type,
                body: vec![fill; 4 + 8 * words],
            }),
    ]
}

fn arb_instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        vec(arb_action(), 0..4).prop_map(Instruction::WriteActions),
        vec(arb_action(), 0..4).prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
        (any::<u32>(), 0usize..3, any::<u8>()).prop_map(|(experimenter, words, fill)| {
            Instruction::Experimenter {
                experimenter,
                data: vec![fill; 8 * words],
            }
        }),
        (7u16..0xffff).prop_map(|inst_type| Instruction::Unknown { inst_type }),
    ]
}

/// Printable ASCII without NUL, at most `max` bytes: what survives a fixed-width field.
fn arb_name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("regex")
}

fn arb_port() -> impl Strategy<Value = PortDesc> {
    (
        any::<u32>(),
        any::<[u8; 6]>(),
        arb_name(15),
        any::<[u32; 8]>(),
    )
        .prop_map(|(port_no, hw_addr, name, v)| PortDesc {
            port_no,
            hw_addr,
            name,
            config: v[0],
            state: v[1],
            curr: v[2],
            advertised: v[3],
            supported: v[4],
            peer: v[5],
            curr_speed: v[6],
            max_speed: v[7],
        })
}

fn arb_flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (any::<(u8, u32, u32, u64, u64)>(), arb_match()).prop_map(
        |((table_id, out_port, out_group, cookie, cookie_mask), match_)| FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            match_,
        },
    )
}

fn arb_flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        any::<(u8, u32, u32, u16, u16, u16, u16)>(),
        any::<(u64, u64, u64)>(),
        arb_match(),
        vec(arb_instruction(), 0..4),
    )
        .prop_map(
            |(
                (
                    table_id,
                    duration_sec,
                    duration_nsec,
                    priority,
                    idle_timeout,
                    hard_timeout,
                    flags,
                ),
                (cookie, packet_count, byte_count),
                match_,
                instructions,
            )| FlowStats {
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
            },
        )
}

fn arb_prop() -> impl Strategy<Value = TableFeatureProp> {
    use TableFeatureProp as P;
    let ids = || vec(any::<u16>(), 0..6);
    let oxms = || vec(any::<u32>(), 0..6);
    prop_oneof![
        ids().prop_map(P::Instructions),
        ids().prop_map(P::InstructionsMiss),
        vec(any::<u8>(), 0..9).prop_map(P::NextTables),
        vec(any::<u8>(), 0..9).prop_map(P::NextTablesMiss),
        ids().prop_map(P::WriteActions),
        ids().prop_map(P::WriteActionsMiss),
        ids().prop_map(P::ApplyActions),
        ids().prop_map(P::ApplyActionsMiss),
        oxms().prop_map(P::Match),
        oxms().prop_map(P::Wildcards),
        oxms().prop_map(P::WriteSetfield),
        oxms().prop_map(P::WriteSetfieldMiss),
        oxms().prop_map(P::ApplySetfield),
        oxms().prop_map(P::ApplySetfieldMiss),
        (
            prop_oneof![Just(9u16), Just(11), 16u16..=0xffff],
            vec(any::<u8>(), 0..13)
        )
            .prop_map(|(prop_type, body)| P::Other { prop_type, body }),
    ]
}

fn arb_table_features() -> impl Strategy<Value = TableFeatures> {
    (
        any::<(u8, u64, u64, u32, u32)>(),
        arb_name(31),
        vec(arb_prop(), 0..6),
    )
        .prop_map(
            |(
                (table_id, metadata_match, metadata_write, config, max_entries),
                name,
                properties,
            )| {
                TableFeatures {
                    table_id,
                    name,
                    metadata_match,
                    metadata_write,
                    config,
                    max_entries,
                    properties,
                }
            },
        )
}

fn arb_port_stats() -> impl Strategy<Value = PortStats> {
    (any::<u32>(), any::<[u64; 12]>(), any::<(u32, u32)>()).prop_map(|(port_no, c, (s, ns))| {
        PortStats {
            port_no,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec: s,
            duration_nsec: ns,
        }
    })
}

fn arb_mp_request() -> impl Strategy<Value = MultipartRequestBody> {
    use MultipartRequestBody as B;
    prop_oneof![
        Just(B::Desc),
        arb_flow_stats_request().prop_map(B::Flow),
        arb_flow_stats_request().prop_map(B::Aggregate),
        Just(B::Table),
        any::<u32>().prop_map(|port_no| B::PortStats { port_no }),
        Just(B::PortDesc),
        vec(arb_table_features(), 0..3).prop_map(B::TableFeatures),
        (5u16..12, vec(any::<u8>(), 0..24)).prop_map(|(mp_type, body)| B::Other { mp_type, body }),
    ]
}

fn arb_mp_reply() -> impl Strategy<Value = MultipartReplyBody> {
    use MultipartReplyBody as B;
    prop_oneof![
        (
            arb_name(255),
            arb_name(255),
            arb_name(255),
            arb_name(31),
            arb_name(255)
        )
            .prop_map(
                |(mfr_desc, hw_desc, sw_desc, serial_num, dp_desc)| B::Desc {
                    mfr_desc,
                    hw_desc,
                    sw_desc,
                    serial_num,
                    dp_desc
                }
            ),
        vec(arb_flow_stats(), 0..4).prop_map(B::Flow),
        any::<(u64, u64, u32)>().prop_map(|(packet_count, byte_count, flow_count)| {
            B::Aggregate {
                packet_count,
                byte_count,
                flow_count,
            }
        }),
        vec(any::<(u8, u32, u64, u64)>(), 0..4).prop_map(|v| B::Table(
            v.into_iter()
                .map(
                    |(table_id, active_count, lookup_count, matched_count)| TableStats {
                        table_id,
                        active_count,
                        lookup_count,
                        matched_count
                    }
                )
                .collect()
        )),
        vec(arb_port_stats(), 0..4).prop_map(B::PortStats),
        vec(arb_port(), 0..4).prop_map(B::PortDesc),
        vec(arb_table_features(), 0..3).prop_map(B::TableFeatures),
        (5u16..12, vec(any::<u8>(), 0..24)).prop_map(|(mp_type, body)| B::Other { mp_type, body }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let bytes = || vec(any::<u8>(), 0..64);
    let async_config = || {
        any::<[u32; 6]>().prop_map(|m| AsyncConfig {
            packet_in_mask: [m[0], m[1]],
            port_status_mask: [m[2], m[3]],
            flow_removed_mask: [m[4], m[5]],
        })
    };
    let config = || {
        any::<(u16, u16)>().prop_map(|(flags, miss_send_len)| SwitchConfig {
            flags,
            miss_send_len,
        })
    };
    let role = || {
        any::<(u32, u64)>().prop_map(|(role, generation_id)| Role {
            role,
            generation_id,
        })
    };
    prop_oneof![
        any::<Option<u32>>().prop_map(|versions| Message::Hello { versions }),
        (any::<u16>(), any::<u16>(), bytes()).prop_map(|(err_type, code, data)| Message::Error {
            err_type,
            code,
            data
        }),
        bytes().prop_map(Message::EchoRequest),
        bytes().prop_map(Message::EchoReply),
        (any::<u32>(), any::<u32>(), bytes()).prop_map(|(experimenter, exp_type, data)| {
            Message::Experimenter {
                experimenter,
                exp_type,
                data,
            }
        }),
        Just(Message::FeaturesRequest),
        any::<(u64, u32, u8, u8, u32)>().prop_map(
            |(datapath_id, n_buffers, n_tables, auxiliary_id, capabilities)| {
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                })
            }
        ),
        Just(Message::GetConfigRequest),
        config().prop_map(Message::GetConfigReply),
        config().prop_map(Message::SetConfig),
        (any::<(u32, u16, u8, u8, u64)>(), arb_match(), bytes()).prop_map(
            |((buffer_id, total_len, reason, table_id, cookie), match_, data)| {
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    match_,
                    data,
                })
            }
        ),
        (
            any::<(u64, u16, u8, u8, u32, u32)>(),
            any::<(u16, u16, u64, u64)>(),
            arb_match()
        )
            .prop_map(
                |(
                    (cookie, priority, reason, table_id, duration_sec, duration_nsec),
                    (idle_timeout, hard_timeout, packet_count, byte_count),
                    match_,
                )| {
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
            ),
        (any::<u8>(), arb_port()).prop_map(|(reason, port)| Message::PortStatus { reason, port }),
        (any::<(u32, u32)>(), vec(arb_action(), 0..5), bytes()).prop_map(
            |((buffer_id, in_port), actions, data)| {
                Message::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data,
                })
            }
        ),
        (
            any::<(u64, u64, u8, u8, u16, u16, u16)>(),
            any::<(u32, u32, u32, u16)>(),
            arb_match(),
            vec(arb_instruction(), 0..5)
        )
            .prop_map(
                |(
                    (cookie, cookie_mask, table_id, command, idle_timeout, hard_timeout, priority),
                    (buffer_id, out_port, out_group, flags),
                    match_,
                    instructions,
                )| {
                    Message::FlowMod(FlowMod {
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
                        instructions,
                    })
                }
            ),
        (any::<u16>(), arb_mp_request())
            .prop_map(|(flags, body)| Message::MultipartRequest(MultipartRequest { flags, body })),
        (any::<u16>(), arb_mp_reply())
            .prop_map(|(flags, body)| Message::MultipartReply(MultipartReply { flags, body })),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        role().prop_map(Message::RoleRequest),
        role().prop_map(Message::RoleReply),
        Just(Message::GetAsyncRequest),
        async_config().prop_map(Message::GetAsyncReply),
        async_config().prop_map(Message::SetAsync),
        prop_oneof![
            Just(OFPT_GROUP_MOD),
            Just(OFPT_PORT_MOD),
            Just(OFPT_TABLE_MOD),
            Just(OFPT_QUEUE_GET_CONFIG_REQUEST),
            Just(OFPT_QUEUE_GET_CONFIG_REPLY),
            OFPT_METER_MOD..=u8::MAX,
        ]
        .prop_map(|msg_type| Message::Unknown { msg_type }),
    ]
}

/// Every valid message we hold: our samples and the captured traffic.
fn seeds() -> Vec<Vec<u8>> {
    samples()
        .into_iter()
        .map(|(_, xid, m)| m.encode(xid))
        .chain(super::vectors::CAPTURED.iter().map(|(_, h)| hex(h)))
        .collect()
}

/// Decodes `bytes`; if that succeeds, what it re-encodes to must decode too, and from then
/// on encoding and decoding are each other's inverse (the first decode may normalise: a
/// non-UTF-8 name, padding bytes, a HELLO's extra elements).
fn check_decode(bytes: &[u8]) {
    if let Ok((xid, message)) = Message::decode(bytes) {
        let again = message.encode(xid);
        let (xid2, message2) = Message::decode(&again)
            .unwrap_or_else(|e| panic!("re-encoding of {message:?} does not decode: {e}"));
        assert_eq!(xid2, xid);
        assert_eq!(Message::decode(&message2.encode(xid)), Ok((xid, message2)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_is_identity(message in arb_message(), xid in any::<u32>()) {
        let bytes = message.encode(xid);
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(Header::parse(&bytes).map(|h| usize::from(h.length)), Some(bytes.len()));
        prop_assert_eq!(Message::decode(&bytes), Ok((xid, message)));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..300)) {
        check_decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bodies(
        msg_type in 0u8..32,
        body in vec(any::<u8>(), 0..300),
    ) {
        // A correct header, so that the body parsers are reached.
        let mut bytes = Header { version: VERSION, msg_type, length: 0, xid: 1 }.to_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        check_decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_vectors(
        seed in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        fix_length in any::<bool>(),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if fix_length {
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        check_decode(&bytes);
    }

    #[test]
    fn decode_never_panics_with_a_lying_length(
        seed in any::<prop::sample::Index>(),
        length in any::<u16>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        check_decode(&bytes);
        bytes.truncate(cut.index(bytes.len() + 1));
        check_decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_lying_inner_lengths(
        seed in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        value in prop_oneof![Just(0u16), Just(4), Just(12), Just(0xffff), any::<u16>()],
    ) {
        // Overwrite a 16-bit field anywhere past the header: an OXM, action, instruction,
        // match, property or entry length when it lands on one.
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        if bytes.len() > HEADER_LEN + 2 {
            let i = HEADER_LEN + at.index(bytes.len() - HEADER_LEN - 1);
            bytes[i..i + 2].copy_from_slice(&value.to_be_bytes());
            check_decode(&bytes);
        }
    }
}

// ---- long replies ----

#[test]
fn hundred_thousand_flow_stats_split_into_messages_that_fit() {
    let flows: Vec<FlowStats> = (0..100_000u32)
        .map(|i| FlowStats {
            table_id: 0,
            duration_sec: i,
            duration_nsec: 0,
            priority: (i % 65536) as u16,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: u64::from(i),
            packet_count: u64::from(i) * 3,
            byte_count: u64::from(i) * 300,
            match_: vec![
                Oxm::eth_type(0x0800),
                Oxm::ipv4_dst_masked(i.into(), std::net::Ipv4Addr::new(255, 255, 255, 255)),
            ],
            instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                port: i % 7 + 1,
                max_len: 0,
            }])],
        })
        .collect();
    let reply = MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow(flows.clone()),
    };
    let messages = encode_multipart_reply(77, &reply);
    assert!(messages.len() > 100, "{} messages", messages.len());
    let mut back = Vec::new();
    for (i, bytes) in messages.iter().enumerate() {
        assert!(bytes.len() <= MAX_MESSAGE_LEN);
        let last = i == messages.len() - 1;
        match Message::decode(bytes) {
            Ok((
                77,
                Message::MultipartReply(MultipartReply {
                    flags,
                    body: MultipartReplyBody::Flow(v),
                }),
            )) => {
                assert_eq!(flags & OFPMPF_REPLY_MORE != 0, !last, "message {i}");
                assert!(!v.is_empty());
                back.extend(v);
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert_eq!(back, flows);
}

#[test]
fn a_short_reply_is_one_message_equal_to_encode() {
    for (name, xid, message) in samples() {
        if let Message::MultipartReply(reply) = &message {
            assert_eq!(
                encode_multipart_reply(xid, reply),
                vec![message.encode(xid)],
                "{name}"
            );
        }
    }
    let empty = MultipartReply {
        flags: 0,
        body: MultipartReplyBody::PortStats(vec![]),
    };
    let messages = encode_multipart_reply(1, &empty);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].len(), MULTIPART_HEADER_LEN);
}

#[test]
fn long_port_desc_and_table_replies_split_too() {
    let ports: Vec<PortDesc> = (0..2000)
        .map(|i| PortDesc {
            port_no: i,
            hw_addr: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            name: format!("tun{i}"),
            config: 0,
            state: 0,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 0,
            max_speed: 0,
        })
        .collect();
    let messages = encode_multipart_reply(
        5,
        &MultipartReply {
            flags: 0,
            body: MultipartReplyBody::PortDesc(ports.clone()),
        },
    );
    // 65535 - 16 header bytes hold 1023 ports of 64 bytes.
    assert_eq!(messages.len(), 2);
    let mut back = Vec::new();
    for m in &messages {
        assert!(m.len() <= MAX_MESSAGE_LEN);
        if let Ok((
            _,
            Message::MultipartReply(MultipartReply {
                body: MultipartReplyBody::PortDesc(v),
                ..
            }),
        )) = Message::decode(m)
        {
            back.extend(v);
        }
    }
    assert_eq!(back, ports);
}

// ---- refusals, one per code ----

/// The captured `add-flow ...,cookie=0x1234,idle_timeout=30,...,nw_src=192.168.1.0/24,
/// actions=output:1,output:3`: match at 48 (eth_type, masked ipv4_src: length 22, padded
/// 24), instructions at 72 (APPLY_ACTIONS of two OUTPUTs).
fn flow_mod_bytes() -> Vec<u8> {
    hex("040e007000000006000000000000123400000000000000000000001e012c00c8ffffffffffffffffffffffff000100000001001680000a02080080001708c0a80100ffffff00000000040028000000000000001000000001000000000000000000000010000000030000000000000000")
}
const MATCH_AT: usize = 48;
const OXM_AT: usize = MATCH_AT + 4;
const INSTRUCTION_AT: usize = 72;
const ACTION_AT: usize = INSTRUCTION_AT + 8;

fn code(bytes: &[u8]) -> (u16, u16) {
    match Message::decode(bytes) {
        Err(e) => {
            assert!(!e.detail.is_empty());
            (e.err_type, e.code)
        }
        Ok(m) => panic!("decoded: {m:?}"),
    }
}

fn set16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn the_flow_mod_fixture_decodes() {
    let (xid, m) = Message::decode(&flow_mod_bytes()).expect("decodes");
    assert_eq!(xid, 6);
    assert!(matches!(
        m,
        Message::FlowMod(FlowMod { cookie: 0x1234, .. })
    ));
}

#[test]
fn header_errors() {
    assert_eq!(Header::parse(&[4, 0, 0]), None);
    assert_eq!(code(&[4, 0, 0]), (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN));
    let mut b = flow_mod_bytes();
    set16(&mut b, 2, 0x71);
    assert_eq!(code(&b), (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN));
    set16(&mut b, 2, 4);
    assert_eq!(code(&b), (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN));
    let mut b = flow_mod_bytes();
    b[0] = 1;
    assert_eq!(code(&b), (OFPET_BAD_REQUEST, OFPBRC_BAD_VERSION));
    // FEATURES_REQUEST and BARRIER_REQUEST take no body.
    assert_eq!(
        code(&hex("040500090000000100")),
        (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)
    );
    assert_eq!(
        code(&hex("041400090000000100")),
        (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)
    );
}

#[test]
fn hello_of_any_version_is_accepted() {
    // An OpenFlow 1.0 HELLO: no elements.
    assert_eq!(
        Message::decode(&hex("0100000800000001")),
        Ok((1, Message::Hello { versions: None }))
    );
    // An unknown element (type 7) before the bitmap is skipped; padding of 4 follows it.
    assert_eq!(
        Message::decode(&hex(
            "04000020000000020007000c0102030405060708000000000001000800000012"
        )),
        Ok((
            2,
            Message::Hello {
                versions: Some(0x12)
            }
        ))
    );
    // A bitmap element that runs past the message ends the list.
    assert_eq!(
        Message::decode(&hex("04000010000000030001001000000010")),
        Ok((3, Message::Hello { versions: None }))
    );
}

#[test]
fn unknown_types_decode_for_the_caller_to_refuse() {
    // PORT_MOD as ovs-ofctl mod-port sends it, and an unassigned type.
    assert_eq!(
        Message::decode(&hex(
            "04100028000000040000000100000000020000000001000000000001000000010000000000000000"
        )),
        Ok((
            4,
            Message::Unknown {
                msg_type: OFPT_PORT_MOD
            }
        ))
    );
    assert_eq!(
        Message::decode(&hex("04c8000800000005")),
        Ok((5, Message::Unknown { msg_type: 200 }))
    );
}

#[test]
fn match_errors() {
    let mut b = flow_mod_bytes();
    set16(&mut b, MATCH_AT, OFPMT_STANDARD);
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_TYPE));

    // Match length running past the message.
    let mut b = flow_mod_bytes();
    set16(&mut b, MATCH_AT + 2, 0x200);
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_LEN));

    // An OXM length running past the match: eth_type says 9 bytes.
    let mut b = flow_mod_bytes();
    b[OXM_AT + 3] = 9;
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_LEN));

    // A basic field of the wrong length: eth_type of 1 byte (the rest then misparses, but
    // the first fault is the length).
    let mut b = flow_mod_bytes();
    b[OXM_AT + 3] = 1;
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_LEN));

    // A mask on eth_type, which takes none.
    let mut b = flow_mod_bytes();
    b[OXM_AT + 2] |= 1;
    b[OXM_AT + 3] = 4;
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_MASK));

    // A basic field 1.3 does not define (50).
    let mut b = flow_mod_bytes();
    b[OXM_AT + 2] = 50 << 1;
    assert_eq!(code(&b), (OFPET_BAD_MATCH, OFPBMC_BAD_FIELD));

    // A field twice (eth_type), built by encoding: editing bytes would break a length first.
    let dup = Message::FlowMod(FlowMod {
        match_: vec![Oxm::eth_type(0x800), Oxm::in_port(1), Oxm::eth_type(0x86dd)],
        ..match Message::decode(&flow_mod_bytes()) {
            Ok((_, Message::FlowMod(f))) => f,
            other => panic!("{other:?}"),
        }
    });
    assert_eq!(code(&dup.encode(1)), (OFPET_BAD_MATCH, OFPBMC_DUP_FIELD));
}

#[test]
fn instruction_errors() {
    // Length 4 (less than 8).
    let mut b = flow_mod_bytes();
    set16(&mut b, INSTRUCTION_AT + 2, 4);
    assert_eq!(code(&b), (OFPET_BAD_INSTRUCTION, OFPBIC_BAD_LEN));
    // Not a multiple of 8.
    set16(&mut b, INSTRUCTION_AT + 2, 0x24);
    assert_eq!(code(&b), (OFPET_BAD_INSTRUCTION, OFPBIC_BAD_LEN));
    // Past the message.
    set16(&mut b, INSTRUCTION_AT + 2, 0x30);
    assert_eq!(code(&b), (OFPET_BAD_INSTRUCTION, OFPBIC_BAD_LEN));
    // GOTO_TABLE must be 8 bytes.
    let mut b = flow_mod_bytes();
    set16(&mut b, INSTRUCTION_AT, OFPIT_GOTO_TABLE);
    assert_eq!(code(&b), (OFPET_BAD_INSTRUCTION, OFPBIC_BAD_LEN));
    // An unknown type is the caller's to refuse (UNKNOWN_INST).
    let mut b = flow_mod_bytes();
    set16(&mut b, INSTRUCTION_AT, 7);
    match Message::decode(&b) {
        Ok((_, Message::FlowMod(f))) => {
            assert_eq!(f.instructions, vec![Instruction::Unknown { inst_type: 7 }])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn action_errors() {
    for len in [0u16, 4, 12, 0x18] {
        let mut b = flow_mod_bytes();
        set16(&mut b, ACTION_AT + 2, len);
        assert_eq!(code(&b), (OFPET_BAD_ACTION, OFPBAC_BAD_LEN), "len {len}");
    }
    // OUTPUT of 8 bytes followed by 8 bytes of nothing.
    let mut b = flow_mod_bytes();
    set16(&mut b, ACTION_AT + 2, 8);
    assert_eq!(code(&b), (OFPET_BAD_ACTION, OFPBAC_BAD_LEN));
    // An unknown type is kept raw for the caller (BAD_TYPE).
    let mut b = flow_mod_bytes();
    set16(&mut b, ACTION_AT, OFPAT_PUSH_VLAN);
    match Message::decode(&b) {
        Ok((_, Message::FlowMod(f))) => match &f.instructions[..] {
            [Instruction::ApplyActions(a)] => {
                assert_eq!(a[0].action_type(), OFPAT_PUSH_VLAN);
                assert_eq!(
                    a[0],
                    Action::Other {
                        action_type: OFPAT_PUSH_VLAN,
                        body: hex("000000010000000000000000")
                    }
                );
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_field_errors() {
    // PACKET_OUT, no buffer, in_port CONTROLLER, the one action given, no data.
    let packet_out = |action: &str| {
        let mut b = hex("040d000000000001 ffffffff fffffffd 0000 000000000000");
        let action = hex(action);
        set16(&mut b, 16, action.len() as u16);
        b.extend_from_slice(&action);
        let len = b.len() as u16;
        set16(&mut b, 2, len);
        b
    };
    // set_field:02:00:00:00:00:09->eth_dst decodes.
    assert_eq!(
        Message::decode(&packet_out("0019001080000606020000000009 0000")).map(|(_, m)| m),
        Ok(Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: OFPP_CONTROLLER,
            actions: vec![Action::SetField(Oxm::eth_dst([2, 0, 0, 0, 0, 9]))],
            data: vec![],
        }))
    );
    // Masked.
    assert_eq!(
        code(&packet_out(
            "001900188000070c020000000009ffffffffffff 00000000"
        )),
        (OFPET_BAD_ACTION, OFPBAC_BAD_SET_ARGUMENT)
    );
    // Wrong length for eth_dst.
    assert_eq!(
        code(&packet_out("00190010800006050200000000 000000")),
        (OFPET_BAD_ACTION, OFPBAC_BAD_SET_LEN)
    );
    // Unknown basic field.
    assert_eq!(
        code(&packet_out("0019001080006406020000000009 0000")),
        (OFPET_BAD_ACTION, OFPBAC_BAD_SET_TYPE)
    );
}

#[test]
fn packet_out_actions_len_past_the_end() {
    let mut b = hex("040d005200000009fffffffffffffffd001000000000000000000010000000010000000000000000ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002");
    set16(&mut b, 16, 0x100);
    assert_eq!(code(&b), (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN));
}

#[test]
fn multipart_requests() {
    // A type vxtund does not serve (QUEUE) decodes for the caller to refuse (BAD_MULTIPART).
    assert_eq!(
        Message::decode(&hex("04120018000000010005000000000000ffffffff00000000")),
        Ok((
            1,
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::Other {
                    mp_type: OFPMP_QUEUE,
                    body: hex("ffffffff00000000")
                }
            })
        ))
    );
    // REQ_MORE is reported.
    assert_eq!(
        Message::decode(&hex("0412001000000002000c000100000000")),
        Ok((
            2,
            Message::MultipartRequest(MultipartRequest {
                flags: OFPMPF_REQ_MORE,
                body: MultipartRequestBody::TableFeatures(vec![])
            })
        ))
    );
    // DESC with a body; PORT_STATS without one; FLOW with bytes after its match.
    assert_eq!(
        code(&hex("04120018000000030000000000000000ffffffff00000000")),
        (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)
    );
    assert_eq!(
        code(&hex("04120010000000040004000000000000")),
        (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)
    );
    assert_eq!(
        code(&hex("04120040000000020001000000000000ff000000ffffffffffffffff000000000000000000000000000000000000000000010004000000000000000000000000")),
        (OFPET_BAD_REQUEST, OFPBRC_BAD_LEN)
    );
    // Table features whose property runs past its table.
    let mut b = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::TableFeatures(vec![super::samples::table_features()]),
    })
    .encode(9);
    set16(
        &mut b,
        MULTIPART_HEADER_LEN + TABLE_FEATURES_FIXED_LEN + 2,
        0x4000,
    );
    assert_eq!(code(&b), (OFPET_TABLE_FEATURES_FAILED, OFPTFFC_BAD_LEN));
}

#[test]
fn fixed_width_strings_are_cut_safely() {
    let long = "x".repeat(300);
    // 'é' is two bytes: 14 ASCII + 'é' would need 16, so it is dropped whole.
    let port = PortDesc {
        port_no: 1,
        hw_addr: [0; 6],
        name: format!("{}é", "a".repeat(14)),
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    };
    let status = Message::PortStatus {
        reason: OFPPR_MODIFY,
        port,
    };
    match Message::decode(&status.encode(1)) {
        Ok((_, Message::PortStatus { port, .. })) => assert_eq!(port.name, "a".repeat(14)),
        other => panic!("{other:?}"),
    }
    let desc = Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Desc {
            mfr_desc: long.clone(),
            hw_desc: String::new(),
            sw_desc: "é".repeat(200),
            serial_num: long.clone(),
            dp_desc: long.clone(),
        },
    });
    let bytes = desc.encode(1);
    assert_eq!(
        bytes.len(),
        MULTIPART_HEADER_LEN + 4 * DESC_STR_LEN + SERIAL_NUM_LEN
    );
    match Message::decode(&bytes) {
        Ok((
            _,
            Message::MultipartReply(MultipartReply {
                body:
                    MultipartReplyBody::Desc {
                        mfr_desc,
                        sw_desc,
                        serial_num,
                        ..
                    },
                ..
            }),
        )) => {
            assert_eq!(mfr_desc, "x".repeat(255));
            assert_eq!(sw_desc, "é".repeat(127));
            assert_eq!(serial_num, "x".repeat(31));
        }
        other => panic!("{other:?}"),
    }
}
