//! frr.conf text as contexts, and the incremental delta between two of them.
//!
//! The parser follows frr-reload.py's idea of a context (frr-reference §3.1), restricted to what
//! the speaker renders in canonical form (frr/CANONICAL.md §2):
//!
//! - `router bgp ASN [vrf V]` blocks, split into their global lines and one sub-context per
//!   `address-family` block;
//! - one-line `ip prefix-list` / `ipv6 prefix-list` entries, keyed by (list, seq);
//! - `route-map NAME permit|deny N` entries, keyed by (name, seq);
//! - any other block (`bfd`, `vrf`, `interface`, ...) or top-level line, compared as a whole.
//!
//! [`delta`] compares the previously applied text with the new one. When the only differences
//! are `network` lines inside address families, prefix-list entries and whole route-map entries,
//! it returns one vtysh batch (`vtysh -f`) that turns the old configuration into the new one,
//! `no` lines included. Anything else is *structural* and is left to frr-reload.py: neighbors,
//! timers, BFD, VRFs and the header change rarely, and frr-reload knows their quirks.

use std::collections::{BTreeMap, BTreeSet};

/// A parsed frr.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conf {
    /// `router bgp` blocks by header line.
    pub routers: BTreeMap<String, RouterBgp>,
    /// Prefix-list entries by (`ip prefix-list NAME` / `ipv6 prefix-list NAME`, seq): full line.
    pub prefix_lists: BTreeMap<(String, u32), String>,
    /// Route-map entries by (name, seq): header line and body lines.
    pub route_maps: BTreeMap<(String, u32), RouteMapEntry>,
    /// Every other top-level line or block, as text, in file order.
    pub other: Vec<String>,
}

/// One `router bgp` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterBgp {
    /// The lines before the first address family (trimmed), in order.
    pub global: Vec<String>,
    /// Address families by header (`address-family ipv4 unicast`).
    pub families: BTreeMap<String, AddressFamily>,
}

/// One `address-family` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressFamily {
    /// `network` lines (trimmed).
    pub networks: BTreeSet<String>,
    /// Every other line (trimmed), in order.
    pub other: Vec<String>,
}

/// One `route-map NAME permit|deny N` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMapEntry {
    /// `route-map NAME permit N`.
    pub header: String,
    /// `match`, `set`, `on-match` lines (trimmed), in order.
    pub body: Vec<String>,
}

