//! `metallb webhook` called by a real kube-apiserver over TLS (see `tests/support`): the seed's
//! 26.1.2 checks and the whole invalid corpus refused at `kubectl create`, updates into conflict,
//! deletions as upstream, BGPPeer conversion, the failure policy with the webhook down, and
//! certificate rotation without a failed admission.

mod support;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::Secret,
};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, PostParams},
};
use metallb::webhook::{
    self, WebhookConfig,
    certs::CertSpec,
    configuration::{CONFIGURATION_NAME, Endpoint},
    rotation::{CertSource, Rotation},
};
use support::{Cluster, METALLB_NAMESPACE, kubectl::Output};

const SECRET: &str = "metallb-webhook-cert";

/// A running webhook, in process, reached by the apiserver at `https://127.0.0.1:<port>`.
struct Webhook {
    task: tokio::task::JoinHandle<Result<(), webhook::WebhookError>>,
}

impl Webhook {
    async fn start(cluster: &Cluster, cert_validity: Duration) -> Webhook {
        let [port] = support::free_ports::<1>();
        let url = format!("https://127.0.0.1:{port}");
        let config = WebhookConfig {
            namespace: METALLB_NAMESPACE.into(),
            listen: ([127, 0, 0, 1], port).into(),
            rotation: Rotation {
                namespace: METALLB_NAMESPACE.into(),
                source: CertSource::OwnSecret {
                    name: SECRET.into(),
                    spec: CertSpec {
                        sans: vec!["127.0.0.1".into()],
                        ca_validity: Duration::from_secs(10 * 365 * 86400),
                        cert_validity,
                    },
                },
                endpoint: Endpoint::Url(url),
            },
        };
        let task = tokio::spawn(webhook::run(cluster.client.clone(), config));
        let started = Instant::now();
        // Ready when the apiserver gets the webhook's answer: a pool outside MetalLB's
        // namespace is refused by the webhook alone (the schema allows it).
        loop {
            let probe = kubectl(
                cluster,
                &["create", "--dry-run=server", "-n", "default", "-f", "-"],
                Some(
                    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: probe}\nspec: {addresses: [192.0.2.0/24]}\n",
                ),
            );
            if probe
                .stderr
                .contains("must be created in metallb-system namespace")
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "webhook not answering after 30 s: {}",
                probe.stderr
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Webhook { task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn kubectl(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> Output {
    support::kubectl::run(cluster, args, stdin)
}

fn create(cluster: &Cluster, yaml: &str) -> Output {
    kubectl(
        cluster,
        &["create", "-n", METALLB_NAMESPACE, "-f", "-"],
        Some(yaml),
    )
}

/// Deletes every metallb.io config object and waits until the webhook's cache can no longer
/// hold them (the list is empty, then a moment for the watch).
async fn clean(cluster: &Cluster) {
    let kinds = "ipaddresspools,addresspools,l2advertisements,bgpadvertisements,bgppeers,bfdprofiles,communities,metallbs";
    let out = kubectl(
        cluster,
        &[
            "delete",
            "-n",
            METALLB_NAMESPACE,
            kinds,
            "--all",
            "--wait=true",
        ],
        None,
    );
    assert!(out.ok, "cleanup: {}", out.stderr);
    let started = Instant::now();
    loop {
        let left = kubectl(
            cluster,
            &["get", "-n", METALLB_NAMESPACE, kinds, "-o", "name"],
            None,
        );
        if left.ok && left.stdout.trim().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "left: {}",
            left.stdout
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `# expect:` line of a corpus file: `Kind/name: field: message`.
fn expectation(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("no `# expect:` line"))
        .to_string()
}

/// Creates a corpus file; returns what kubectl said (refusal or warning).
fn refused_or_warned(cluster: &Cluster, file: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let out = create(cluster, &text);
    (!out.ok, out.stderr)
}

/// Each check the seed's 26.1.2 lists for the AddressPool and BGPPeer webhooks, applied with
/// kubectl, is refused naming the object and the field; the same objects, fixed, are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn seed_26_1_2_checks_are_refused_and_fixed_objects_accepted() {
    let cluster = Cluster::start().await;
    let hook = Webhook::start(&cluster, Duration::from_secs(3600)).await;
    // (check, corpus file, the same objects fixed)
    let checks = [
        (
            "address pool names must be unique",
            "invalid/pool-duplicate-name.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: gold}\nspec: {protocol: layer2, addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: silver}\nspec: {addresses: [10.0.1.0/24]}\n",
        ),
        (
            "ranges do not overlap with an existing pool",
            "invalid/pool-overlap.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [10.0.0.0/16]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [10.1.0.0/24]}\n",
        ),
        (
            "bgpAdvertisements only with protocol bgp",
            "invalid/legacy-bgp-advertisements-on-layer2.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: p}\nspec: {protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{localPref: 100}]}\n",
        ),
        (
            "the peer address is unique",
            "invalid/peer-duplicate-address.yaml",
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: a}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.20.1}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: b}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.20.2}\n",
        ),
        (
            "keepaliveTime below holdTime",
            "invalid/peer-keepalive-above-hold-time.yaml",
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, holdTime: 90s, keepaliveTime: 30s}\n",
        ),
        (
            "keepaliveTime needs holdTime",
            "invalid/peer-keepalive-without-hold-time.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, holdTime: 30s, keepaliveTime: 10s}\n",
        ),
        (
            "the same myASN for every peer",
            "invalid/peer-multiple-my-asn.yaml",
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: router-a}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: router-b}\nspec: {myASN: 64500, peerASN: 64502, peerAddress: 10.0.0.2}\n",
        ),
    ];
    for (check, file, fixed) in checks {
        let path = fixture(file);
        let expect = expectation(&std::fs::read_to_string(&path).unwrap());
        let (refused, said) = refused_or_warned(&cluster, &path);
        assert!(refused, "{check}: {file} was accepted: {said}");
        let (object, rest) = expect.split_once(": ").unwrap();
        // A CEL refusal names `spec` and says the field in its message (no fieldPath: README).
        let field = rest.split(": ").next().unwrap();
        let leaf = field.rsplit('.').next().unwrap();
        let name = object.split('/').nth(1).unwrap();
        assert!(
            said.contains(&expect) || (said.contains(name) && said.contains(leaf)),
            "{check}: the refusal names neither {expect:?} nor {name} and {field}:\n{said}"
        );
        eprintln!("refused ({check}): {}", said.trim());
        clean(&cluster).await;
        let accepted = create(&cluster, fixed);
        assert!(
            accepted.ok,
            "{check}: the fixed objects were refused: {}",
            accepted.stderr
        );
        clean(&cluster).await;
    }
    hook.stop().await;
}

