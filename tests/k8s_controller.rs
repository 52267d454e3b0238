//! `metallb controller` against a real kube-apiserver (ignored unless run with `--include-ignored`, see
//! `tests/support`): the seed's behaviours through the API, events, release on delete, config
//! changes without restart, and the last good config kept when a new one is invalid.

mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use metallb::api::{configuration_state::ConfigurationState, ip_address_pool::IPAddressPool};
use serde_json::{Value, json};
use support::{Cluster, METALLB_NAMESPACE, controller as ctl, eventually};

const WAIT: Duration = Duration::from_secs(30);

fn pool(name: &str, addresses: &[&str]) -> IPAddressPool {
    serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": METALLB_NAMESPACE},
        "spec": {"addresses": addresses},
    }))
    .unwrap()
}

/// The seed's allocation behaviours applied through the API get exactly what `metallb plan`
/// predicts, from the real binary: addresses in status, the pool annotation, `IPAllocated` and
/// `AllocationFailed` events with the seed's wording, and the JSON log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn seed_behaviours_through_the_api_match_the_plan() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/samples/seed-behaviours.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let skipped = support::create_yaml(&client, &text, None).await.unwrap();
    assert!(
        skipped.is_empty(),
        "kinds the cluster does not serve: {skipped:?}"
    );

    let bin = support::metallb_bin(&cluster.dir);
    let plan = Command::new(&bin)
        .args(["plan", "-o", "json", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");

    // The binary runs as ServiceAccount metallb-system/controller with deploy/rbac's rules only.
    let rbac = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac/controller.yaml"),
    )
    .unwrap();
    support::create_yaml(&client, &rbac, None).await.unwrap();
    let log_path = cluster.dir.join("controller.log");
    let started = Instant::now();
    // No --log-format: logs in a file are JSON lines by default (`auto`).
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(&bin)
        .args(["controller", "--log-level", "info", "--kubeconfig"])
        .arg(cluster.kubeconfig_as("controller"))
        .args([
            "--lease-duration",
            "6s",
            "--renew-deadline",
            "4s",
            "--retry-period",
            "500ms",
        ])
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let _log_on_failure = support::LogOnPanic(log_path.clone());

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for svc in plan["services"].as_array().unwrap() {
        let name = svc["name"].as_str().unwrap();
        let want: Vec<String> = svc["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        if let Some(error) = svc["error"].as_str() {
            eventually(&format!("AllocationFailed event for {name}"), WAIT, || {
                let client = client.clone();
                async move {
                    ctl::events(&client, "default", "Service", name)
                        .await
                        .into_iter()
                        .find(|(reason, note)| reason == "AllocationFailed" && note == error)
                }
            })
            .await;
            assert!(
                ctl::ips(&services, name).await.is_empty(),
                "{name} has no address"
            );
        } else {
            // The writer lands status first and the annotation second (src/k8s/status.rs),
            // so wait for both before comparing the annotation with the plan.
            let (got, pool) = eventually(&format!("{name} gets {want:?}"), WAIT, || {
                let services = services.clone();
                let want = want.clone();
                async move {
                    let obj = services.get(name).await.ok()?;
                    let got = ctl::service_ips(&obj);
                    let pool = obj
                        .metadata
                        .annotations
                        .unwrap_or_default()
                        .remove("metallb.io/ip-allocated-from-pool")?;
                    (got == want).then_some((got, pool))
                }
            })
            .await;
            assert_eq!(
                Some(pool.as_str()),
                svc["pool"].as_str(),
                "{name}: pool annotation"
            );
            let events = eventually(&format!("IPAllocated event for {name}"), WAIT, || {
                let client = client.clone();
                async move {
                    let e = ctl::events(&client, "default", "Service", name).await;
                    e.iter().any(|(r, _)| r == "IPAllocated").then_some(e)
                }
            })
            .await;
            let quoted: Vec<String> = got.iter().map(|ip| format!("{ip:?}")).collect();
            let note = format!("Assigned IP [{}]", quoted.join(" "));
            assert!(
                events.iter().any(|(_, n)| *n == note),
                "{name}: {events:?} has {note}"
            );
        }
    }
    eprintln!(
        "seed behaviours converged in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    // The example that must fail, worded as the seed words it.
    let failed = ctl::events(&client, "default", "Service", "invalid-request").await;
    assert!(failed.contains(&(
        "AllocationFailed".to_string(),
        "Failed to allocate IP for \"default/invalid-request\": \"4.3.2.1\" is not allowed in config".to_string()
    )));
    assert!(
        ctl::ips(&services, "plain").await.is_empty(),
        "ClusterIP Services are left alone"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "controller exits 0 on SIGTERM: {status}");
    // Every line is MetalLB's JSON: ts, level, msg, caller, and the event's fields.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for line in &lines {
        for key in ["ts", "level", "msg", "caller"] {
            assert!(line[key].is_string(), "no {key:?} in {line}");
        }
    }
    let line = lines
        .iter()
        .find(|l| l["event"] == "ipAllocated" && l["service"] == "default/a-any")
        .unwrap_or_else(|| panic!("no ipAllocated log line:\n{log}"));
    assert_eq!(line["msg"], "IP address assigned by controller");
    assert_eq!(line["ip"], "203.0.113.1");
    assert_eq!(line["level"], "info");
    assert!(
        line["caller"].as_str().unwrap().starts_with("controller/"),
        "{line}"
    );
}