/// Why a text could not be parsed into contexts (the fast path is then not used).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// A line that the context parser does not understand where it stands.
    #[error("line {line}: unexpected `{text}`")]
    Unexpected {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Lines that close a block.
fn is_exit(t: &str) -> bool {
    matches!(t, "exit" | "end" | "exit-vrf")
}

impl Conf {
    /// Parses frr.conf text. Blank lines, `!` separators, `#` comments and a final `end` are
    /// ignored.
    pub fn parse(text: &str) -> Result<Self, ConfError> {
        let mut conf = Conf::default();
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end()))
            .filter(|(_, l)| {
                let t = l.trim_start();
                // `end` closes the running config as printed by vtysh.
                !(t.is_empty() || t == "!" || t.starts_with('#') || *l == "end")
            })
            .peekable();
        while let Some((n, line)) = lines.next() {
            if line.starts_with(' ') {
                return Err(ConfError::Unexpected {
                    line: n,
                    text: line.into(),
                });
            }
            if line.starts_with("router bgp ") {
                let mut router = RouterBgp::default();
                let mut family: Option<(String, AddressFamily)> = None;
                for (n, l) in lines.by_ref() {
                    let t = l.trim();
                    if !l.starts_with(' ') {
                        if is_exit(t) {
                            break;
                        }
                        return Err(ConfError::Unexpected {
                            line: n,
                            text: l.into(),
                        });
                    }
                    if let Some((header, af)) = &mut family {
                        if t == "exit-address-family" {
                            let (header, af) = family.take().expect("invariant: in a family");
                            merge_family(&mut router, header, af);
                        } else if t.starts_with("address-family ") {
                            return Err(ConfError::Unexpected {
                                line: n,
                                text: format!("{l} (inside {header})"),
                            });
                        } else if t.starts_with("network ") {
                            af.networks.insert(t.to_string());
                        } else {
                            af.other.push(t.to_string());
                        }
                    } else if t.starts_with("address-family ") {
                        family = Some((t.to_string(), AddressFamily::default()));
                    } else {
                        router.global.push(t.to_string());
                    }
                }
                if let Some((header, af)) = family {
                    merge_family(&mut router, header, af);
                }
                // FRR merges two blocks for the same instance; so do we.
                let entry = conf.routers.entry(line.to_string()).or_default();
                entry.global.extend(router.global);
                for (h, af) in router.families {
                    merge_family(entry, h, af);
                }
            } else if let Some(key) = prefix_list_key(line) {
                conf.prefix_lists.insert(key, line.to_string());
            } else if let Some(key) = route_map_key(line) {
                let mut body = Vec::new();
                while let Some((_, l)) = lines.peek() {
                    if l.starts_with(' ') {
                        body.push(l.trim().to_string());
                        lines.next();
                    } else {
                        if is_exit(l.trim()) {
                            lines.next();
                        }
                        break;
                    }
                }
                conf.route_maps.insert(
                    key,
                    RouteMapEntry {
                        header: line.to_string(),
                        body,
                    },
                );
            } else {
                // A generic block: the header, its indented lines and the closing `exit`.
                let mut block = line.to_string();
                let mut is_block = false;
                while let Some((_, l)) = lines.peek() {
                    if l.starts_with(' ') {
                        is_block = true;
                        block.push('\n');
                        block.push_str(l);
                        lines.next();
                    } else {
                        if is_exit(l.trim()) && (is_block || opens_block(line)) {
                            block.push('\n');
                            block.push_str(l.trim());
                            lines.next();
                        }
                        break;
                    }
                }
                conf.other.push(block);
            }
        }
        Ok(conf)
    }
}

/// Top-level commands that open a block even when it is empty (`bfd` / `exit`).
fn opens_block(line: &str) -> bool {
    line == "bfd"
        || line.starts_with("vrf ")
        || line.starts_with("interface ")
        || line.starts_with("router ")
        || line.starts_with("segment-routing")
        || line.starts_with("line vty")
}

fn merge_family(router: &mut RouterBgp, header: String, af: AddressFamily) {
    let entry = router.families.entry(header).or_default();
    entry.networks.extend(af.networks);
    entry.other.extend(af.other);
}

/// `ip prefix-list NAME seq N ...` → (`ip prefix-list NAME`, N).
fn prefix_list_key(line: &str) -> Option<(String, u32)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [fam @ ("ip" | "ipv6"), "prefix-list", name, "seq", seq, ..] => {
            Some((format!("{fam} prefix-list {name}"), seq.parse().ok()?))
        }
        _ => None,
    }
}

/// `route-map NAME permit|deny N` → (NAME, N).
fn route_map_key(line: &str) -> Option<(String, u32)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["route-map", name, "permit" | "deny", seq] => Some((name.to_string(), seq.parse().ok()?)),
        _ => None,
    }
}

/// What it takes to go from one configuration to another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// The vtysh batch for the allowed changes (empty when there are none).
    pub batch: String,
    /// Counts of what the batch does.
    pub stats: DeltaStats,
    /// Structural differences the batch does not cover; non-empty means frr-reload is needed.
    pub structural: Vec<String>,
    /// The `network` lines the batch removes, with where they were.
    pub removed_networks: Vec<RemovedNetwork>,
}

/// A `network` line removed by a [`Delta`] batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovedNetwork {
    /// `router bgp ASN [vrf V]`.
    pub router: String,
    /// `address-family ipv4 unicast`.
    pub family: String,
    /// The prefix (`198.51.100.0/32`).
    pub prefix: String,
}

