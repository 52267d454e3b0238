//! Making sure removed `network`s left every neighbor's Adj-RIB-Out, re-withdrawing the ones
//! bgpd lost.

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Applier, write_atomic};
use crate::frr::{
    conf::RemovedNetwork,
    vtysh::{self, VtyshError},
};

/// How long a removed network may stay in an Adj-RIB-Out before it is re-withdrawn (a queued
/// withdrawal is sent within a few ms on the lab; see [`Applier::ensure_withdrawn`]).
const WITHDRAW_GRACE: Duration = Duration::from_millis(300);
/// How long to keep re-withdrawing before giving up with a warning.
const WITHDRAW_DEADLINE: Duration = Duration::from_secs(10);

impl Applier {
    /// Makes sure every removed `network` really left the Adj-RIB-Out of every established
    /// neighbor, re-withdrawing it (`network X`, then `no network X`) when bgpd lost the
    /// withdrawal.
    ///
    /// Measured in the netns lab (shell repro of the k8s_lab
    /// `service_through_the_api_reaches_the_router_and_is_withdrawn` flake: two nodes, the
    /// prefix announced by the first reload, `no network` via `vtysh -f` right after the
    /// session is Established or right after the router has both paths): 2 of ~44 deletes
    /// were lost. In both, the node's `show bgp ipv4 unicast` had 0 prefixes but
    /// `neighbors 10.77.0.1 advertised-routes` still listed the prefix (Adj-RIB-Out entry with
    /// no path), no withdrawal was sent, and the router kept a normal, not stale, path from
    /// that node (GR is helper-only, no AFI in the capability) indefinitely.
    /// `clear bgp ipv4 unicast 10.77.0.1 soft out` did not remove it; `network X` followed by
    /// `no network X` (two vtysh runs) did.
    ///
    /// Likely mechanism (FRR source, not proven step by step): `group_announce_route_walkcb`
    /// skips update subgroups whose coalesce timer runs, and the table walk when the timer
    /// fires only announces selected paths; it never withdraws an Adj-RIB-Out entry whose
    /// prefix has no path. The timer runs around session establishment.
    pub(super) async fn ensure_withdrawn(&self, removed: &[RemovedNetwork]) {
        let start = Instant::now();
        let mut rewithdrawn = 0usize;
        loop {
            let stale = match self.still_advertised(removed).await {
                Ok(stale) => stale,
                Err(e) => {
                    warn!(error = %e, "frr: cannot check that removed networks were withdrawn");
                    return;
                }
            };
            if stale.is_empty() {
                if rewithdrawn > 0 {
                    info!(
                        rounds = rewithdrawn,
                        ms = start.elapsed().as_millis() as u64,
                        "frr: bgpd had lost withdrawals; re-withdrawn"
                    );
                }
                return;
            }
            let elapsed = start.elapsed();
            if elapsed >= WITHDRAW_DEADLINE {
                let left: Vec<&str> = stale.iter().map(|r| r.prefix.as_str()).collect();
                warn!(prefixes = ?left, "frr: removed networks are still advertised");
                return;
            }
            if elapsed < WITHDRAW_GRACE {
                // A withdrawal that is queued but not sent yet (bgpd holds its process queue
                // for 50 ms) is still in the Adj-RIB-Out.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            rewithdrawn += 1;
            debug!(
                count = stale.len(),
                "frr: re-withdrawing networks bgpd still advertises"
            );
            if let Err(e) = self.rewithdraw(&stale).await {
                warn!(error = %e, "frr: re-withdrawing networks failed");
                return;
            }
            // Give a running coalesce timer (1.05 s on FRR 8.4) time to end before checking.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// A bgpd `show` command's output: over the bgpd vty session when it is available (sub-ms),
    /// else one vtysh process.
    async fn bgpd_show(&self, command: &str) -> Result<String, VtyshError> {
        if self.cfg.vty_run_dir.is_some() {
            let mut guard = self.bgpd.lock().await;
            if let Some(session) = guard.as_mut() {
                match session.command(command).await {
                    Ok(reply) if reply.success() => return Ok(reply.output),
                    Ok(reply) => {
                        return Err(VtyshError::Failed {
                            what: format!("bgpd vty `{command}`"),
                            code: Some(i32::from(reply.status)),
                            output: reply.output.trim().to_string(),
                        });
                    }
                    Err(e) => {
                        debug!(error = %e, "frr: bgpd vty session lost; using vtysh");
                        *guard = None;
                    }
                }
            }
        }
        self.vtysh.command(command).await
    }

    /// The removed networks that some established neighbor still has in its Adj-RIB-Out.
    async fn still_advertised<'a>(
        &self,
        removed: &'a [RemovedNetwork],
    ) -> Result<Vec<&'a RemovedNetwork>, VtyshError> {
        let mut vrfs: Vec<&str> = removed.iter().map(|r| r.vrf()).collect();
        vrfs.sort_unstable();
        vrfs.dedup();
        let mut stale: Vec<&RemovedNetwork> = Vec::new();
        for vrf in vrfs {
            let neighbors = self
                .bgpd_show(&format!("show bgp vrf {vrf} neighbors json"))
                .await
                .and_then(|text| vtysh::parse_bgp_neighbors(&text))?;
            let mut afis: Vec<&str> = removed
                .iter()
                .filter(|r| r.vrf() == vrf)
                .map(|r| r.afi_safi())
                .collect();
            afis.sort_unstable();
            afis.dedup();
            for (peer, n) in neighbors.iter().filter(|(_, n)| n.is_established()) {
                for afi in &afis {
                    // `ipv4 unicast` → `ipv4Unicast`: only neighbors active in the family
                    // (FRR answers "No such neighbor or address family" for the others).
                    let key = afi.replacen(" u", "U", 1);
                    if !n.address_family_info.contains_key(&key) {
                        continue;
                    }
                    let cmd =
                        format!("show bgp vrf {vrf} {afi} neighbors {peer} advertised-routes json");
                    let v: serde_json::Value = match self
                        .bgpd_show(&cmd)
                        .await
                        .and_then(|text| vtysh::parse_json(&cmd, &text))
                    {
                        Ok(v) => v,
                        Err(e) => {
                            debug!(error = %e, "frr: advertised-routes check skipped");
                            continue;
                        }
                    };
                    let Some(adv) = v.get("advertisedRoutes").and_then(|a| a.as_object()) else {
                        continue;
                    };
                    for r in removed {
                        if r.vrf() == vrf
                            && r.afi_safi() == *afi
                            && adv.contains_key(&r.prefix)
                            && !stale.contains(&r)
                        {
                            stale.push(r);
                        }
                    }
                }
            }
        }
        Ok(stale)
    }

    /// `network X` and then, once bgpd has processed it, `no network X`: the path comes back
    /// and goes again, and this time the withdrawal reaches every subgroup.
    async fn rewithdraw(&self, stale: &[&RemovedNetwork]) -> Result<(), VtyshError> {
        let mut add = String::new();
        let mut remove = String::new();
        for r in stale {
            add.push_str(&format!(
                "{}\n {}\n  network {}\n exit-address-family\nexit\n",
                r.router, r.family, r.prefix
            ));
            remove.push_str(&format!(
                "{}\n {}\n  no network {}\n exit-address-family\nexit\n",
                r.router, r.family, r.prefix
            ));
        }
        let file = self.cfg.dir.join("frr-rewithdraw.conf");
        for (i, text) in [add, remove].iter().enumerate() {
            if i == 1 {
                // Both lines in one batch can be folded into one bgp_process run that sees no
                // change at all; let bgpd process the re-added path first.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            if self.cfg.vty_run_dir.is_some() && self.batch_over_vty(text).await.is_ok() {
                continue;
            }
            write_atomic(&file, text).map_err(|e| VtyshError::Failed {
                what: "write the re-withdraw batch".into(),
                code: None,
                output: e.to_string(),
            })?;
            let out = self.vtysh.raw(&["-f", &file.to_string_lossy()]).await?;
            if !out.success() {
                return Err(VtyshError::Failed {
                    what: "vtysh -f re-withdraw batch".into(),
                    code: out.code,
                    output: out.text(),
                });
            }
        }
        Ok(())
    }
}
