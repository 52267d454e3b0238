//! The speaker's side of the gRPC status API (`metallb.status.v1.Speaker`): FRR's sessions and
//! Adj-RIB-Out polled through vtysh while someone asks ([`crate::status::speaker::poll`]), plus
//! what only the speaker knows — the layer 2 addresses it answers for, the FRR apply loop's
//! state and whether its configuration is valid — merged into one snapshot.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use kube::Client;
use tokio::{sync::watch, task::JoinHandle};
use tracing::error;

use super::layer2::{L2Side, Owned};
use crate::{
    core::service::ServiceKey,
    frr::{apply::ApplyPath, apply_loop::ApplyStatus, vtysh::Vtysh},
    metrics::auth::Authorizer,
    status::{
        Listener, ServeError,
        speaker::{Demand, FrrApply, Layer2Owned, NodeSnapshot, SpeakerService, poll},
    },
};

/// Where and how the status API runs.
#[derive(Clone, Debug)]
pub struct StatusOptions {
    /// Where it listens (`None`: off).
    pub listen: Option<SocketAddr>,
    /// How often FRR is asked while someone watches or asked within the last minute.
    pub poll: Duration,
}

/// The running status API.
pub struct StatusApi {
    snapshot: Arc<watch::Sender<NodeSnapshot>>,
    /// When this node took each (address, interface, Service).
    since: BTreeMap<(IpAddr, String, ServiceKey), u64>,
    tasks: Vec<JoinHandle<()>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StatusApi {
    /// Binds and serves; polls FRR through `vtysh` (BGP on) and follows `apply` (the apply
    /// loop's status). Off loopback, `client` authorizes every call.
    pub fn start(
        addr: SocketAddr,
        options: &StatusOptions,
        node: &str,
        vtysh: Option<Vtysh>,
        apply: Option<watch::Receiver<ApplyStatus>>,
        client: Option<&Client>,
    ) -> Result<StatusApi, ServeError> {
        let authorizer = (!addr.ip().is_loopback())
            .then(|| client.map(|c| Arc::new(Authorizer::new(c.clone()))))
            .flatten();
        if authorizer.is_none() && !addr.ip().is_loopback() {
            return Err(ServeError::Unprotected { addr });
        }
        let listener = Listener::bind(addr)?.with_authorizer(authorizer);
        let (tx, rx) = watch::channel(NodeSnapshot {
            node: node.to_string(),
            ..Default::default()
        });
        let tx = Arc::new(tx);
        let demand = Demand::default();
        let service = SpeakerService::new(rx, demand.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(error) = service.serve(listener, std::future::pending()).await {
                error!(%error, "status API stopped");
            }
        })];
        if let Some(vtysh) = vtysh {
            tasks.push(tokio::spawn(poll(
                vtysh,
                node.to_string(),
                options.poll,
                tx.clone(),
                demand,
            )));
        }
        if let Some(apply) = apply {
            tasks.push(tokio::spawn(follow_apply(apply, tx.clone())));
        }
        Ok(StatusApi {
            snapshot: tx,
            since: BTreeMap::new(),
            tasks,
        })
    }

    /// Publishes what the layer 2 side answers for now.
    pub fn set_layer2(&mut self, l2: &L2Side) {
        let now = unix_now();
        let entries = layer2_entries(l2.owned(), |interfaces| l2.interface_names(interfaces));
        let mut since = BTreeMap::new();
        let owned: Vec<Layer2Owned> = entries
            .into_iter()
            .map(|(address, interface, key)| {
                let taken = self
                    .since
                    .get(&(address, interface.clone(), key.clone()))
                    .copied()
                    .unwrap_or(now);
                since.insert((address, interface.clone(), key.clone()), taken);
                Layer2Owned {
                    address,
                    interface,
                    namespace: key.namespace,
                    name: key.name,
                    since: taken,
                    last_announcement: taken,
                }
            })
            .collect();
        self.since = since;
        self.snapshot.send_if_modified(|s| {
            let changed = s.layer2 != owned;
            s.layer2 = owned;
            changed
        });
    }

    /// Publishes whether the configuration is valid (the problems otherwise).
    pub fn set_configuration(&self, state: Result<(), String>) {
        self.snapshot.send_if_modified(|s| {
            let changed = s.configuration.as_ref() != Some(&state);
            s.configuration = Some(state);
            changed
        });
    }

    /// Stops serving.
    pub fn shutdown(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// (address, interface, Service) for every owned address on every interface it is answered on,
/// in address order.
fn layer2_entries(
    owned: &Owned,
    names: impl Fn(&crate::core::l2::Interfaces) -> Vec<String>,
) -> Vec<(IpAddr, String, ServiceKey)> {
    let mut out = Vec::new();
    for (key, ips) in owned {
        for (ip, interfaces) in ips {
            for name in names(interfaces) {
                out.push((*ip, name, key.clone()));
            }
        }
    }
    out.sort();
    out
}

/// Mirrors the apply loop's status into the snapshot.
async fn follow_apply(
    mut apply: watch::Receiver<ApplyStatus>,
    snapshot: Arc<watch::Sender<NodeSnapshot>>,
) {
    let mut last_applied = 0;
    loop {
        let reduced = {
            let status = apply.borrow_and_update();
            if let Some(attempt) = status.last.as_ref().filter(|a| a.error.is_none()) {
                last_applied = attempt
                    .at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
            }
            reduce_apply(&status, last_applied)
        };
        snapshot.send_if_modified(|s| {
            let changed = s.frr_apply.as_ref() != Some(&reduced);
            s.frr_apply = Some(reduced);
            changed
        });
        if apply.changed().await.is_err() {
            return;
        }
    }
}

fn reduce_apply(status: &ApplyStatus, last_applied: u64) -> FrrApply {
    let last = status.last.as_ref();
    FrrApply {
        last_applied,
        path: match last.and_then(|a| a.path) {
            Some(ApplyPath::Unchanged) => "unchanged",
            Some(ApplyPath::Incremental) => "incremental (vtysh batch)",
            Some(ApplyPath::Reload) => "frr-reload.py",
            None => "",
        }
        .to_string(),
        pending: status.desired_hash.is_some() && status.desired_hash != status.applied_hash,
        last_error: last.and_then(|a| a.error.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::core::l2::Interfaces;

    #[test]
    fn layer2_entries_list_each_address_on_each_allowed_interface() {
        let key = ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        };
        let owned: Owned = BTreeMap::from([(
            key.clone(),
            vec![
                ("198.51.100.7".parse().unwrap(), Interfaces::All),
                (
                    "fd00::7".parse().unwrap(),
                    Interfaces::Only(BTreeSet::from(["eth1".to_string()])),
                ),
            ],
        )]);
        let all = ["eth0".to_string(), "eth1".to_string()];
        let entries = layer2_entries(&owned, |i| {
            all.iter().filter(|n| i.allows(n)).cloned().collect()
        });
        let text: Vec<String> = entries
            .iter()
            .map(|(ip, name, key)| format!("{ip} {name} {key}"))
            .collect();
        assert_eq!(
            text,
            [
                "198.51.100.7 eth0 default/web",
                "198.51.100.7 eth1 default/web",
                "fd00::7 eth1 default/web"
            ]
        );
    }

    #[tokio::test]
    async fn off_loopback_without_an_apiserver_is_refused_not_opened() {
        let options = StatusOptions {
            listen: None,
            poll: Duration::from_millis(500),
        };
        let started = StatusApi::start(
            "0.0.0.0:0".parse().unwrap(),
            &options,
            "node1",
            None,
            None,
            None,
        );
        assert!(matches!(started, Err(ServeError::Unprotected { .. })));
        let loopback = StatusApi::start(
            "127.0.0.1:0".parse().unwrap(),
            &options,
            "node1",
            None,
            None,
            None,
        );
        assert!(loopback.is_ok());
    }

    #[test]
    fn a_newer_desired_text_is_pending_and_a_failure_is_reported() {
        let mut status = ApplyStatus {
            desired_hash: Some("b".into()),
            applied_hash: Some("a".into()),
            ..Default::default()
        };
        let reduced = reduce_apply(&status, 42);
        assert!(reduced.pending);
        assert_eq!(reduced.last_applied, 42);
        status.applied_hash = Some("b".into());
        assert!(!reduce_apply(&status, 42).pending);
    }
}
