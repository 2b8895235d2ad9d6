//! Tests of the MTU helpers (`ip`, `tcp`, `icmp`): every frame they produce is read back with
//! etherparse, an independent parser, which also recomputes every checksum.

use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, Ipv4Header,
    PacketBuilder, SlicedPacket, TcpHeader, TcpOptionElement, TransportSlice,
};
use proptest::prelude::*;

use super::icmp::{frag_needed, packet_too_big};
use super::ip::{fragment_ipv4, IpView};
use super::tcp::clamp_mss;

const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

fn syn_v4(mss: u16, flags_ack: bool) -> Vec<u8> {
    let mut tcp = PacketBuilder::ethernet2(A, B)
        .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
        .tcp(40000, 80, 7, 64240)
        .syn();
    if flags_ack {
        tcp = tcp.ack(1);
    }
    let tcp = tcp
        .options(&[
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    let mut f = Vec::new();
    tcp.write(&mut f, &[]).unwrap();
    f
}

fn syn_v6(mss: u16) -> Vec<u8> {
    let src = [0xfc, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0xfc, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
    let tcp = PacketBuilder::ethernet2(A, B)
        .ipv6(src, dst, 64)
        .tcp(40000, 80, 7, 64240)
        .syn()
        .ack(9)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::MaximumSegmentSize(mss),
        ])
        .unwrap();
    let mut f = Vec::new();
    tcp.write(&mut f, &[]).unwrap();
    f
}

/// The MSS option and whether the TCP checksum is right, as etherparse sees the frame.
fn mss_and_checksum(frame: &[u8]) -> (Option<u16>, bool) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        panic!("not TCP")
    };
    let header: TcpHeader = tcp.to_header();
    let mss = header.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    });
    let expected = match p.net.unwrap() {
        etherparse::NetSlice::Ipv4(ip) => header
            .calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
            .unwrap(),
        etherparse::NetSlice::Ipv6(ip) => header
            .calc_checksum_ipv6(&ip.header().to_header(), tcp.payload())
            .unwrap(),
        _ => unreachable!(),
    };
    (mss, expected == header.checksum)
}

#[test]
fn clamps_syn_and_syn_ack_over_ipv4_and_ipv6_with_valid_checksums() {
    for mut frame in [syn_v4(1460, false), syn_v4(1460, true)] {
        let ip = IpView::parse(&frame).unwrap();
        assert_eq!(clamp_mss(&mut frame, &ip, 1410), Some(1460));
        assert_eq!(mss_and_checksum(&frame), (Some(1410), true));
    }
    let mut frame = syn_v6(1440);
    let ip = IpView::parse(&frame).unwrap();
    assert_eq!(clamp_mss(&mut frame, &ip, 1390), Some(1440));
    assert_eq!(mss_and_checksum(&frame), (Some(1390), true));
}

#[test]
fn clamps_an_mss_at_an_odd_offset_with_a_valid_checksum() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
        .tcp(40000, 80, 7, 64240)
        .syn()
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
        ])
        .unwrap()
        .write(&mut frame, &[])
        .unwrap();
    assert_eq!(
        &frame[14 + 20 + 20..14 + 20 + 22],
        &[1, 2],
        "NOP then MSS: the value starts at an odd offset"
    );
    let ip = IpView::parse(&frame).unwrap();
    assert_eq!(clamp_mss(&mut frame, &ip, 1410), Some(1460));
    assert_eq!(mss_and_checksum(&frame), (Some(1410), true));
}

#[test]
fn never_raises_and_leaves_other_segments_alone() {
    let mut low = syn_v4(1200, false);
    let ip = IpView::parse(&low).unwrap();
    assert_eq!(clamp_mss(&mut low, &ip, 1410), None);
    assert_eq!(mss_and_checksum(&low), (Some(1200), true));

    let mut data = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
        .tcp(1, 2, 3, 4)
        .ack(5)
        .write(&mut data, b"x")
        .unwrap();
    let before = data.clone();
    let ip = IpView::parse(&data).unwrap();
    assert_eq!(clamp_mss(&mut data, &ip, 536), None);
    assert_eq!(data, before, "a non-SYN segment is not touched");
}

fn udp_v4(payload: usize, df: bool) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        0,
        64,
        etherparse::IpNumber::UDP,
        [172, 31, 1, 1],
        [172, 31, 3, 1],
    )
    .unwrap();
    ip.dont_fragment = df;
    ip.identification = 0x1234;
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(5000, 5001)
        .write(&mut f, &vec![0x5a; payload])
        .unwrap();
    f
}