impl RemovedNetwork {
    /// The VRF name as `show bgp vrf NAME` wants it (`default` for the default instance).
    pub fn vrf(&self) -> &str {
        match self
            .router
            .split_whitespace()
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["router", "bgp", _, "vrf", v, ..] => v,
            _ => "default",
        }
    }

    /// `ipv4 unicast` / `ipv6 unicast` (the address family header without `address-family`).
    pub fn afi_safi(&self) -> &str {
        self.family
            .strip_prefix("address-family ")
            .unwrap_or(&self.family)
    }
}

/// What a [`Delta`] batch changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// `network` lines added.
    pub networks_added: usize,
    /// `network` lines removed.
    pub networks_removed: usize,
    /// Prefix-list entries added or replaced.
    pub prefix_list_entries_set: usize,
    /// Prefix-list entries removed.
    pub prefix_list_entries_removed: usize,
    /// Route-map entries added or replaced.
    pub route_map_entries_set: usize,
    /// Route-map entries removed.
    pub route_map_entries_removed: usize,
}

impl Delta {
    /// True when the batch alone turns the old configuration into the new one.
    pub fn is_incremental(&self) -> bool {
        self.structural.is_empty()
    }

    /// True when the batch only adds or removes `network` lines: bgpd is the only daemon that
    /// has to hear it (prefix-lists and route-maps live in every daemon vtysh talks to).
    pub fn is_bgpd_only(&self) -> bool {
        let s = &self.stats;
        self.is_incremental()
            && s.prefix_list_entries_set == 0
            && s.prefix_list_entries_removed == 0
            && s.route_map_entries_set == 0
            && s.route_map_entries_removed == 0
    }

    /// True when there is nothing to do at all.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.structural.is_empty()
    }
}

