//! ARP and NDP frames: decoding what arrives on an interface and building what the responder
//! and the announcer send. Field layouts come from `pnet_packet`; this module only decides which
//! frames matter and fills in the values RFC 826 and RFC 4861 prescribe.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::{
    MutablePacket, Packet,
    arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket},
    ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket},
    icmpv6::{
        self, Icmpv6Packet, Icmpv6Types,
        ndp::{
            MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags, NeighborAdvertPacket,
            NeighborSolicitPacket,
        },
    },
    ip::IpNextHeaderProtocols,
    ipv6::{Ipv6Packet, MutableIpv6Packet},
};

pub use pnet_base::MacAddr;

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_LEN: usize = 40;
/// Neighbor Advertisement with one link-layer address option (RFC 4861 §4.4, §4.6.1).
const NA_LEN: usize = 24 + 8;
/// NDP messages must arrive with hop limit 255, proving they were not routed (RFC 4861 §7.1).
const NDP_HOP_LIMIT: u8 = 255;

/// A frame the layer 2 speaker cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An ARP packet (request or reply).
    Arp(Arp),
    /// An ICMPv6 Neighbor Solicitation.
    Solicitation(Solicitation),
    /// An ICMPv6 Neighbor Advertisement.
    Advertisement(Advertisement),
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// `true` for a request (op 1), `false` for a reply (op 2).
    pub request: bool,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address: the address being asked for.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Gratuitous: sender and target address are the same (RFC 5227 §3 calls the request form
    /// an ARP Announcement).
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// A Neighbor Solicitation (RFC 4861 §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solicitation {
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// IPv6 source; unspecified (`::`) for duplicate address detection.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination (solicited-node multicast, or unicast when re-validating).
    pub dst_ip: Ipv6Addr,
    /// The address being resolved.
    pub target: Ipv6Addr,
    /// The Source Link-Layer Address option, if present.
    pub source_mac: Option<MacAddr>,
}

/// A Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// IPv6 source.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination.
    pub dst_ip: Ipv6Addr,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The S flag: an answer to a solicitation.
    pub solicited: bool,
    /// The O flag: replace an existing cache entry.
    pub override_: bool,
    /// The R flag.
    pub router: bool,
    /// The Target Link-Layer Address option, if present.
    pub target_mac: Option<MacAddr>,
}

/// Why a frame was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Too short for what its headers announce.
    #[error("truncated frame")]
    Truncated,
    /// Neither ARP nor ICMPv6 neighbor discovery.
    #[error("not ARP or NDP")]
    NotNeighbor,
    /// ARP for something other than IPv4 over Ethernet.
    #[error("unsupported ARP hardware or protocol")]
    UnsupportedArp,
    /// NDP that RFC 4861 §7.1 says to discard (hop limit, code, checksum, option length).
    #[error("invalid neighbor discovery message")]
    InvalidNdp,
}

/// Decodes an Ethernet frame. Anything that is not ARP or NDP is `NotNeighbor`.
pub fn decode(frame: &[u8]) -> Result<Frame, DecodeError> {
    let eth = EthernetPacket::new(frame).ok_or(DecodeError::Truncated)?;
    match eth.get_ethertype() {
        EtherTypes::Arp => decode_arp(&eth),
        EtherTypes::Ipv6 => decode_ndp(&eth),
        _ => Err(DecodeError::NotNeighbor),
    }
}

fn decode_arp(eth: &EthernetPacket<'_>) -> Result<Frame, DecodeError> {
    let arp = ArpPacket::new(eth.payload()).ok_or(DecodeError::Truncated)?;
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
    {
        return Err(DecodeError::UnsupportedArp);
    }
    let request = match arp.get_operation() {
        ArpOperations::Request => true,
        ArpOperations::Reply => false,
        _ => return Err(DecodeError::UnsupportedArp),
    };
    Ok(Frame::Arp(Arp {
        eth_dst: eth.get_destination(),
        eth_src: eth.get_source(),
        request,
        sender_mac: arp.get_sender_hw_addr(),
        sender_ip: arp.get_sender_proto_addr(),
        target_mac: arp.get_target_hw_addr(),
        target_ip: arp.get_target_proto_addr(),
    }))
}