#[test]
fn frag_needed_reads_back_as_an_icmp_error_to_the_sender() {
    let frame = udp_v4(1472, true);
    let ip = IpView::parse(&frame).unwrap();
    assert!(ip.dont_fragment());
    let mut out = Vec::new();
    assert!(frag_needed(&frame, &ip, 1450, &mut out));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    assert_eq!(
        (&out[6..12], &out[0..6]),
        (&B[..], &A[..]),
        "from the original destination's MAC"
    );
    let etherparse::NetSlice::Ipv4(ipv4) = p.net.unwrap() else {
        panic!()
    };
    let h = ipv4.header().to_header();
    assert_eq!(
        (h.source, h.destination),
        ([172, 31, 3, 1], [172, 31, 1, 1])
    );
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    assert!(out.len() - 14 <= 576, "the answer stays within 576 bytes");
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!()
    };
    let expected_type =
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1450,
        });
    assert_eq!(icmp.icmp_type(), expected_type);
    assert_eq!(
        icmp.checksum(),
        Icmpv4Header::with_checksum(expected_type, icmp.payload()).checksum,
        "ICMP checksum"
    );
    assert_eq!(
        &icmp.payload()[..28],
        &frame[14..42],
        "quotes the offending header and 8 bytes"
    );
}

#[test]
fn packet_too_big_reads_back_as_an_icmpv6_error_to_the_sender() {
    let src = [0xfc, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0xfc, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(src, dst, 64)
        .udp(5000, 5001)
        .write(&mut frame, &[0x6b; 1452])
        .unwrap();
    let ip = IpView::parse(&frame).unwrap();
    let mut out = Vec::new();
    assert!(packet_too_big(&frame, &ip, 1430, &mut out));
    assert!(
        out.len() - 14 <= 1280,
        "the answer fits the IPv6 minimum MTU"
    );
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let etherparse::NetSlice::Ipv6(ipv6) = p.net.unwrap() else {
        panic!()
    };
    let h = ipv6.header().to_header();
    assert_eq!((h.source, h.destination), (dst, src));
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!()
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1430 });
    let expected =
        Icmpv6Header::with_checksum(icmp.icmp_type(), h.source, h.destination, icmp.payload())
            .unwrap();
    assert_eq!(icmp.checksum(), expected.checksum, "ICMPv6 checksum");
    assert_eq!((&out[6..12], &out[0..6]), (&B[..], &A[..]));

    // Never announce less than 1280.
    let mut small = Vec::new();
    assert!(packet_too_big(&frame, &ip, 1000, &mut small));
    let Some(TransportSlice::Icmpv6(icmp)) = SlicedPacket::from_ethernet(&small).unwrap().transport
    else {
        panic!()
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 });
}

#[test]
fn no_answer_to_errors_or_to_non_unicast_sources() {
    let mut out = Vec::new();
    let mut error = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([172, 31, 1, 1], [172, 31, 3, 1], 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut error, &[0; 1500])
        .unwrap();
    let ip = IpView::parse(&error).unwrap();
    assert!(
        !frag_needed(&error, &ip, 1450, &mut out),
        "never an error about an error"
    );
    let mut bcast = udp_v4(1472, true);
    bcast[26..30].copy_from_slice(&[0, 0, 0, 0]);
    let ip = IpView::parse(&bcast).unwrap();
    assert!(
        !frag_needed(&bcast, &ip, 1450, &mut out),
        "unspecified source"
    );
}

#[test]
fn no_answer_to_a_frame_sent_to_a_link_layer_broadcast() {
    let mut frame = udp_v4(1472, true);
    frame[..6].copy_from_slice(&[0xff; 6]);
    let ip = IpView::parse(&frame).unwrap();
    assert!(!frag_needed(&frame, &ip, 1450, &mut Vec::new()));
}