/// A one-address pool: the second Service fails, and gets the address once the first is
/// deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn deleting_a_service_frees_its_ip_for_the_next() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    pools
        .create(&PostParams::default(), &pool("one", &["10.9.0.1/32"]))
        .await
        .unwrap();
    let controller = ctl::spawn(&client, ctl::config("c1"));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("a", json!({}), json!({})),
        )
        .await
        .unwrap();
    eventually("a gets 10.9.0.1", WAIT, || {
        let s = services.clone();
        async move { (ctl::ips(&s, "a").await == ["10.9.0.1"]).then_some(()) }
    })
    .await;
    eventually("pool 'one' status: 1 assigned, 0 available", WAIT, || {
        let pools = pools.clone();
        async move {
            let status = pools.get("one").await.ok()?.status?;
            (status.assigned_ipv4 == 1 && status.available_ipv4 == 0).then_some(())
        }
    })
    .await;
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("b", json!({}), json!({})),
        )
        .await
        .unwrap();
    eventually("b fails: pool full", WAIT, || {
        let client = client.clone();
        async move {
            ctl::events(&client, "default", "Service", "b")
                .await
                .into_iter()
                .find(|(r, n)| {
                    r == "AllocationFailed"
                        && n.starts_with("Failed to allocate IP for \"default/b\"")
                })
        }
    })
    .await;
    let deleted = Instant::now();
    services
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    eventually("b gets 10.9.0.1 after a is deleted", WAIT, || {
        let s = services.clone();
        async move { (ctl::ips(&s, "b").await == ["10.9.0.1"]).then_some(()) }
    })
    .await;
    eprintln!(
        "freed address reused {:.0} ms after the delete",
        deleted.elapsed().as_secs_f64() * 1000.0
    );
    controller.abort();
}

