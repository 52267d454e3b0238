//! The layer 2 lab driven from Rust: `tests/lab/l2.sh` namespaces, speakers (`metallb speaker
//! --bgp false`) started inside
//! them, a TCP listener on the service address in each node, and client-side observations
//! (neighbor table, captured answers, TCP connects). Shared by `tests/l2_lab.rs` and
//! `benches/l2_failover.rs`.
#![allow(dead_code)]

#[path = "lab.rs"]
pub mod lab;

use lab::lab_lock;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The Service addresses of `tests/fixtures/l2/lab/cluster.yaml`.
pub const VIP4: &str = "10.77.0.200";
/// IPv6 Service address.
pub const VIP6: &str = "fd00:77::200";
/// Listener port on the service addresses.
pub const PORT: u16 = 8080;

/// Fails, naming what is missing, unless this machine can run the layer 2 lab: root,
/// iproute2, python3. Lab tests are `#[ignore = "needs METALLB_LAB (root, FRR)"]` and run with
/// `cargo test -- --include-ignored` (hack/test); run so, they fail rather than skip.
pub fn require() {
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this lab test needs root (network namespaces); it is #[ignore]d unless run with --include-ignored"
    );
    for tool in ["ip", "python3", "sysctl"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success(),
            "this lab test needs {tool}"
        );
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// MAC of a lab role, as lab.sh assigns them.
pub fn mac(role: &str) -> &'static str {
    match role {
        "node1" => "02:77:00:00:00:0b",
        "node2" => "02:77:00:00:00:0c",
        "node3" => "02:77:00:00:00:0d",
        "client" => "02:77:00:00:00:64",
        _ => panic!("unknown role {role}"),
    }
}

fn node_ip(node: &str) -> &'static str {
    match node {
        "node1" => "10.77.0.11",
        "node2" => "10.77.0.12",
        "node3" => "10.77.0.13",
        _ => panic!("unknown node {node}"),
    }
}

/// A frame seen by the client.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `arp-reply`, `arp-gratuitous` (request or reply form), `na` (solicited) or
    /// `na-unsolicited`.
    pub kind: String,
    /// The address it is about.
    pub ip: String,
    /// Sender MAC.
    pub mac: String,
    /// Seconds since the capture started.
    pub at: f64,
}

/// A capture running on the client.
pub struct Watch {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Watch {
    /// Waits for the capture to end and returns what it saw.
    pub fn collect(mut self) -> Vec<Answer> {
        let mut out = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            let w: Vec<&str> = line.split_whitespace().collect();
            out.push(Answer {
                kind: w[0].to_string(),
                ip: w[1].to_string(),
                mac: w[2].to_string(),
                at: w[3].parse().unwrap(),
            });
        }
        self.child.wait().unwrap();
        out
    }
}

/// A running lab; dropping it stops every process and deletes the namespaces.
pub struct Lab {
    /// Namespace prefix.
    pub prefix: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    speakers: BTreeMap<String, Child>,
    listeners: Vec<Child>,
    /// Extra speaker flags.
    pub speaker_args: Vec<String>,
    /// Run the speakers' BGP side too (`--bgp true`); the L2 lab has no FRR, so it only
    /// renders and retries.
    pub bgp: bool,
    /// Manifests the speakers read (default `tests/fixtures/l2/lab`).
    pub manifests: PathBuf,
    /// With a kubeconfig, speakers run `--from-api` with it instead of reading `manifests`.
    pub kubeconfig: Option<PathBuf>,
    /// The lab has the root netns on its bridge as 10.77.0.254 (`MLB_LAB_HOST=1`).
    host_port: bool,
    /// The node namespaces.
    nodes: Vec<&'static str>,
    /// The machine's lab lock, released after the teardown in `drop`.
    _lock: lab_lock::LabLock,
}

impl Lab {
    /// Creates the namespaces (prefix must be unique among concurrently running labs), puts the
    /// service addresses on each node's `lo` (where the listener binds; the speaker, not the
    /// kernel, answers ARP/NDP for them: `arp_ignore=1`, and NDP only answers for addresses of
    /// the receiving interface) and starts a listener on each node.
    pub fn up(prefix: &str, bin: &Path) -> Lab {
        Lab::up_with(prefix, bin, false, &["node1", "node2"])
    }

    /// [`Lab::up`] with the root netns on the bridge as 10.77.0.254 (an apiserver there is
    /// reachable from the node namespaces).
    pub fn up_with_host(prefix: &str, bin: &Path) -> Lab {
        Lab::up_with(prefix, bin, true, &["node1", "node2"])
    }

    /// [`Lab::up_with_host`] with a third node, node3 (10.77.0.13), for speakers that join
    /// later.
    pub fn up_with_host_three_nodes(prefix: &str, bin: &Path) -> Lab {
        Lab::up_with(prefix, bin, true, &["node1", "node2", "node3"])
    }