#[test]
fn fragments_copy_only_copied_options_past_the_first() {
    let mut ip = Ipv4Header::new(
        0,
        64,
        etherparse::IpNumber::UDP,
        [172, 31, 1, 1],
        [172, 31, 3, 1],
    )
    .unwrap();
    // Loose source route (0x83, copied) and record route (0x07, not copied), padded to 16.
    let options = [0x83, 7, 4, 10, 0, 0, 1, 0x07, 7, 4, 0, 0, 0, 0, 0, 0];
    ip.options = etherparse::Ipv4Options::try_from(&options[..]).unwrap();
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(1, 2)
        .write(&mut frame, &[9; 2000])
        .unwrap();
    let view = IpView::parse(&frame).unwrap();
    assert_eq!(view.header_len, 36);
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    assert!(fragment_ipv4(&frame, &view, 1450, &mut out, &mut ranges));
    let (first, _) = Ipv4Header::from_slice(&out[ranges[0].start + 14..]).unwrap();
    assert_eq!(
        first.options.as_slice(),
        &options,
        "the first fragment keeps every option"
    );
    let (later, _) = Ipv4Header::from_slice(&out[ranges[1].start + 14..]).unwrap();
    assert_eq!(
        later.options.as_slice(),
        &[0x83, 7, 4, 10, 0, 0, 1, 0],
        "later ones only the copied option, padded"
    );
    assert_eq!(later.header_checksum, later.calc_header_checksum());
    assert!(ranges.iter().all(|r| r.len() - 14 <= 1450));
}

#[test]
fn refragmenting_a_fragment_keeps_its_offset_and_more_fragments_flag() {
    let mut frame = udp_v4(2972, false);
    // Make it a middle fragment: offset 800 bytes (100 units), MF set; fix the header checksum.
    frame[20..22].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
    let ip = IpView::parse(&frame).unwrap();
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    assert!(fragment_ipv4(&frame, &ip, 1450, &mut out, &mut ranges));
    let headers: Vec<Ipv4Header> = ranges
        .iter()
        .map(|r| Ipv4Header::from_slice(&out[r.start + 14..]).unwrap().0)
        .collect();
    assert_eq!(headers[0].fragment_offset.byte_offset(), 800);
    assert!(
        headers.iter().all(|h| h.more_fragments),
        "the original's MF stays on its last piece"
    );
    // A fragment whose end would pass offset 65535 cannot be cut again.
    let mut far = udp_v4(2972, false);
    far[20..22].copy_from_slice(&(0x2000u16 | 0x1f00).to_be_bytes());
    let ip = IpView::parse(&far).unwrap();
    assert!(!fragment_ipv4(&far, &ip, 1450, &mut out, &mut ranges));
}

#[test]
fn fragments_read_back_and_reassemble_to_the_original() {
    let frame = udp_v4(2972, false);
    let ip = IpView::parse(&frame).unwrap();
    assert!(!ip.dont_fragment());
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    assert!(fragment_ipv4(&frame, &ip, 1450, &mut out, &mut ranges));
    assert_eq!(ranges.len(), 3);
    let mut payload = Vec::new();
    for (n, r) in ranges.iter().enumerate() {
        let f = &out[r.clone()];
        assert_eq!(&f[..14], &frame[..14], "Ethernet header copied");
        let (h, rest) = Ipv4Header::from_slice(&f[14..]).unwrap();
        assert!(usize::from(h.total_len) <= 1450, "fragment {n} fits");
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "fragment {n} checksum"
        );
        assert_eq!(h.identification, 0x1234);
        assert_eq!(h.more_fragments, n < 2, "MF on all but the last");
        assert_eq!(
            h.fragment_offset.byte_offset() as usize,
            payload.len(),
            "offsets follow on"
        );
        payload.extend_from_slice(&rest[..usize::from(h.total_len) - 20]);
    }
    assert_eq!(payload, frame[34..], "reassembles to the original payload");
}

proptest! {
    #[test]
    fn helpers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), mtu in 0usize..200) {
        let mut frame = bytes.clone();
        if let Some(ip) = IpView::parse(&frame) {
            let _ = clamp_mss(&mut frame, &ip, 536);
            let mut out = Vec::new();
            if ip.version == 4 {
                let _ = frag_needed(&frame, &ip, 576, &mut out);
                if !ip.dont_fragment() {
                    let mut ranges = Vec::new();
                    let _ = fragment_ipv4(&frame, &ip, mtu, &mut out, &mut ranges);
                }
            } else {
                let _ = packet_too_big(&frame, &ip, 1280, &mut out);
            }
        }
    }

    #[test]
    fn helpers_never_panic_on_mangled_ip_packets(payload in 0usize..100, cut in 0usize..60, at in 14usize..60, byte: u8) {
        let mut frame = udp_v4(payload, false);
        if at < frame.len() { frame[at] = byte; }
        frame.truncate(frame.len().saturating_sub(cut).max(14));
        if let Some(ip) = IpView::parse(&frame) {
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            let _ = fragment_ipv4(&frame, &ip, 68, &mut out, &mut ranges);
            let _ = frag_needed(&frame, &ip, 68, &mut out);
            let _ = clamp_mss(&mut frame, &ip, 536);
        }
    }
}
