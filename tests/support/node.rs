//! A real Kubernetes node on this host for a [`Cluster`]: `hack/node.sh up` starts
//! kube-controller-manager, kube-scheduler, containerd with our images and a kubelet that
//! registers the host (the lab's host port, 10.77.0.254) as a node; dropping the [`Node`] runs
//! `hack/node.sh down`, which removes the pods through the API and then every process, mount,
//! cgroup, interface and iptables rule the node made. [`Node::kubectl`] runs the pinned kubectl
//! (hack/k8s-bin.sh) against the cluster, as an admin would.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use super::{Cluster, bin_dir};

/// The script.
pub fn node_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/node.sh")
}

/// A running node; dropped, it is torn down.
pub struct Node {
    /// The node's name (its Node object).
    pub name: String,
    /// The node's state directory (logs of containerd, kubelet & co. under `logs/`).
    pub dir: PathBuf,
    kubeconfig: PathBuf,
    down: bool,
}

impl Node {
    /// Brings the node up for `cluster` (started with `ClusterOptions { pods: true, .. }` and
    /// reachable at `cluster.server` from the host); panics with the script's output when the
    /// node does not become Ready. Needs root, hack/setup.sh's packages, hack/k8s-bin.sh's
    /// binaries and hack/images.sh's images: a missing one fails the test.
    pub fn up(cluster: &Cluster, name: &str) -> Node {
        let dir = cluster.dir.join("node");
        let node = Node {
            name: name.to_string(),
            dir: dir.clone(),
            kubeconfig: cluster.kubeconfig.clone(),
            down: false,
        };
        let out = node
            .script("up")
            .env("NODE_KUBECONFIG", &cluster.kubeconfig)
            .env("NODE_API", &cluster.server)
            .env("NODE_CA", cluster.dir.join("ca.crt"))
            .env("NODE_SA_KEY", cluster.dir.join("sa.key"))
            .output()
            .expect("run hack/node.sh");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "hack/node.sh up failed (logs in {})",
            dir.join("logs").display()
        );
        node
    }

    fn script(&self, action: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(node_sh())
            .arg(action)
            .env("NODE_DIR", &self.dir)
            .env("NODE_NAME", &self.name)
            .env("K8S_BIN_DIR", bin_dir());
        cmd
    }

    /// Runs kubectl with the admin kubeconfig; returns stdout, panics on failure with stderr.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_kubectl(args);
        assert!(ok, "kubectl {}: {stderr}", args.join(" "));
        stdout
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub fn try_kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(bin_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Tears the node down and returns what is left of it on the host: processes, mounts,
    /// cgroups, the pod bridge, the iptables chain (empty when the teardown was complete).
    pub fn down(&mut self) -> Vec<String> {
        self.down = true;
        let out = self.script("down").output().expect("run hack/node.sh down");
        let mut left = Vec::new();
        if !out.status.success() {
            left.push(format!(
                "hack/node.sh down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        left.extend(leftovers(&self.dir));
        left
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if !self.down {
            let left = self.down();
            if !left.is_empty() {
                eprintln!("hack/node.sh down left: {left:?}");
            }
        }
    }
}

/// What a node with state directory `dir` could leave behind.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut left = Vec::new();
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Processes whose command line names the state directory, and runc shims.
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid != std::process::id()
            && (cmdline.contains(&dir) || cmdline.contains("containerd-shim-runc-v2"))
        {
            left.push(format!("process {pid}: {cmdline}"));
        }
    }
    let mounts = sh(&format!("grep -F -- '{dir}' /proc/self/mounts || true"));
    if !mounts.is_empty() {
        left.push(format!("mounts: {mounts}"));
    }
    let cgroups = sh("ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true");
    if !cgroups.is_empty() {
        left.push(format!("cgroups: {cgroups}"));
    }
    let links = sh("ip -o link show mlbcni0 2>/dev/null || true");
    if !links.is_empty() {
        left.push(format!("pod bridge: {links}"));
    }
    let nat = sh("iptables -w -t nat -S 2>/dev/null | grep MLB-NODE-SVC || true");
    if !nat.is_empty() {
        left.push(format!("iptables: {nat}"));
    }
    if Path::new(&dir).exists() {
        left.push(format!("state directory {dir}"));
    }
    left
}

/// The value in column `name` of a one-row `kubectl get` table. Columns are found by their
/// header's offset (kubectl left-aligns values under headers), so a header may hold a space,
/// as `NODE SELECTOR`.
pub fn column(table: &str, name: &str) -> String {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let start = header
        .match_indices(name)
        .map(|(at, _)| at)
        .find(|&at| {
            (at == 0 || header[..at].ends_with(' '))
                && header[at + name.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ' ')
        })
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    row.get(start..)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Polls `check` every 200 ms (blocking: kubectl is a process) until it returns `Some`, or
/// panics after `timeout` with `what`. Call it from a multi-threaded tokio test.
pub fn eventually_sync<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = tokio::task::block_in_place(&mut check) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