/// No config → nothing; a pool appears → allocated; an invalid pool is reported (event) and the
/// last good config stays in force; a changed pool moves the Services — all without restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn config_changes_take_effect_without_restart() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let controller = ctl::spawn(&client, ctl::config("c1"));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("s1", json!({}), json!({})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        ctl::ips(&services, "s1").await.is_empty(),
        "no pool, no address"
    );

    pools
        .create(&PostParams::default(), &pool("p1", &["10.1.0.0/30"]))
        .await
        .unwrap();
    eventually("s1 gets 10.1.0.0 once p1 exists", WAIT, || {
        let s = services.clone();
        async move { (ctl::ips(&s, "s1").await == ["10.1.0.0"]).then_some(()) }
    })
    .await;

    // Overlaps p1: the whole config is invalid; p1 stays in force.
    pools
        .create(&PostParams::default(), &pool("bad", &["10.1.0.0/31"]))
        .await
        .unwrap();
    // Problems are reported in name order, so the overlap lands on p1 ("bad" < "p1").
    let event = eventually("InvalidConfig event on IPAddressPool/p1", WAIT, || {
        let client = client.clone();
        async move {
            ctl::events(&client, METALLB_NAMESPACE, "IPAddressPool", "p1")
                .await
                .into_iter()
                .find(|(r, _)| r == "InvalidConfig")
        }
    })
    .await;
    eprintln!("invalid config event: {}", event.1);
    let states: Api<ConfigurationState> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    let summary = eventually("ConfigurationState controller is Invalid", WAIT, || {
        let states = states.clone();
        async move {
            let status = states.get_opt("controller").await.ok()??.status?;
            (status.result.as_deref() == Some("Invalid")).then_some(status.error_summary?)
        }
    })
    .await;
    assert!(summary.contains("overlaps"), "{summary}");
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("s2", json!({}), json!({})),
        )
        .await
        .unwrap();
    eventually("s2 gets 10.1.0.1 from the last good config", WAIT, || {
        let s = services.clone();
        async move { (ctl::ips(&s, "s2").await == ["10.1.0.1"]).then_some(()) }
    })
    .await;

    pools.delete("bad", &DeleteParams::default()).await.unwrap();
    eventually("ConfigurationState controller is Valid again", WAIT, || {
        let states = states.clone();
        async move {
            let status = states.get_opt("controller").await.ok()??.status?;
            (status.result.as_deref() == Some("Valid")).then_some(())
        }
    })
    .await;
    let changed = Instant::now();
    pools
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"addresses": ["10.2.0.0/30"]}})),
        )
        .await
        .unwrap();
    eventually("s1, s2 move into the changed pool", WAIT, || {
        let s = services.clone();
        async move {
            let (a, b) = (ctl::ips(&s, "s1").await, ctl::ips(&s, "s2").await);
            (a.len() == 1
                && b.len() == 1
                && a[0].starts_with("10.2.0.")
                && b[0].starts_with("10.2.0.")
                && a != b)
                .then_some(())
        }
    })
    .await;
    eprintln!(
        "pool change applied in {:.0} ms",
        changed.elapsed().as_secs_f64() * 1000.0
    );

    // A Service that stops being a LoadBalancer loses its address and annotation.
    services
        .patch(
            "s2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .unwrap();
    eventually("s2 cleared", WAIT, || {
        let s = services.clone();
        async move {
            let svc = s.get("s2").await.ok()?;
            let annotated = svc
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .contains_key("metallb.io/ip-allocated-from-pool");
            (ctl::service_ips(&svc).is_empty() && !annotated).then_some(())
        }
    })
    .await;
    controller.abort();
}

/// Waits until Service `name` has exactly the addresses `expected` in its status.
async fn wait_ips(services: &Api<Service>, name: &str, expected: &[&str], what: &str) {
    eventually(what, WAIT, || {
        let s = services.clone();
        async move { (ctl::ips(&s, name).await == expected).then_some(()) }
    })
    .await;
}

/// Edits a Service's `spec.loadBalancerIP`.
async fn set_load_balancer_ip(services: &Api<Service>, name: &str, ip: &str) {
    services
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"loadBalancerIP": ip}})),
        )
        .await
        .unwrap();
}