/// Every file of the invalid corpus is refused through the apiserver (by the schema, CEL, the
/// apiserver itself, or the webhook naming exactly what `metallb validate` names), except those
/// whose only problem is a reference to an object that may still be created: those are admitted
/// with a warning that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn the_invalid_corpus_is_refused_through_the_apiserver() {
    let cluster = Cluster::start().await;
    let hook = Webhook::start(&cluster, Duration::from_secs(3600)).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() > 50, "corpus: {files:?}");
    let (mut by_webhook, mut by_apiserver, mut warned) = (0, 0, 0);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = expectation(&text);
        let (refused, said) = refused_or_warned(&cluster, file);
        let name = file.file_name().unwrap().to_string_lossy();
        if refused && said.contains("denied the request") {
            assert!(
                said.contains(&expect),
                "{name}: the webhook's denial does not say {expect:?}:\n{said}"
            );
            by_webhook += 1;
        } else if refused {
            by_apiserver += 1;
        } else {
            assert!(
                said.contains("Warning: ") && said.contains(&expect),
                "{name}: accepted without a warning saying {expect:?}:\n{said}"
            );
            warned += 1;
        }
        eprintln!("{name}: {}", said.trim().replace('\n', " | "));
        clean(&cluster).await;
    }
    eprintln!(
        "{} files: {by_webhook} denied by the webhook, {by_apiserver} refused by the apiserver \
         (schema, CEL, names), {warned} admitted with a warning (reference to a later object)",
        files.len()
    );
    assert_eq!(by_webhook + by_apiserver + warned, files.len());
    hook.stop().await;
}

