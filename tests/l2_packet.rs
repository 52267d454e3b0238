//! ARP/NDP decoding and encoding against frames the Linux kernel produced (see
//! `tests/fixtures/l2/README.md`): what we decode matches what tcpdump would show, and what we
//! build for the same situation is byte-for-byte what the kernel sends, or differs only where
//! documented.

use std::{
    fs,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use metallb::l2::packet::{self, Advertisement, Arp, DecodeError, Frame, MacAddr, Solicitation};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/l2")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const NODE1_MAC: MacAddr = MacAddr(0x02, 0x77, 0, 0, 0, 0x0b);
const CLIENT_MAC: MacAddr = MacAddr(0x02, 0x77, 0, 0, 0, 0x64);
const NODE1_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn arp(name: &str) -> Arp {
    match packet::decode(&fixture(name)).unwrap() {
        Frame::Arp(a) => a,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn decodes_a_kernel_arp_request() {
    assert_eq!(
        arp("arp_request.bin"),
        Arp {
            eth_dst: MacAddr::broadcast(),
            eth_src: CLIENT_MAC,
            request: true,
            sender_mac: CLIENT_MAC,
            sender_ip: CLIENT_V4,
            target_mac: MacAddr::zero(),
            target_ip: NODE1_V4,
        }
    );
}

#[test]
fn our_arp_reply_is_the_kernels_byte_for_byte() {
    let request = arp("arp_request.bin");
    assert_eq!(
        packet::arp_reply(&request, NODE1_MAC),
        fixture("arp_reply.bin")
    );
    let reply = arp("arp_reply.bin");
    assert!(!reply.request && !reply.is_gratuitous());
    assert_eq!((reply.sender_mac, reply.sender_ip), (NODE1_MAC, NODE1_V4));
}

#[test]
fn our_gratuitous_request_is_the_kernels_and_the_reply_form_mirrors_it() {
    let [request, reply] = packet::gratuitous_arp(NODE1_V4, NODE1_MAC);
    assert_eq!(request, fixture("garp_request.bin"));
    let kernel = arp("garp_request.bin");
    assert!(kernel.request && kernel.is_gratuitous());
    match packet::decode(&reply).unwrap() {
        Frame::Arp(a) => {
            assert!(!a.request && a.is_gratuitous());
            assert_eq!(a.eth_dst, MacAddr::broadcast());
            assert_eq!(a.target_mac, MacAddr::broadcast());
            assert_eq!((a.sender_mac, a.sender_ip), (NODE1_MAC, NODE1_V4));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decodes_a_kernel_neighbor_solicitation() {
    assert_eq!(
        packet::decode(&fixture("ndp_ns.bin")).unwrap(),
        Frame::Solicitation(Solicitation {
            eth_src: CLIENT_MAC,
            src_ip: v6("fd00:77::100"),
            dst_ip: packet::solicited_node(v6("fd00:77::11")),
            target: v6("fd00:77::11"),
            source_mac: Some(CLIENT_MAC),
        })
    );
}

#[test]
fn our_solicited_advertisement_is_the_kernels_byte_for_byte() {
    let Frame::Solicitation(ns) = packet::decode(&fixture("ndp_ns.bin")).unwrap() else {
        panic!()
    };
    // The kernel answers from the target address itself (it owns it on eth0); so do we when
    // given the same source.
    let ours = packet::solicited_advertisement(&ns, NODE1_MAC, v6("fd00:77::11")).unwrap();
    assert_eq!(ours, fixture("ndp_na_solicited.bin"));
    assert_eq!(
        packet::decode(&ours).unwrap(),
        Frame::Advertisement(Advertisement {
            eth_dst: CLIENT_MAC,
            eth_src: NODE1_MAC,
            src_ip: v6("fd00:77::11"),
            dst_ip: v6("fd00:77::100"),
            target: v6("fd00:77::11"),
            solicited: true,
            override_: true,
            router: false,
            target_mac: Some(NODE1_MAC),
        })
    );
}

#[test]
fn our_unsolicited_advertisement_is_the_kernels_byte_for_byte() {
    let ours = packet::unsolicited_advertisement(v6("fd00:77::11"), NODE1_MAC, v6("fd00:77::11"));
    assert_eq!(ours, fixture("ndp_na_unsolicited.bin"));
    let Frame::Advertisement(na) = packet::decode(&ours).unwrap() else {
        panic!()
    };
    assert!(na.override_ && !na.solicited);
    assert_eq!(na.dst_ip, packet::ALL_NODES);
    assert_eq!(na.eth_dst, packet::ALL_NODES_MAC);
}

#[test]
fn a_link_local_source_gets_a_valid_checksum() {
    let ll = v6("fe80::77:ff:fe00:b");
    let frame = packet::unsolicited_advertisement(v6("fd00:77::200"), NODE1_MAC, ll);
    let Frame::Advertisement(na) = packet::decode(&frame).unwrap() else {
        panic!()
    };
    assert_eq!((na.src_ip, na.target), (ll, v6("fd00:77::200")));
}

#[test]
fn invalid_ndp_is_dropped() {
    // Routed (hop limit 254): RFC 4861 §7.1.1 says discard.
    let mut frame = fixture("ndp_ns.bin");
    frame[14 + 7] = 254;
    assert_eq!(packet::decode(&frame), Err(DecodeError::InvalidNdp));
    // Corrupted checksum.
    let mut frame = fixture("ndp_ns.bin");
    frame[14 + 40 + 2] ^= 0xff;
    assert_eq!(packet::decode(&frame), Err(DecodeError::InvalidNdp));
    // Truncated.
    let frame = fixture("ndp_ns.bin");
    assert_eq!(packet::decode(&frame[..60]), Err(DecodeError::Truncated));
}

#[test]
fn dad_probes_and_solicitations_without_source_option_get_no_answer() {
    let Frame::Solicitation(mut ns) = packet::decode(&fixture("ndp_ns.bin")).unwrap() else {
        panic!()
    };
    ns.source_mac = None;
    assert!(packet::solicited_advertisement(&ns, NODE1_MAC, v6("fe80::1")).is_none());
    ns.source_mac = Some(CLIENT_MAC);
    ns.src_ip = Ipv6Addr::UNSPECIFIED;
    assert!(packet::solicited_advertisement(&ns, NODE1_MAC, v6("fe80::1")).is_none());
}

#[test]
fn other_traffic_is_not_neighbor_discovery() {
    let mut frame = fixture("arp_request.bin");
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    assert_eq!(packet::decode(&frame), Err(DecodeError::NotNeighbor));
    assert_eq!(packet::decode(&[0; 10]), Err(DecodeError::Truncated));
}