    fn up_with(prefix: &str, bin: &Path, host_port: bool, nodes: &[&'static str]) -> Lab {
        require();
        let mut lab = Lab {
            _lock: lab_lock::acquire(),
            nodes: nodes.to_vec(),
            bgp: false,
            kubeconfig: None,
            host_port,
            prefix: prefix.to_string(),
            bin: bin.to_path_buf(),
            dir: tempfile::tempdir().unwrap(),
            speakers: BTreeMap::new(),
            listeners: Vec::new(),
            speaker_args: Vec::new(),
            manifests: root().join("tests/fixtures/l2/lab"),
        };
        // A leftover lab of the same prefix (killed test run) is removed first.
        lab.script("down");
        let out = lab.script("up");
        assert!(
            out.status.success(),
            "l2.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for node in lab.nodes.clone() {
            lab.ip(&[
                "-n",
                &lab.ns(node),
                "addr",
                "add",
                &format!("{VIP4}/32"),
                "dev",
                "lo",
            ]);
            lab.ip(&[
                "-n",
                &lab.ns(node),
                "addr",
                "add",
                &format!("{VIP6}/128"),
                "dev",
                "lo",
            ]);
            // Never use the VIP as the source of the kernel's own ARP requests.
            lab.exec_ok(node, &["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"]);
            lab.start_listener(node);
        }
        lab
    }

    fn script(&self, verb: &str) -> Output {
        run(Command::new(root().join("tests/lab/l2.sh"))
            .arg(verb)
            .env("MLB_LAB_PREFIX", &self.prefix)
            .env("MLB_LAB_HOST", if self.host_port { "1" } else { "0" })
            .env("MLB_L2_NODES", self.nodes.join(" "))
            .env("MLB_LAB_QUIET", "1"))
    }

    /// Namespace of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// `ip ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let out = run(Command::new("ip").args(args));
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command inside a role's namespace.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args))
    }

    fn exec_ok(&self, role: &str, args: &[&str]) {
        let out = self.exec(role, args);
        assert!(
            out.status.success(),
            "{role}: {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_listener(&mut self, node: &str) {
        let script = format!(
            r#"
import socket, threading
def serve(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, {PORT}))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"{node}")
        c.close()
threading.Thread(target=serve, args=(socket.AF_INET6, "{VIP6}"), daemon=True).start()
serve(socket.AF_INET, "{VIP4}")
"#
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "python3", "-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.listeners.push(child);
    }

    /// Starts a TCP listener on the client (10.77.0.100:9000), the partition fence's witness:
    /// the outside world as a node sees it. Returns the speaker flags that use it.
    pub fn start_witness(&mut self, deadline_ms: u64) -> Vec<String> {
        let script = "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('10.77.0.100', 9000))\ns.listen(64)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n";
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("client"), "python3", "-c", script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.listeners.push(child);
        thread::sleep(Duration::from_millis(300));
        vec![
            "--fence-witness".into(),
            "10.77.0.100:9000".into(),
            "--fence-deadline-ms".into(),
            deadline_ms.to_string(),
        ]
    }

    /// Whether a node's status lists the service.
    pub fn announcing(&self, node: &str) -> bool {
        self.status(node)["services"]["default/web"].is_array()
    }

