//! One message of every kind (and variants), shared by the byte-exact vectors and the
//! property tests' seeds.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

/// A 42-byte ARP request from 02:00:00:00:00:01 (10.0.0.1) for 10.0.0.2.
pub(super) const ARP_FRAME: &str =
    "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

pub(super) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn port(port_no: u32, name: &str, last: u8) -> PortDesc {
    PortDesc {
        port_no,
        hw_addr: [2, 0, 0, 0, 0, last],
        name: name.to_string(),
        config: 0,
        state: OFPPS_LIVE,
        curr: OFPPF_10GB_FD | OFPPF_COPPER,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

fn flow_request() -> FlowStatsRequest {
    FlowStatsRequest {
        table_id: OFPTT_ALL,
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        match_: vec![],
    }
}

/// The match of `ip,nw_src=192.168.1.0/24`.
fn ip_src_match() -> Vec<Oxm> {
    vec![
        Oxm::eth_type(0x0800),
        Oxm::ipv4_src_masked(
            Ipv4Addr::new(192, 168, 1, 0),
            Ipv4Addr::new(255, 255, 255, 0),
        ),
    ]
}

/// The table features vxtund would announce: one table, the eight properties ovs-ofctl
/// requires and the _MISS variants.
pub(super) fn table_features() -> TableFeatures {
    let fields = [
        (OFPXMT_OFB_IN_PORT, false),
        (OFPXMT_OFB_ETH_DST, true),
        (OFPXMT_OFB_ETH_SRC, true),
        (OFPXMT_OFB_ETH_TYPE, false),
        (OFPXMT_OFB_IP_PROTO, false),
        (OFPXMT_OFB_IPV4_SRC, true),
        (OFPXMT_OFB_IPV4_DST, true),
        (OFPXMT_OFB_TCP_SRC, false),
        (OFPXMT_OFB_TCP_DST, false),
        (OFPXMT_OFB_UDP_SRC, false),
        (OFPXMT_OFB_UDP_DST, false),
        (OFPXMT_OFB_IPV6_SRC, true),
        (OFPXMT_OFB_IPV6_DST, true),
    ];
    // MATCH lists a maskable field with hasmask set; WILDCARDS lists every field unmasked.
    let header = |field: u8, masked: bool| {
        let (len, _) = basic_field(field).expect("basic field");
        oxm_header(
            OFPXMC_OPENFLOW_BASIC,
            field,
            masked,
            (len << usize::from(masked)) as u8,
        )
    };
    let matchable = fields.iter().map(|&(f, m)| header(f, m)).collect();
    let wildcards = fields.iter().map(|&(f, _)| header(f, false)).collect();
    TableFeatures {
        table_id: 0,
        name: "classifier".to_string(),
        metadata_match: 0,
        metadata_write: 0,
        config: 0,
        max_entries: 1_000_000,
        properties: vec![
            TableFeatureProp::Instructions(vec![OFPIT_APPLY_ACTIONS]),
            TableFeatureProp::InstructionsMiss(vec![OFPIT_APPLY_ACTIONS]),
            TableFeatureProp::NextTables(vec![]),
            TableFeatureProp::NextTablesMiss(vec![]),
            TableFeatureProp::WriteActions(vec![]),
            TableFeatureProp::WriteActionsMiss(vec![]),
            TableFeatureProp::ApplyActions(vec![OFPAT_OUTPUT]),
            TableFeatureProp::ApplyActionsMiss(vec![OFPAT_OUTPUT]),
            TableFeatureProp::Match(matchable),
            TableFeatureProp::Wildcards(wildcards),
            TableFeatureProp::WriteSetfield(vec![]),
            TableFeatureProp::WriteSetfieldMiss(vec![]),
            TableFeatureProp::ApplySetfield(vec![]),
            TableFeatureProp::ApplySetfieldMiss(vec![]),
        ],
    }
}

/// (name, xid, message): one of every kind.
pub(super) fn samples() -> Vec<(&'static str, u32, Message)> {
    let arp = hex(ARP_FRAME);
    let tcp_flow = FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: 0,
        command: OFPFC_ADD,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 0x8000,
        buffer_id: OFP_NO_BUFFER,
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        flags: 0,
        match_: vec![
            Oxm::eth_type(0x0800),
            Oxm::ipv4_dst_masked(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 0, 0, 0)),
            Oxm::ip_proto(6),
            Oxm::tcp_dst(80),
        ],
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: 2,
            max_len: 0,
        }])],
    };
    let many_instructions = FlowMod {
        cookie: 0xfeed,
        cookie_mask: 0,
        priority: 10,
        match_: vec![
            Oxm::in_port(1),
            Oxm::eth_type(0x86dd),
            Oxm::ipv6_dst_masked(
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0),
                Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            ),
            Oxm::ip_proto(17),
            Oxm::udp_dst(4789),
        ],
        instructions: vec![
            Instruction::Meter(3),
            Instruction::ApplyActions(vec![
                Action::SetField(Oxm::eth_dst([2, 0, 0, 0, 0, 9])),
                Action::Output {
                    port: OFPP_CONTROLLER,
                    max_len: OFPCML_NO_BUFFER,
                },
            ]),
            Instruction::ClearActions,
            Instruction::WriteActions(vec![Action::Group(5)]),
            Instruction::WriteMetadata {
                metadata: 0x10,
                mask: 0xff,
            },
            Instruction::GotoTable(1),
        ],
        ..tcp_flow.clone()
    };
    let delete = FlowMod {
        table_id: OFPTT_ALL,
        command: OFPFC_DELETE_STRICT,
        priority: 100,
        match_: vec![Oxm::in_port(1)],
        instructions: vec![],
        ..tcp_flow.clone()
    };
    let flow_stats = vec![
        FlowStats {
            table_id: 0,
            duration_sec: 12,
            duration_nsec: 345_000_000,
            priority: 200,
            idle_timeout: 30,
            hard_timeout: 300,
            flags: OFPFF_SEND_FLOW_REM,
            cookie: 0x1234,
            packet_count: 7,
            byte_count: 700,
            match_: ip_src_match(),
            instructions: vec![Instruction::ApplyActions(vec![
                Action::Output {
                    port: 1,
                    max_len: 0,
                },
                Action::Output {
                    port: OFPP_NORMAL,
                    max_len: 0,
                },
            ])],
        },
        FlowStats {
            table_id: 0,
            duration_sec: 1,
            duration_nsec: 0,
            priority: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: 0,
            packet_count: 0,
            byte_count: 0,
            match_: vec![],
            instructions: vec![],
        },
    ];
    let async_config = AsyncConfig {
        packet_in_mask: [0b011, 0],
        port_status_mask: [0b111, 0b111],
        flow_removed_mask: [0b1111, 0],
    };
    let mp_request = |body| Message::MultipartRequest(MultipartRequest { flags: 0, body });
    let mp_reply = |body| Message::MultipartReply(MultipartReply { flags: 0, body });
    vec![
        (
            "hello_bitmap_1_3",
            1,
            Message::Hello {
                versions: Some(1 << VERSION),
            },
        ),
        ("hello_bare", 2, Message::Hello { versions: None }),
        (
            "error_bad_type",
            3,
            Message::Error {
                err_type: OFPET_BAD_REQUEST,
                code: OFPBRC_BAD_TYPE,
                data: hex("040f00100000002a0000000000000000"),
            },
        ),
        ("echo_request", 4, Message::EchoRequest(b"ping".to_vec())),
        ("echo_reply", 4, Message::EchoReply(b"ping".to_vec())),
        (
            "experimenter",
            5,
            Message::Experimenter {
                experimenter: 0x00ab_cdef,
                exp_type: 7,
                data: vec![1, 2, 3, 4],
            },
        ),
        ("features_request", 6, Message::FeaturesRequest),
        (
            "features_reply",
            6,
            Message::FeaturesReply(SwitchFeatures {
                datapath_id: 0x0000_0200_0000_0001,
                n_buffers: 0,
                n_tables: 1,
                auxiliary_id: 0,
                capabilities: OFPC_FLOW_STATS | OFPC_TABLE_STATS | OFPC_PORT_STATS,
            }),
        ),
        ("get_config_request", 7, Message::GetConfigRequest),
        (
            "get_config_reply",
            7,
            Message::GetConfigReply(SwitchConfig {
                flags: OFPC_FRAG_NORMAL,
                miss_send_len: OFP_DEFAULT_MISS_SEND_LEN,
            }),
        ),
        (
            "set_config",
            8,
            Message::SetConfig(SwitchConfig {
                flags: OFPC_FRAG_DROP,
                miss_send_len: OFPCML_NO_BUFFER,
            }),
        ),
        (
            "packet_in",
            0,
            Message::PacketIn(PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 42,
                reason: OFPR_NO_MATCH,
                table_id: 0,
                cookie: 0,
                match_: vec![Oxm::in_port(1)],
                data: arp.clone(),
            }),
        ),
        (
            "flow_removed",
            0,
            Message::FlowRemoved(FlowRemoved {
                cookie: 0x1234,
                priority: 200,
                reason: OFPRR_IDLE_TIMEOUT,
                table_id: 0,
                duration_sec: 10,
                duration_nsec: 500,
                idle_timeout: 30,
                hard_timeout: 300,
                packet_count: 5,
                byte_count: 320,
                match_: ip_src_match(),
            }),
        ),
        (
            "port_status",
            0,
            Message::PortStatus {
                reason: OFPPR_ADD,
                port: port(1, "tun1", 1),
            },
        ),
        (
            "packet_out",
            9,
            Message::PacketOut(PacketOut {
                buffer_id: OFP_NO_BUFFER,
                in_port: OFPP_CONTROLLER,
                actions: vec![Action::Output {
                    port: 1,
                    max_len: 0,
                }],
                data: arp.clone(),
            }),
        ),
        ("flow_mod_tcp", 10, Message::FlowMod(tcp_flow)),
        (
            "flow_mod_instructions",
            11,
            Message::FlowMod(many_instructions),
        ),
        ("flow_mod_delete_strict", 12, Message::FlowMod(delete)),
        (
            "mp_request_desc",
            13,
            mp_request(MultipartRequestBody::Desc),
        ),
        (
            "mp_request_flow",
            14,
            mp_request(MultipartRequestBody::Flow(flow_request())),
        ),
        (
            "mp_request_aggregate",
            15,
            mp_request(MultipartRequestBody::Aggregate(FlowStatsRequest {
                match_: ip_src_match(),
                cookie: 0x1234,
                cookie_mask: u64::MAX,
                ..flow_request()
            })),
        ),
        (
            "mp_request_table",
            16,
            mp_request(MultipartRequestBody::Table),
        ),
        (
            "mp_request_port_stats",
            17,
            mp_request(MultipartRequestBody::PortStats { port_no: OFPP_ANY }),
        ),
        (
            "mp_request_port_desc",
            18,
            mp_request(MultipartRequestBody::PortDesc),
        ),
        (
            "mp_request_table_features",
            19,
            mp_request(MultipartRequestBody::TableFeatures(vec![])),
        ),
        (
            "mp_reply_desc",
            13,
            mp_reply(MultipartReplyBody::Desc {
                mfr_desc: "vxtund".to_string(),
                hw_desc: "userspace VXLAN/GRE".to_string(),
                sw_desc: "0.1.0".to_string(),
                serial_num: "None".to_string(),
                dp_desc: "vxt0".to_string(),
            }),
        ),
        (
            "mp_reply_flow",
            14,
            mp_reply(MultipartReplyBody::Flow(flow_stats)),
        ),
        (
            "mp_reply_aggregate",
            15,
            mp_reply(MultipartReplyBody::Aggregate {
                packet_count: 7,
                byte_count: 700,
                flow_count: 2,
            }),
        ),
        (
            "mp_reply_table",
            16,
            mp_reply(MultipartReplyBody::Table(vec![TableStats {
                table_id: 0,
                active_count: 2,
                lookup_count: 100,
                matched_count: 90,
            }])),
        ),
        (
            "mp_reply_port_stats",
            17,
            mp_reply(MultipartReplyBody::PortStats(vec![PortStats {
                port_no: 1,
                rx_packets: 1,
                tx_packets: 2,
                rx_bytes: 3,
                tx_bytes: 4,
                rx_dropped: 5,
                tx_dropped: 6,
                rx_errors: 7,
                tx_errors: 8,
                rx_frame_err: 9,
                rx_over_err: 10,
                rx_crc_err: 11,
                collisions: 12,
                duration_sec: 13,
                duration_nsec: 14,
            }])),
        ),
        (
            "mp_reply_port_desc",
            18,
            mp_reply(MultipartReplyBody::PortDesc(vec![
                port(1, "tun1", 1),
                port(OFPP_LOCAL, "vxt0", 0xfe),
            ])),
        ),
        (
            "mp_reply_table_features",
            19,
            mp_reply(MultipartReplyBody::TableFeatures(vec![table_features()])),
        ),
        ("barrier_request", 20, Message::BarrierRequest),
        ("barrier_reply", 20, Message::BarrierReply),
        (
            "role_request",
            21,
            Message::RoleRequest(Role {
                role: OFPCR_ROLE_MASTER,
                generation_id: 42,
            }),
        ),
        (
            "role_reply",
            21,
            Message::RoleReply(Role {
                role: OFPCR_ROLE_MASTER,
                generation_id: 42,
            }),
        ),
        ("get_async_request", 22, Message::GetAsyncRequest),
        ("get_async_reply", 22, Message::GetAsyncReply(async_config)),
        ("set_async", 23, Message::SetAsync(async_config)),
    ]
}