/// Widening a pool into another is refused; deleting a BFDProfile a peer uses is refused as
/// upstream does; deleting a pool that Services use is allowed, as upstream, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn updates_into_conflict_and_deletions() {
    let cluster = Cluster::start().await;
    let hook = Webhook::start(&cluster, Duration::from_secs(3600)).await;
    let pools = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [10.0.1.0/24]}\n";
    let out = create(&cluster, pools);
    assert!(out.ok, "{}", out.stderr);
    // The cache must hold both before the update is judged.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let widen = kubectl(
        &cluster,
        &[
            "patch",
            "-n",
            METALLB_NAMESPACE,
            "ipaddresspool",
            "b",
            "--type=merge",
            "-p",
            r#"{"spec":{"addresses":["10.0.0.0/23"]}}"#,
        ],
        None,
    );
    assert!(!widen.ok, "widening b over a was accepted");
    assert!(
        widen.stderr.contains("denied the request") && widen.stderr.contains("IPAddressPool/"),
        "{}",
        widen.stderr
    );
    assert!(widen.stderr.contains("overlaps"), "{}", widen.stderr);

    // A Service holding an address from pool a (as the controller annotates it).
    let svc = kubectl(
        &cluster,
        &["create", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, annotations: {metallb.io/ip-allocated-from-pool: a}}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n",
        ),
    );
    assert!(svc.ok, "{}", svc.stderr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delete = kubectl(
        &cluster,
        &["delete", "-n", METALLB_NAMESPACE, "ipaddresspool", "a"],
        None,
    );
    assert!(
        delete.ok,
        "deleting a used pool is allowed upstream: {}",
        delete.stderr
    );
    assert!(
        delete.stderr.contains(
            "Warning: IPAddressPool/a: Services hold addresses from this pool: default/web"
        ),
        "{}",
        delete.stderr
    );

    let peer = create(
        &cluster,
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast}\nspec: {}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: fast}\n",
    );
    assert!(peer.ok, "{}", peer.stderr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delete = kubectl(
        &cluster,
        &["delete", "-n", METALLB_NAMESPACE, "bfdprofile", "fast"],
        None,
    );
    assert!(!delete.ok, "a BFDProfile in use was deleted");
    assert!(
        delete
            .stderr
            .contains("BFDProfile/fast: cannot be deleted: BGPPeer/p uses it (spec.bfdProfile)"),
        "{}",
        delete.stderr
    );
    hook.stop().await;
}

/// The seed's v1beta1 BGPPeers apply, read back as v1beta2 (stored) and as v1beta1 unchanged;
/// a v1beta2-only peer reads as v1beta1 and back without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn bgppeer_conversion_through_the_apiserver() {
    let cluster = Cluster::start().await;
    let hook = Webhook::start(&cluster, Duration::from_secs(3600)).await;
    let seed = fixture("seed");
    let mut peers = 0;
    for entry in std::fs::read_dir(&seed).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            if value["kind"] != "BGPPeer" || value["apiVersion"] != "metallb.io/v1beta1" {
                continue;
            }
            peers += 1;
            check_round_trip(&cluster.client, value).await;
        }
    }
    assert!(peers >= 3, "seed BGPPeers found: {peers}");
    // v1beta2-only fields survive a v1beta1 read-modify-write.
    let unnumbered = serde_json::json!({
        "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "unnumbered", "namespace": METALLB_NAMESPACE},
        "spec": {"myASN": 64500, "dynamicASN": "external", "interface": "eth1", "vrf": "red", "connectTime": "5s"},
    });
    let v2 = api(&cluster.client, "v1beta2");
    v2.create(
        &PostParams::default(),
        &serde_json::from_value(unnumbered.clone()).unwrap(),
    )
    .await
    .unwrap();
    let v1 = api(&cluster.client, "v1beta1");
    let as_v1 = v1.get("unnumbered").await.unwrap();
    assert_eq!(as_v1.data["spec"]["peerASN"], 0);
    v1.replace("unnumbered", &PostParams::default(), &as_v1)
        .await
        .unwrap();
    let back = v2.get("unnumbered").await.unwrap();
    assert_eq!(back.data["spec"], unnumbered["spec"]);
    assert!(back.metadata.annotations.unwrap_or_default().is_empty());
    hook.stop().await;
}

fn api(client: &Client, version: &str) -> Api<DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk("metallb.io", version, "BGPPeer");
    let resource = kube::core::ApiResource::from_gvk_with_plural(&gvk, "bgppeers");
    Api::namespaced_with(client.clone(), METALLB_NAMESPACE, &resource)
}

/// Writes a v1beta1 peer; reads it as v1beta2 (same fields) and as v1beta1 (identical spec).
async fn check_round_trip(client: &Client, mut written: serde_json::Value) {
    written["metadata"]["namespace"] = METALLB_NAMESPACE.into();
    let name = written["metadata"]["name"].as_str().unwrap().to_string();
    let v1 = api(client, "v1beta1");
    v1.create(
        &PostParams::default(),
        &serde_json::from_value(written.clone()).unwrap(),
    )
    .await
    .unwrap_or_else(|e| panic!("create v1beta1 BGPPeer {name}: {e}"));
    let as_v2 = api(client, "v1beta2").get(&name).await.unwrap();
    for (field, value) in written["spec"].as_object().unwrap() {
        assert_eq!(
            &as_v2.data["spec"][field], value,
            "{name}: v1beta2 spec.{field}"
        );
    }
    let as_v1 = v1.get(&name).await.unwrap();
    assert_eq!(
        as_v1.data["spec"], written["spec"],
        "{name}: v1beta1 read back"
    );
    assert_eq!(
        as_v1.metadata.annotations, None,
        "{name}: no conversion annotation"
    );
    v1.delete(&name, &DeleteParams::default()).await.unwrap();
}