fn decode_ndp(eth: &EthernetPacket<'_>) -> Result<Frame, DecodeError> {
    let ip = Ipv6Packet::new(eth.payload()).ok_or(DecodeError::Truncated)?;
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return Err(DecodeError::NotNeighbor);
    }
    let len = usize::from(ip.get_payload_length());
    let body = ip.payload().get(..len).ok_or(DecodeError::Truncated)?;
    let icmp = Icmpv6Packet::new(body).ok_or(DecodeError::Truncated)?;
    let kind = icmp.get_icmpv6_type();
    if kind != Icmpv6Types::NeighborSolicit && kind != Icmpv6Types::NeighborAdvert {
        return Err(DecodeError::NotNeighbor);
    }
    let (src, dst) = (ip.get_source(), ip.get_destination());
    // RFC 4861 §7.1.1 / §7.1.2 validity checks.
    if ip.get_hop_limit() != NDP_HOP_LIMIT
        || icmp.get_icmpv6_code().0 != 0
        || body.len() < 24
        || icmpv6::checksum(&icmp, &src, &dst) != icmp.get_checksum()
    {
        return Err(DecodeError::InvalidNdp);
    }
    if kind == Icmpv6Types::NeighborSolicit {
        let ns = NeighborSolicitPacket::new(body).ok_or(DecodeError::Truncated)?;
        let source_mac = link_layer_option(&body[24..], NdpOptionTypes::SourceLLAddr.0)?;
        let target = ns.get_target_addr();
        if target.is_multicast() || (src.is_unspecified() && source_mac.is_some()) {
            return Err(DecodeError::InvalidNdp);
        }
        Ok(Frame::Solicitation(Solicitation {
            eth_src: eth.get_source(),
            src_ip: src,
            dst_ip: dst,
            target,
            source_mac,
        }))
    } else {
        let na = NeighborAdvertPacket::new(body).ok_or(DecodeError::Truncated)?;
        let flags = na.get_flags();
        Ok(Frame::Advertisement(Advertisement {
            eth_dst: eth.get_destination(),
            eth_src: eth.get_source(),
            src_ip: src,
            dst_ip: dst,
            target: na.get_target_addr(),
            solicited: flags & NeighborAdvertFlags::Solicited != 0,
            override_: flags & NeighborAdvertFlags::Override != 0,
            router: flags & NeighborAdvertFlags::Router != 0,
            target_mac: link_layer_option(&body[24..], NdpOptionTypes::TargetLLAddr.0)?,
        }))
    }
}

/// Finds a link-layer address option of `kind` in NDP options. Options are TLVs in units of 8
/// octets; a zero length is invalid and means the whole message is dropped (RFC 4861 §4.6).
fn link_layer_option(mut opts: &[u8], kind: u8) -> Result<Option<MacAddr>, DecodeError> {
    let mut found = None;
    while opts.len() >= 2 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            return Err(DecodeError::InvalidNdp);
        }
        if opts[0] == kind && len >= 8 && found.is_none() {
            found = Some(MacAddr::new(
                opts[2], opts[3], opts[4], opts[5], opts[6], opts[7],
            ));
        }
        opts = &opts[len..];
    }
    Ok(found)
}

// === encoding ===

