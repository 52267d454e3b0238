//! `kubectl` (/usr/bin/kubectl) against a test cluster, as a user would run it.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use super::Cluster;

/// What kubectl printed and whether it succeeded.
pub struct Output {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error (refusals, `Warning:` lines).
    pub stderr: String,
}

/// Runs `kubectl --kubeconfig <cluster> ARGS`, feeding `stdin` (for `-f -`).
pub fn run(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl (/usr/bin/kubectl) runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("kubectl reads its input");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("kubectl finishes");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