/// With the webhook down, what README "Admission webhooks" says: creating or changing
/// metallb.io config fails closed ("failed calling webhook"), deleting works, Services and
/// v1beta2 reads are unaffected, and the CRDs' CEL rules still refuse single-object mistakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn webhook_down_fails_config_writes_closed_and_deletes_open() {
    let cluster = Cluster::start().await;
    let hook = Webhook::start(&cluster, Duration::from_secs(3600)).await;
    let pool = create(
        &cluster,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast}\nspec: {}\n",
    );
    assert!(pool.ok, "{}", pool.stderr);
    hook.stop().await;

    let created = create(
        &cluster,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [10.0.1.0/24]}\n",
    );
    assert!(!created.ok, "a pool was created with the webhook down");
    assert!(
        created.stderr.contains("failed calling webhook"),
        "{}",
        created.stderr
    );
    let cel = create(
        &cluster,
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, dynamicASN: external, peerAddress: 10.0.0.1}\n",
    );
    assert!(!cel.ok);
    assert!(
        cel.stderr.contains("exactly one of peerASN and dynamicASN"),
        "{}",
        cel.stderr
    );
    let svc = kubectl(
        &cluster,
        &["create", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n",
        ),
    );
    assert!(
        svc.ok,
        "Services do not go through the webhook: {}",
        svc.stderr
    );
    let read = kubectl(
        &cluster,
        &[
            "get",
            "-n",
            METALLB_NAMESPACE,
            "ipaddresspools",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        read.ok && read.stdout.contains("ipaddresspool.metallb.io/a"),
        "{}",
        read.stderr
    );
    for object in ["ipaddresspool/a", "bfdprofile/fast"] {
        let deleted = kubectl(&cluster, &["delete", "-n", METALLB_NAMESPACE, object], None);
        assert!(
            deleted.ok,
            "delete {object} with the webhook down: {}",
            deleted.stderr
        );
    }
}

/// A serving certificate of a few seconds is replaced before it expires, several times, while
/// admissions run back to back: none of them fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn short_lived_certificates_rotate_without_a_failed_admission() {
    let cluster = Cluster::start().await;
    let validity = Duration::from_secs(9);
    let hook = Webhook::start(&cluster, validity).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), METALLB_NAMESPACE);
    let serving = |s: &Secret| s.data.as_ref().unwrap()["tls.crt"].0.clone();
    let first = serving(&secrets.get(SECRET).await.unwrap());
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(cluster.client.clone());
    let bundle = configurations
        .get(CONFIGURATION_NAME)
        .await
        .unwrap()
        .webhooks
        .unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    assert!(!bundle.0.is_empty());

    let mut seen = vec![first];
    let (mut admitted, mut denied) = (0, 0);
    let started = Instant::now();
    let probe = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: probe}\nspec: {addresses: [192.0.2.0/24]}\n";
    while started.elapsed() < validity * 3 {
        // Every admission must reach the webhook: a good object is admitted, a bad one denied
        // by it (not "failed calling webhook").
        let good = kubectl(
            &cluster,
            &[
                "create",
                "--dry-run=server",
                "-n",
                METALLB_NAMESPACE,
                "-f",
                "-",
            ],
            Some(probe),
        );
        assert!(good.ok, "admission failed during rotation: {}", good.stderr);
        admitted += 1;
        let bad = kubectl(
            &cluster,
            &["create", "--dry-run=server", "-n", "default", "-f", "-"],
            Some(probe),
        );
        assert!(
            bad.stderr.contains("denied the request"),
            "admission failed during rotation: {}",
            bad.stderr
        );
        denied += 1;
        let now = serving(&secrets.get(SECRET).await.unwrap());
        if !seen.contains(&now) {
            seen.push(now);
        }
    }
    eprintln!(
        "{} serving certificates in {:.0} s, {admitted} admitted and {denied} denied, none failed",
        seen.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        seen.len() >= 3,
        "certificate not rotated: {} seen",
        seen.len()
    );
    hook.stop().await;
}