    /// Starts (or restarts) the speaker of a node (layer 2 only: the L2 lab has no FRR). From
    /// manifests it gets a static membership of both nodes; with a kubeconfig it finds its
    /// peers and the membership secret in the cluster (no `--members`).
    pub fn start_speaker(&mut self, node: &str) {
        let log = std::fs::File::create(self.dir.path().join(format!("{node}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node)])
            .arg(&self.bin)
            .args(["speaker", "--log-level", "info", "--node-name", node])
            .args(["--bgp", if self.bgp { "true" } else { "false" }]);
        match &self.kubeconfig {
            Some(kubeconfig) => cmd.arg("--from-api").arg("--kubeconfig").arg(kubeconfig),
            None => cmd.arg("-f").arg(&self.manifests).args([
                "--member-bind",
                &format!("{}:7946", node_ip(node)),
                "--members",
                "10.77.0.11:7946,10.77.0.12:7946",
                "--member-secret",
                "lab-secret",
            ]),
        };
        cmd.arg("--status-file")
            .arg(self.status_path(node))
            .args(&self.speaker_args)
            // Speakers log to stdout (as upstream's do); stderr only carries a fatal error.
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        if let Some(mut old) = self.speakers.insert(node.to_string(), child) {
            let _ = old.kill();
            let _ = old.wait();
        }
    }

    /// Starts both speakers and waits up to `timeout` until node2, the owner of 10.77.0.200
    /// while both live (sha256 "node2#10.77.0.200" sorts first), announces and both see each
    /// other alive: what the tests do next (kill or stop the owner) assumes node1 is its
    /// standby, not a speaker still starting.
    pub fn start_speakers(&mut self, timeout: Duration) {
        let start = Instant::now();
        self.start_speaker("node1");
        self.start_speaker("node2");
        assert!(
            self.wait_announcing("node2", timeout),
            "node2 never announced:\n{}",
            self.log("node2")
        );
        let both = serde_json::json!(["node1", "node2"]);
        for node in ["node1", "node2"] {
            while self.status(node)["liveSpeakers"] != both {
                assert!(
                    start.elapsed() < timeout,
                    "{node} never saw both speakers alive: {}\n{}",
                    self.status(node),
                    self.log(node)
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The process id of a node's speaker.
    pub fn speaker_pid(&self, node: &str) -> u32 {
        self.speakers[node].id()
    }

    /// SIGKILLs a node's speaker (no goodbye to the others) and returns when it was sent.
    pub fn kill_speaker(&mut self, node: &str) -> Instant {
        let mut child = self.speakers.remove(node).expect("speaker running");
        let at = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        at
    }

    /// SIGTERMs a node's speaker (it leaves the membership on the way out), waits for it to
    /// exit and returns when the signal was sent.
    pub fn terminate_speaker(&mut self, node: &str) -> Instant {
        let mut child = self.speakers.remove(node).expect("speaker running");
        let at = Instant::now();
        let out = run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        assert!(out.status.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "speaker exited with {status}");
        eprintln!("{node}: exited {:?} after SIGTERM", at.elapsed());
        at
    }

    /// The speaker's log so far.
    pub fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{node}.log"))).unwrap_or_default()
    }

    fn status_path(&self, node: &str) -> PathBuf {
        self.dir.path().join(format!("{node}.json"))
    }

    /// The speaker's status file.
    pub fn status(&self, node: &str) -> serde_json::Value {
        std::fs::read_to_string(self.status_path(node))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Waits until `node`'s status lists the service (with both addresses).
    pub fn wait_announcing(&self, node: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.status(node)["services"]["default/web"]
                .as_array()
                .map(Vec::len)
                == Some(2)
            {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The client's neighbor entry (lladdr) for an address.
    pub fn neigh(&self, ip: &str) -> Option<String> {
        let out = run(Command::new("ip").args(["-n", &self.ns("client"), "neigh", "show", ip]));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }

    /// Forgets the client's entry, so the next packet resolves afresh (broadcast ARP request /
    /// multicast NS that every node sees).
    pub fn flush(&self, ip: &str) {
        let _ =
            run(Command::new("ip").args(["-n", &self.ns("client"), "neigh", "flush", "to", ip]));
    }

    /// Pings from the client (resolving the address on the way).
    pub fn ping(&self, ip: &str) -> bool {
        let family = if ip.contains(':') { "-6" } else { "-4" };
        self.exec("client", &["ping", family, "-c1", "-W1", "-q", ip])
            .status
            .success()
    }

    /// Connects from the client to the listener on `ip` and returns what it says (the node
    /// name).
    pub fn connect(&self, ip: &str) -> String {
        let script = format!(
            "import socket; s = socket.create_connection(('{ip}', {PORT}), timeout=2); print(s.recv(64).decode())"
        );
        let out = self.exec("client", &["python3", "-c", &script]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the client's entry for `ip` until it is `mac`; how long that took from `since`.
    /// Looks at least once, even when `since` is already `timeout` ago (a speaker slow to exit
    /// after SIGTERM): the answer is then a duration past the timeout, not a misleading `None`.
    pub fn wait_neigh(
        &self,
        ip: &str,
        mac: &str,
        since: Instant,
        timeout: Duration,
    ) -> Option<Duration> {
        loop {
            if self.neigh(ip).as_deref() == Some(mac) {
                return Some(since.elapsed());
            }
            if since.elapsed() >= timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Captures, on the client, the ARP replies / gratuitous ARPs (both forms) / NAs for the
    /// service addresses for `seconds`, while `during` runs.
    pub fn watch_answers(&self, seconds: f32, during: impl FnOnce()) -> Vec<Answer> {
        let watch = self.watch(seconds);
        during();
        watch.collect()
    }

    /// Starts a capture on the client for `seconds`; [`Watch::collect`] waits for it to end.
    pub fn watch(&self, seconds: f32) -> Watch {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns("client"), "python3"])
            .arg(root().join("tests/lab/neigh_watch.py"))
            .args(["eth0", &seconds.to_string(), VIP4, VIP6])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        Watch { child, lines }
    }

    /// Takes a node off the bridge (its switch port down: the node sees no carrier).
    pub fn cut(&self, node: &str) {
        self.switch_port(node, "down");
    }

    /// Puts a node back on the bridge.
    pub fn heal(&self, node: &str) {
        self.switch_port(node, "up");
    }

    fn switch_port(&self, node: &str, state: &str) {
        let port = format!("p-{node}");
        self.ip(&["-n", &self.ns("sw"), "link", "set", &port, state]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.speakers) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for mut c in std::mem::take(&mut self.listeners) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let out = self.script("down");
        if !out.status.success() {
            eprintln!("l2.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
