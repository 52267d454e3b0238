//! Layer 2 mode: answering ARP (IPv4) and NDP (IPv6) for the Service addresses this node owns.
//!
//! ```text
//!  manifests / cluster ──► cluster.rs ──► core::l2::elect ◄── membership.rs (live speakers)
//!                                              │ owned IPs
//!                                              ▼
//!                                        announcer.rs ── gratuitous ARP / unsolicited NA
//!                                              │ table of (IP, interfaces)
//!                                              ▼
//!                      responder.rs (one thread per eligible interface, AF_PACKET)
//!                                              │ decode/encode
//!                                              ▼
//!                                         packet.rs
//! ```

pub mod announcer;
pub mod cluster;
pub mod fence;
pub mod interface;
pub mod membership;
pub mod packet;