/// The delta from `old` (what was applied) to `new` (what is desired).
///
/// The batch is ordered so that a new announcement is allowed before it exists and an old one
/// is gone before its permission is withdrawn:
/// 1. `no network` lines (inside `router bgp` / `address-family`);
/// 2. route-map entries removed or replaced (`no route-map NAME permit N`);
/// 3. prefix-list entries removed or replaced (`no ip prefix-list ... seq N ...`);
/// 4. prefix-list entries added;
/// 5. route-map entries added, as whole blocks;
/// 6. `network` lines added.
///
/// Networks of a `router bgp` or address family that exists on one side only are not in the
/// batch: that block is structural, and frr-reload handles all of it.
pub fn delta(old: &Conf, new: &Conf) -> Delta {
    let mut d = Delta::default();
    let mut removes = String::new();
    let mut adds = String::new();

    // Header lines, BFD, VRF and other blocks: compared as sets of blocks. Their order is
    // creation order in FRR and does not matter to frr-reload either.
    let old_other: BTreeSet<&String> = old.other.iter().collect();
    let new_other: BTreeSet<&String> = new.other.iter().collect();
    for b in old_other.difference(&new_other) {
        d.structural.push(format!("removed: {}", first_line(b)));
    }
    for b in new_other.difference(&old_other) {
        d.structural.push(format!("added: {}", first_line(b)));
    }

    for header in old.routers.keys() {
        if !new.routers.contains_key(header) {
            d.structural.push(format!("removed: {header}"));
        }
    }
    for (header, nr) in &new.routers {
        let Some(or) = old.routers.get(header) else {
            d.structural.push(format!("added: {header}"));
            continue;
        };
        if or.global != nr.global {
            d.structural
                .push(format!("{header}: neighbor or global lines changed"));
        }
        for af in or.families.keys() {
            if !nr.families.contains_key(af) {
                d.structural.push(format!("{header}: removed {af}"));
            }
        }
        for (af, nf) in &nr.families {
            let Some(of) = or.families.get(af) else {
                d.structural.push(format!("{header}: added {af}"));
                continue;
            };
            if of.other != nf.other {
                d.structural
                    .push(format!("{header} {af}: non-network lines changed"));
            }
            let gone: Vec<_> = of.networks.difference(&nf.networks).collect();
            let came: Vec<_> = nf.networks.difference(&of.networks).collect();
            if !gone.is_empty() {
                removes.push_str(&format!("{header}\n {af}\n"));
                for n in &gone {
                    removes.push_str(&format!("  no {n}\n"));
                    if let Some(prefix) = n.split_whitespace().nth(1) {
                        d.removed_networks.push(RemovedNetwork {
                            router: header.clone(),
                            family: af.clone(),
                            prefix: prefix.to_string(),
                        });
                    }
                }
                removes.push_str(" exit-address-family\nexit\n");
                d.stats.networks_removed += gone.len();
            }
            if !came.is_empty() {
                adds.push_str(&format!("{header}\n {af}\n"));
                for n in &came {
                    adds.push_str(&format!("  {n}\n"));
                }
                adds.push_str(" exit-address-family\nexit\n");
                d.stats.networks_added += came.len();
            }
        }
    }

    let mut middle_removes = String::new();
    let mut middle_adds = String::new();
    for (key, o) in &old.route_maps {
        match new.route_maps.get(key) {
            Some(n) if n == o => {}
            _ => {
                // Replaced entries are removed whole and re-added whole: no half-edited entry
                // (a `set` without its `match`, CANONICAL.md §10) ever exists between lines.
                middle_removes.push_str(&format!("no {}\n", o.header));
                d.stats.route_map_entries_removed += 1;
            }
        }
    }
    for (key, o) in &old.prefix_lists {
        match new.prefix_lists.get(key) {
            Some(n) if n == o => {}
            _ => {
                middle_removes.push_str(&format!("no {o}\n"));
                d.stats.prefix_list_entries_removed += 1;
            }
        }
    }
    for (key, n) in &new.prefix_lists {
        if old.prefix_lists.get(key) != Some(n) {
            middle_adds.push_str(n);
            middle_adds.push('\n');
            d.stats.prefix_list_entries_set += 1;
        }
    }
    for (key, n) in &new.route_maps {
        if old.route_maps.get(key) != Some(n) {
            middle_adds.push_str(&n.header);
            middle_adds.push('\n');
            for l in &n.body {
                middle_adds.push_str(&format!(" {l}\n"));
            }
            middle_adds.push_str("exit\n");
            d.stats.route_map_entries_set += 1;
        }
    }
    // A removed-and-re-added entry counts once as "set", not as a removal.
    let replaced = old
        .route_maps
        .iter()
        .filter(|(k, o)| new.route_maps.get(*k).is_some_and(|n| n != *o))
        .count();
    d.stats.route_map_entries_removed -= replaced;
    let replaced = old
        .prefix_lists
        .iter()
        .filter(|(k, o)| new.prefix_lists.get(*k).is_some_and(|n| n != *o))
        .count();
    d.stats.prefix_list_entries_removed -= replaced;

    d.batch = removes + &middle_removes + &middle_adds + &adds;
    d
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(name: &str) -> String {
        let path = format!("{}/frr/canonical/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn parses_the_reference_rendering() {
        let c = Conf::parse(&canonical("11-full.conf")).unwrap();
        assert!(c.routers.contains_key("router bgp 64500"));
        assert!(c.routers.keys().any(|k| k.contains(" vrf ")));
        let r = &c.routers["router bgp 64500"];
        assert!(r.global.iter().any(|l| l.starts_with("neighbor ")));
        assert!(r.families.contains_key("address-family ipv4 unicast"));
        assert!(!c.prefix_lists.is_empty());
        assert!(!c.route_maps.is_empty());
        assert!(c.other.iter().any(|b| b.starts_with("bfd\n")));
        // Parsing the running form gives the same contexts.
        let running = crate::frr::vtysh::strip_running_preamble(&canonical("11-full.running"));
        assert_eq!(c, Conf::parse(&running).unwrap());
    }

    #[test]
    fn removed_networks_are_listed_with_vrf_and_family() {
        let old = Conf::parse(&canonical("14b-add-service-ip.conf")).unwrap();
        let new = Conf::parse(&canonical("13-session-base.conf")).unwrap();
        let d = delta(&old, &new);
        assert_eq!(
            d.removed_networks,
            [RemovedNetwork {
                router: "router bgp 64500".into(),
                family: "address-family ipv4 unicast".into(),
                prefix: "198.51.100.11/32".into(),
            }]
        );
        assert_eq!(d.removed_networks[0].vrf(), "default");
        assert_eq!(d.removed_networks[0].afi_safi(), "ipv4 unicast");
        let r = RemovedNetwork {
            router: "router bgp 64500 vrf red".into(),
            family: "address-family ipv6 unicast".into(),
            prefix: "2001:db8::1/128".into(),
        };
        assert_eq!((r.vrf(), r.afi_safi()), ("red", "ipv6 unicast"));
        assert!(delta(&new, &old).removed_networks.is_empty());
    }

    #[test]
    fn equal_texts_have_an_empty_delta() {
        let c = Conf::parse(&canonical("13-session-base.conf")).unwrap();
        assert!(delta(&c, &c).is_empty());
    }

    #[test]
    fn new_service_is_incremental_and_ordered() {
        let old = Conf::parse(&canonical("13-session-base.conf")).unwrap();
        let new = Conf::parse(&canonical("14b-add-service-ip.conf")).unwrap();
        let d = delta(&old, &new);
        assert!(d.is_incremental(), "{:?}", d.structural);
        assert_eq!(
            d.batch,
            "ip prefix-list 10.77.0.1-allowed-ipv4 seq 2 permit 198.51.100.11/32\n\
             router bgp 64500\n address-family ipv4 unicast\n  network 198.51.100.11/32\n \
             exit-address-family\nexit\n"
        );
        assert_eq!(d.stats.networks_added, 1);
        assert_eq!(d.stats.prefix_list_entries_set, 1);

        let back = delta(&new, &old);
        assert!(back.is_incremental());
        assert_eq!(
            back.batch,
            "router bgp 64500\n address-family ipv4 unicast\n  no network 198.51.100.11/32\n \
             exit-address-family\nexit\n\
             no ip prefix-list 10.77.0.1-allowed-ipv4 seq 2 permit 198.51.100.11/32\n"
        );
        assert_eq!(back.stats.networks_removed, 1);
        assert_eq!(back.stats.prefix_list_entries_removed, 1);
    }

    #[test]
    fn route_map_entries_are_replaced_whole() {
        let old = Conf::parse(&canonical("13-session-base.conf")).unwrap();
        let new = Conf::parse(&canonical("14d-add-community.conf")).unwrap();
        let d = delta(&old, &new);
        assert!(d.is_incremental(), "{:?}", d.structural);
        assert!(d.batch.contains("no route-map 10.77.0.1-out permit 1\n"));
        assert!(d.batch.contains(
            "route-map 10.77.0.1-out permit 1\n match ip address prefix-list \
             10.77.0.1-64500:100-ip-community-prefixes\n on-match next\n set community \
             64500:100 additive\nexit\n"
        ));
        assert!(d.batch.contains("route-map 10.77.0.1-out permit 3\n"));
        // Removals come before additions.
        let rm = d.batch.find("no route-map 10.77.0.1-out permit 1").unwrap();
        let add = d.batch.find("\nroute-map 10.77.0.1-out permit 1").unwrap();
        assert!(rm < add);
        assert_eq!(d.stats.route_map_entries_set, 3);
        assert_eq!(d.stats.route_map_entries_removed, 0);
    }

    #[test]
    fn neighbor_timer_and_bfd_changes_are_structural() {
        let base = Conf::parse(&canonical("13-session-base.conf")).unwrap();
        for f in [
            "14e-timers.conf",
            "14g-ebgp-multihop-255.conf",
            "14i-bfd-profile-canonical.conf",
        ] {
            let d = delta(&base, &Conf::parse(&canonical(f)).unwrap());
            assert!(!d.is_incremental(), "{f} should be structural");
        }
    }

    #[test]
    fn header_and_af_changes_are_structural() {
        let base = canonical("13-session-base.conf");
        let old = Conf::parse(&base).unwrap();
        let changed = base.replace("log stdout informational", "log stdout warnings");
        assert_eq!(
            delta(&old, &Conf::parse(&changed).unwrap())
                .structural
                .len(),
            2
        );
        let no_v6 = base.replace(
            " !\n address-family ipv6 unicast\n  network 2001:db8::10/128\n  neighbor fd00:77::1 \
             activate\n  neighbor fd00:77::1 route-map fd00:77::1-in in\n  neighbor fd00:77::1 \
             route-map fd00:77::1-out out\n exit-address-family\n",
            "",
        );
        assert_ne!(no_v6, base);
        let d = delta(&old, &Conf::parse(&no_v6).unwrap());
        assert_eq!(
            d.structural,
            ["router bgp 64500: removed address-family ipv6 unicast"]
        );
        // The removed family's networks are not in the batch: frr-reload removes the family.
        assert!(!d.batch.contains("2001:db8::10"));
    }

    #[test]
    fn many_networks_make_one_block() {
        let base = canonical("13-session-base.conf");
        let old = Conf::parse(&base).unwrap();
        let extra: String = (0..100)
            .map(|i| format!("  network 198.18.0.{i}/32\n"))
            .collect();
        let new_text = base.replace(
            "  network 198.51.100.10/32\n",
            &format!("{extra}  network 198.51.100.10/32\n"),
        );
        let d = delta(&old, &Conf::parse(&new_text).unwrap());
        assert!(d.is_incremental());
        assert_eq!(d.stats.networks_added, 100);
        assert_eq!(d.batch.matches("router bgp").count(), 1);
    }

    #[test]
    fn stray_indentation_is_an_error() {
        assert!(matches!(
            Conf::parse(" neighbor 1.2.3.4 remote-as 1\n"),
            Err(ConfError::Unexpected { line: 1, .. })
        ));
    }

    #[test]
    fn empty_bfd_block_is_one_context() {
        let c = Conf::parse("bfd\nexit\n!\nip nht resolve-via-default\n").unwrap();
        assert_eq!(c.other, ["bfd\nexit", "ip nht resolve-via-default"]);
    }
}

#[cfg(test)]
mod golden_tests {
    //! The parser against every file the renderer produces (`tests/golden/frr/`).

    use super::*;

    fn goldens() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/frr");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p.file_name().unwrap().to_string_lossy().into_owned(), text)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_rendered_file_parses_into_contexts() {
        let files = goldens();
        assert!(!files.is_empty());
        for (name, text) in files {
            let c = Conf::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(delta(&c, &c).is_empty(), "{name}");
            // Nothing of the file is lost: every non-separator line lands in some context.
            let lines = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "!")
                .count();
            let counted = c.other.iter().map(|b| b.lines().count()).sum::<usize>()
                + c.prefix_lists.len()
                + c.route_maps
                    .values()
                    .map(|e| e.body.len() + 2)
                    .sum::<usize>()
                + c.routers
                    .values()
                    .map(|r| {
                        2 + r.global.len()
                            + r.families
                                .values()
                                .map(|f| 2 + f.networks.len() + f.other.len())
                                .sum::<usize>()
                    })
                    .sum::<usize>();
            assert_eq!(counted, lines, "{name}");
        }
    }

    #[test]
    fn withdrawing_every_service_of_a_rendered_file_is_incremental() {
        for (name, text) in goldens() {
            if !text.contains("  network ") {
                continue;
            }
            let without: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("network "))
                .map(|l| format!("{l}\n"))
                .collect();
            let old = Conf::parse(&text).unwrap();
            let d = delta(&old, &Conf::parse(&without).unwrap());
            assert!(d.is_incremental(), "{name}: {:?}", d.structural);
            assert_eq!(
                d.stats.networks_removed,
                text.matches("  network ").count(),
                "{name}"
            );
            let back = delta(&Conf::parse(&without).unwrap(), &old);
            assert!(back.is_incremental(), "{name}");
        }
    }
}