/// An ARP frame: `request` selects op 1 or 2.
fn arp_frame(
    eth_dst: MacAddr,
    eth_src: MacAddr,
    request: bool,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Vec<u8> {
    let mut buf = vec![0u8; ETH_LEN + ARP_LEN];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("invariant: buffer sized");
        eth.set_destination(eth_dst);
        eth.set_source(eth_src);
        eth.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(&mut buf[ETH_LEN..]).expect("invariant: buffer sized");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(if request {
        ArpOperations::Request
    } else {
        ArpOperations::Reply
    });
    arp.set_sender_hw_addr(sender.0);
    arp.set_sender_proto_addr(sender.1);
    arp.set_target_hw_addr(target.0);
    arp.set_target_proto_addr(target.1);
    buf
}

/// The reply to an ARP request for `request.target_ip`, answered with `mac` (RFC 826: swap
/// sender and target, fill in our hardware address), sent unicast to the asker.
pub fn arp_reply(request: &Arp, mac: MacAddr) -> Vec<u8> {
    arp_frame(
        request.sender_mac,
        mac,
        false,
        (mac, request.target_ip),
        (request.sender_mac, request.sender_ip),
    )
}

/// The two gratuitous ARP forms upstream sends for `ip`, broadcast: a request (what RFC 5227
/// calls an ARP Announcement, target MAC zero) and a reply (target MAC broadcast), because
/// hosts differ in which one updates an existing cache entry.
pub fn gratuitous_arp(ip: Ipv4Addr, mac: MacAddr) -> [Vec<u8>; 2] {
    [
        arp_frame(
            MacAddr::broadcast(),
            mac,
            true,
            (mac, ip),
            (MacAddr::zero(), ip),
        ),
        arp_frame(
            MacAddr::broadcast(),
            mac,
            false,
            (mac, ip),
            (MacAddr::broadcast(), ip),
        ),
    ]
}

/// A Neighbor Advertisement for `target` from `mac`, with a Target Link-Layer Address option.
/// `src_ip` is an address of the sending interface, normally its link-local one (RFC 4861
/// §7.2.4).
pub fn neighbor_advertisement(
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
    mac: MacAddr,
    (eth_dst, dst_ip): (MacAddr, Ipv6Addr),
    solicited: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; ETH_LEN + IPV6_LEN + NA_LEN];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("invariant: buffer sized");
        eth.set_destination(eth_dst);
        eth.set_source(mac);
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    {
        let mut ip = MutableIpv6Packet::new(&mut buf[ETH_LEN..]).expect("invariant: buffer sized");
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(NDP_HOP_LIMIT);
        ip.set_source(src_ip);
        ip.set_destination(dst_ip);
        let mut na =
            MutableNeighborAdvertPacket::new(ip.payload_mut()).expect("invariant: buffer sized");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(icmpv6::ndp::Icmpv6Codes::NoCode);
        // Override: we are taking the address over, so caches must switch to our MAC
        // (RFC 4861 §7.2.5). Solicited only when answering a solicitation.
        let mut flags = NeighborAdvertFlags::Override;
        if solicited {
            flags |= NeighborAdvertFlags::Solicited;
        }
        na.set_flags(flags);
        na.set_target_addr(target);
    }
    let opt = ETH_LEN + IPV6_LEN + 24;
    buf[opt] = NdpOptionTypes::TargetLLAddr.0;
    buf[opt + 1] = 1;
    buf[opt + 2..opt + 8].copy_from_slice(&mac.octets());
    let csum = {
        let icmp = Icmpv6Packet::new(&buf[ETH_LEN + IPV6_LEN..]).expect("invariant: sized");
        icmpv6::checksum(&icmp, &src_ip, &dst_ip)
    };
    buf[ETH_LEN + IPV6_LEN + 2..ETH_LEN + IPV6_LEN + 4].copy_from_slice(&csum.to_be_bytes());
    buf
}

/// The solicited answer to `ns`: unicast back to the solicitor's link-layer address (RFC 4861
/// §7.2.4). Solicitations without a source link-layer option are not answered (upstream
/// behaviour; the kernel would otherwise need its own resolution first). Duplicate address
/// detection probes (source `::`) are not answered either, or the prober's address
/// configuration would fail.
pub fn solicited_advertisement(
    ns: &Solicitation,
    mac: MacAddr,
    src_ip: Ipv6Addr,
) -> Option<Vec<u8>> {
    let dst_mac = ns.source_mac?;
    if ns.src_ip.is_unspecified() {
        return None;
    }
    Some(neighbor_advertisement(
        src_ip,
        ns.target,
        mac,
        (dst_mac, ns.src_ip),
        true,
    ))
}

/// An unsolicited Neighbor Advertisement for `target` to all-nodes (`ff02::1`) with the
/// Override flag: what the announcer sends on becoming owner (RFC 4861 §7.2.6).
pub fn unsolicited_advertisement(target: Ipv6Addr, mac: MacAddr, src_ip: Ipv6Addr) -> Vec<u8> {
    neighbor_advertisement(src_ip, target, mac, (ALL_NODES_MAC, ALL_NODES), false)
}

/// `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The Ethernet multicast address of `ff02::1` (RFC 2464 §7).
pub const ALL_NODES_MAC: MacAddr = MacAddr(0x33, 0x33, 0, 0, 0, 1);

/// The solicited-node multicast group of an address: `ff02::1:ffXX:XXXX` with the low 24 bits
/// (RFC 4291 §2.7.1). Solicitations for the address go there, so the responder joins it.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group_uses_the_low_24_bits() {
        assert_eq!(
            solicited_node("fd00:77::11".parse().unwrap()),
            "ff02::1:ff00:11".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            solicited_node("2001:db8::abcd:ef12:3456".parse().unwrap()),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn zero_length_option_is_invalid() {
        assert_eq!(
            link_layer_option(&[1, 0, 0, 0, 0, 0, 0, 0], 1),
            Err(DecodeError::InvalidNdp)
        );
        assert_eq!(
            link_layer_option(&[1, 1, 1, 2, 3, 4, 5, 6], 1),
            Ok(Some(MacAddr::new(1, 2, 3, 4, 5, 6)))
        );
    }
}