/// Issue 9: an assignment follows the Service's request (upstream's convergeBalancer), an
/// advertisement applied before its peer leaves the config valid, and a peer whose password
/// Secret is missing is an error of that peer only: the rest of the config keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn assignments_follow_requests_and_missing_objects_do_not_freeze_the_config() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let controller = ctl::spawn(&client, ctl::config("c1"));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    let states: Api<ConfigurationState> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    let state = |states: Api<ConfigurationState>| async move {
        let status = states.get_opt("controller").await.ok()??.status?;
        Some((status.result?, status.error_summary.unwrap_or_default()))
    };

    pools
        .create(&PostParams::default(), &pool("p1", &["10.1.0.0/29"]))
        .await
        .unwrap();
    // A BGPAdvertisement naming a peer that does not exist yet.
    support::create_yaml(
        &client,
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: to-later}\nspec: {peers: [later], ipAddressPools: [p1]}\n",
        Some(METALLB_NAMESPACE),
    )
    .await
    .unwrap();
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("s1", json!({}), json!({"loadBalancerIP": "10.1.0.3"})),
        )
        .await
        .unwrap();
    wait_ips(
        &services,
        "s1",
        &["10.1.0.3"],
        "s1 gets its requested 10.1.0.3",
    )
    .await;
    let (result, summary) = eventually("ConfigurationState controller", WAIT, || {
        state(states.clone())
    })
    .await;
    assert_eq!(result, "Valid", "{summary}");

    // The request is edited: the Service moves to the new address.
    set_load_balancer_ip(&services, "s1", "10.1.0.5").await;
    wait_ips(&services, "s1", &["10.1.0.5"], "s1 moves to 10.1.0.5").await;
    // An address outside every pool: AllocationFailed and the old address is released.
    set_load_balancer_ip(&services, "s1", "4.3.2.1").await;
    wait_ips(&services, "s1", &[], "s1 loses 10.1.0.5").await;
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("s2", json!({}), json!({"loadBalancerIP": "10.1.0.5"})),
        )
        .await
        .unwrap();
    wait_ips(
        &services,
        "s2",
        &["10.1.0.5"],
        "s2 gets the released 10.1.0.5",
    )
    .await;

    // The peer arrives, but its password Secret does not: an error of that peer only.
    support::create_yaml(
        &client,
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: later}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, passwordSecret: {name: later-auth}}\n",
        Some(METALLB_NAMESPACE),
    )
    .await
    .unwrap();
    let summary = eventually("ConfigurationState controller is Invalid", WAIT, || {
        let states = states.clone();
        async move {
            let (result, summary) = state(states).await?;
            (result == "Invalid").then_some(summary)
        }
    })
    .await;
    assert!(
        summary.contains("BGPPeer/later: spec.passwordSecret: Secret")
            && summary.contains("not found"),
        "{summary}"
    );
    eventually("InvalidConfig event on BGPPeer/later", WAIT, || {
        let client = client.clone();
        async move {
            ctl::events(&client, METALLB_NAMESPACE, "BGPPeer", "later")
                .await
                .into_iter()
                .find(|(r, _)| r == "InvalidConfig")
        }
    })
    .await;
    // The rest of the config still takes changes: a new pool is used at once.
    pools
        .create(&PostParams::default(), &pool("p2", &["10.2.0.0/30"]))
        .await
        .unwrap();
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("s3", json!({"metallb.io/address-pool": "p2"}), json!({})),
        )
        .await
        .unwrap();
    wait_ips(
        &services,
        "s3",
        &["10.2.0.0"],
        "s3 gets 10.2.0.0 from the new pool",
    )
    .await;
    controller.abort();
}

/// The leader creates the layer 2 membership Secret with a random key when it is missing (as
/// upstream's `--ml-secret-name`); an existing one is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn the_leader_creates_the_memberlist_secret_and_keeps_an_existing_one() {
    use k8s_openapi::api::core::v1::Secret;
    use metallb::k8s::memberlist_secret::{self, Ensured};

    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), METALLB_NAMESPACE);
    let controller = ctl::spawn(&client, ctl::config("c1"));
    let key = eventually("Secret metallb-memberlist created", WAIT, || {
        let secrets = secrets.clone();
        async move {
            let secret = secrets.get_opt("metallb-memberlist").await.ok()??;
            Some(secret.data?.get("secretkey")?.0.clone())
        }
    })
    .await;
    controller.abort();
    assert!(key.len() >= 64, "a short key: {key:?}");

    // Again (a restarted or new leader): nothing changes.
    let again = memberlist_secret::ensure(client.clone(), METALLB_NAMESPACE, "metallb-memberlist")
        .await
        .unwrap();
    assert_eq!(again, Ensured::Existed);
    let after = secrets
        .get("metallb-memberlist")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(after["secretkey"].0, key, "the existing key was replaced");

    // An admin's own Secret under another name is kept too.
    let own: Secret = serde_json::from_value(json!({
        "metadata": {"name": "own-ml"},
        "stringData": {"secretkey": "mine"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &own).await.unwrap();
    let created = memberlist_secret::ensure(client.clone(), METALLB_NAMESPACE, "own-ml")
        .await
        .unwrap();
    assert_eq!(created, Ensured::Existed);
    let own = secrets.get("own-ml").await.unwrap().data.unwrap();
    assert_eq!(own["secretkey"].0, b"mine");
}
