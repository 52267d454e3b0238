//! The per-speaker FRR part of the cluster must-gather, as upstream's `gather_metallb` collects
//! it with `oc exec -c frr`: for each speaker pod, `cat /etc/frr/<file>` of the seed's four FRR
//! files and the seed's five vtysh commands into one `dump_frr` (each output preceded by
//! `###### <command>`), written into the directory `oc adm inspect` makes for the frr
//! container's logs (`namespaces/<ns>/pods/<pod>/frr/frr/logs/`). Pods run in parallel, the
//! steps of one pod one after the other. Every exec has the step timeout: a hung vtysh leaves
//! what it printed so far and a line saying it timed out, and the gather goes on. Every file is
//! passed through [`super::redact_text`] (frr.conf and the running configuration carry the
//! BGP MD5 passwords).
//!
//! The exec itself is behind [`PodExec`]: [`KubeExec`] is the API server's `pods/exec`
//! (WebSocket), and the unit tests substitute commands that answer, fail or hang.

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Status};
use kube::{Api, api::AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{FRR_FILES, VTYSH_COMMANDS, redact_text};

/// The speaker pod's FRR container (deploy/speaker.yaml; upstream's name too).
pub const FRR_CONTAINER: &str = "frr";

/// The label upstream's gather_metallb selects speaker pods by (deploy/speaker.yaml sets it).
pub const SPEAKER_SELECTOR: &str = "component=speaker";

/// Where FRR's files are inside the frr container.
const FRR_DIR: &str = "/etc/frr";

/// The file the vtysh outputs go to, one after the other.
pub const DUMP_FRR: &str = "dump_frr";

/// Why an exec produced no (complete) output.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The exec could not be started (pod or container missing, no `pods/exec` permission,
    /// the kubelet unreachable).
    #[error("exec failed: {0}")]
    Start(#[source] kube::Error),
    /// The exec started but its output could not be read.
    #[error("reading the output failed: {0}")]
    Read(#[source] std::io::Error),
    /// The command ended unsuccessfully (non-zero exit: the file is missing, vtysh cannot reach
    /// a daemon); `stderr` is what it printed there.
    #[error("{message}{}", if stderr.is_empty() { String::new() } else { format!(": {}", stderr.trim_end()) })]
    Failed {
        /// The API server's description (`command terminated with non-zero exit code: ...`).
        message: String,
        /// The command's standard error.
        stderr: String,
    },
}

/// Runs a command in a pod's container.
pub trait PodExec {
    /// Runs `command` in `container` of `pod`, appending its standard output to `out` as it
    /// arrives: when the returned future is dropped (the step timed out), `out` keeps what was
    /// printed until then.
    fn run(
        &self,
        pod: &str,
        container: &str,
        command: &[&str],
        out: &mut Vec<u8>,
    ) -> impl Future<Output = Result<(), ExecError>> + Send;
}

/// `pods/exec` through the API server, as `oc exec` / `kubectl exec` does.
#[derive(Clone)]
pub struct KubeExec {
    /// The pods of MetalLB's namespace.
    pub pods: Api<Pod>,
}

impl PodExec for KubeExec {
    async fn run(
        &self,
        pod: &str,
        container: &str,
        command: &[&str],
        out: &mut Vec<u8>,
    ) -> Result<(), ExecError> {
        let params = AttachParams::default()
            .container(container)
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let mut process = self
            .pods
            .exec(pod, command.to_vec(), &params)
            .await
            .map_err(ExecError::Start)?;
        let status = process.take_status();
        let mut stderr_bytes = Vec::new();
        // Both streams are read together: a full stderr pipe would stall stdout.
        let (stdout_read, _) = tokio::join!(
            read_appending(process.stdout(), out),
            read_appending(process.stderr(), &mut stderr_bytes),
        );
        stdout_read.map_err(ExecError::Read)?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        exec_outcome(status, &stderr_bytes)
    }
}

/// Reads `reader` to its end, appending each chunk to `out` as soon as it is read (so a dropped
/// future leaves what was read in `out`).
async fn read_appending(
    reader: Option<impl AsyncRead + Unpin>,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// A finished exec's result from the Status the API server sent (none: the stream closed
/// without one, which kubelets do on success too).
fn exec_outcome(status: Option<Status>, stderr: &[u8]) -> Result<(), ExecError> {
    match status {
        Some(status) if status.status.as_deref() == Some("Failure") => Err(ExecError::Failed {
            message: status
                .message
                .unwrap_or_else(|| status.reason.unwrap_or_default()),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
        }),
        _ => Ok(()),
    }
}

/// The directory `oc adm inspect` makes for `container`'s logs of `pod`, which the FRR files
/// join for the frr container (upstream's layout).
pub fn container_logs_dir(dest: &Path, namespace: &str, pod: &str, container: &str) -> PathBuf {
    dest.join("namespaces")
        .join(namespace)
        .join("pods")
        .join(pod)
        .join(container)
        .join(container)
        .join("logs")
}

/// What one step (one exec) left: its output, and why it is incomplete if it is.
#[derive(Debug)]
pub struct StepOutput {
    /// The standard output, as far as it came.
    pub stdout: Vec<u8>,
    /// Why it is incomplete (error or timeout), if it is.
    pub problem: Option<String>,
}

impl StepOutput {
    /// The text written for this step: the output, passwords redacted, and a closing line
    /// saying why it is incomplete.
    pub fn text(&self) -> String {
        let mut text = redact_text(&String::from_utf8_lossy(&self.stdout));
        if let Some(problem) = &self.problem {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("###### must-gather: {problem}\n"));
        }
        text
    }
}

/// One `dump_frr` section: `###### <command>` then the step's text (upstream's format).
pub fn dump_frr_section(command: &str, output: &StepOutput) -> String {
    let mut section = format!("###### {command}\n");
    section.push_str(&output.text());
    if !section.ends_with('\n') {
        section.push('\n');
    }
    section
}

/// Runs one exec under `timeout`.
pub async fn run_step(
    exec: &impl PodExec,
    pod: &str,
    command: &[&str],
    timeout: Duration,
) -> StepOutput {
    let mut stdout = Vec::new();
    let problem =
        match tokio::time::timeout(timeout, exec.run(pod, FRR_CONTAINER, command, &mut stdout))
            .await
        {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("timed out after {timeout:?}")),
        };
    StepOutput { stdout, problem }
}

/// Collects the FRR files and `dump_frr` of every pod in `pods` (in parallel) into their
/// frr container's log directory under `dest`; returns the failures, one line each.
pub async fn gather(
    exec: &impl PodExec,
    dest: &Path,
    namespace: &str,
    pods: &[String],
    step_timeout: Duration,
) -> Vec<String> {
    let per_pod = pods.iter().map(|pod| {
        let dir = container_logs_dir(dest, namespace, pod, FRR_CONTAINER);
        gather_pod(exec, dir, pod, step_timeout)
    });
    futures::future::join_all(per_pod)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One pod's steps, one after the other; each file is written as soon as its step ends (a
/// gather killed by its overall timeout keeps what was done).
async fn gather_pod(
    exec: &impl PodExec,
    dir: PathBuf,
    pod: &str,
    step_timeout: Duration,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return vec![format!("{}: {e}", dir.display())];
    }
    let note = |what: &str, output: &StepOutput, failures: &mut Vec<String>| {
        if let Some(problem) = &output.problem {
            // stderr comes with an error: redacted as the files are.
            let problem = redact_text(problem);
            failures.push(format!("{pod}/{FRR_CONTAINER} {what}: {problem}"));
        }
    };
    for file in FRR_FILES {
        let path = format!("{FRR_DIR}/{file}");
        let output = run_step(exec, pod, &["cat", &path], step_timeout).await;
        note(&format!("cat {path}"), &output, &mut failures);
        write(&dir.join(file), &output.text(), &mut failures);
    }
    let mut dump = String::new();
    for (command, _) in VTYSH_COMMANDS {
        let output = run_step(exec, pod, &["vtysh", "-c", command], step_timeout).await;
        note(&format!("vtysh -c {command:?}"), &output, &mut failures);
        dump.push_str(&dump_frr_section(command, &output));
        write(&dir.join(DUMP_FRR), &dump, &mut failures);
    }
    failures
}

fn write(file: &Path, text: &str, failures: &mut Vec<String>) {
    if let Err(e) = std::fs::write(file, text) {
        failures.push(format!("{}: {e}", file.display()));
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::Mutex};

    use tokio::time::Instant;

    use super::*;

    /// What a fake command does.
    #[derive(Clone)]
    enum Answer {
        /// Prints this and exits 0.
        Prints(&'static str),
        /// Prints this, then never ends.
        PrintsThenHangs(&'static str),
        /// Exits non-zero with this on stderr.
        Fails(&'static str),
    }

    /// Answers by the command line (`cat /etc/frr/frr.conf`, `vtysh -c show bgp ipv4`);
    /// unknown commands hang. Records what it was asked.
    struct FakeExec {
        answers: HashMap<String, Answer>,
        asked: Mutex<Vec<String>>,
    }

    impl FakeExec {
        fn new(answers: &[(&str, Answer)]) -> FakeExec {
            FakeExec {
                answers: answers
                    .iter()
                    .map(|(c, a)| (c.to_string(), a.clone()))
                    .collect(),
                asked: Mutex::new(Vec::new()),
            }
        }
    }

    impl PodExec for FakeExec {
        async fn run(
            &self,
            pod: &str,
            container: &str,
            command: &[&str],
            out: &mut Vec<u8>,
        ) -> Result<(), ExecError> {
            let line = command.join(" ");
            self.asked
                .lock()
                .unwrap()
                .push(format!("{pod}/{container}: {line}"));
            match self.answers.get(&line) {
                Some(Answer::Prints(text)) => {
                    out.extend_from_slice(text.as_bytes());
                    Ok(())
                }
                Some(Answer::Fails(stderr)) => Err(ExecError::Failed {
                    message: "command terminated with non-zero exit code: exit code 1".into(),
                    stderr: (*stderr).into(),
                }),
                Some(Answer::PrintsThenHangs(text)) => {
                    out.extend_from_slice(text.as_bytes());
                    std::future::pending().await
                }
                None => std::future::pending().await,
            }
        }
    }

    const CONF: &str = "router bgp 64500\n neighbor 10.77.0.99 password s3cr3t-MD5\n";

    fn answering_everything() -> FakeExec {
        FakeExec::new(&[
            ("cat /etc/frr/frr.conf", Answer::Prints(CONF)),
            ("cat /etc/frr/frr.log", Answer::Prints("BGP: started\n")),
            ("cat /etc/frr/daemons", Answer::Prints("bgpd=yes\n")),
            (
                "cat /etc/frr/vtysh.conf",
                Answer::Prints("service integrated-vtysh-config\n"),
            ),
            ("vtysh -c show running-config", Answer::Prints(CONF)),
            (
                "vtysh -c show bgp ipv4",
                Answer::Prints("No BGP prefixes displayed"),
            ),
            (
                "vtysh -c show bgp ipv6",
                Answer::Prints("No BGP prefixes displayed\n"),
            ),
            (
                "vtysh -c show bgp neighbor",
                Answer::Prints("BGP neighbor is 10.77.0.1\n"),
            ),
            (
                "vtysh -c show bfd peer",
                Answer::Fails("bfdd is not running"),
            ),
        ])
    }

    #[test]
    fn the_frr_files_go_where_oc_adm_inspect_puts_the_frr_containers_logs() {
        assert_eq!(
            container_logs_dir(
                Path::new("/must-gather"),
                "metallb-system",
                "speaker-x1",
                "frr"
            ),
            Path::new("/must-gather/namespaces/metallb-system/pods/speaker-x1/frr/frr/logs")
        );
    }

    #[test]
    fn an_incomplete_step_keeps_its_output_redacted_and_says_why() {
        let output = StepOutput {
            stdout: b" neighbor 10.77.0.99 password s3cr3t-MD5\n neighbor 10.77.0.99 remote"
                .to_vec(),
            problem: Some("timed out after 20s".into()),
        };
        assert_eq!(
            dump_frr_section("show running-config", &output),
            "###### show running-config\n neighbor 10.77.0.99 password <redacted>\n \
             neighbor 10.77.0.99 remote\n###### must-gather: timed out after 20s\n"
        );
        let complete = StepOutput {
            stdout: b"No BGP prefixes displayed".to_vec(),
            problem: None,
        };
        assert_eq!(
            dump_frr_section("show bgp ipv4", &complete),
            "###### show bgp ipv4\nNo BGP prefixes displayed\n"
        );
    }

    #[test]
    fn a_failure_status_is_an_error_with_stderr_and_anything_else_success() {
        let status = |s: &str| Status {
            status: Some(s.into()),
            message: Some("command terminated with non-zero exit code: exit code 1".into()),
            ..Status::default()
        };
        let err = exec_outcome(
            Some(status("Failure")),
            b"cat: /etc/frr/frr.log: No such file\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "command terminated with non-zero exit code: exit code 1: cat: /etc/frr/frr.log: No \
             such file"
        );
        assert!(exec_outcome(Some(status("Success")), b"").is_ok());
        assert!(exec_outcome(None, b"").is_ok());
    }

    #[tokio::test]
    async fn every_speaker_gets_the_four_files_and_dump_frr_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let exec = answering_everything();
        let pods = ["speaker-a".to_string(), "speaker-b".to_string()];
        let failures = gather(
            &exec,
            dir.path(),
            "metallb-system",
            &pods,
            Duration::from_secs(5),
        )
        .await;
        // Only the failing `show bfd peer`, once per pod, naming the pod.
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].starts_with("speaker-a/frr vtysh -c \"show bfd peer\""),
            "{failures:?}"
        );
        assert!(failures[0].contains("bfdd is not running"), "{failures:?}");
        for pod in pods {
            let logs = container_logs_dir(dir.path(), "metallb-system", &pod, "frr");
            let conf = std::fs::read_to_string(logs.join("frr.conf")).unwrap();
            assert_eq!(
                conf,
                "router bgp 64500\n neighbor 10.77.0.99 password <redacted>\n"
            );
            for file in ["frr.log", "daemons", "vtysh.conf"] {
                assert!(logs.join(file).is_file(), "{pod}: {file}");
            }
            let dump = std::fs::read_to_string(logs.join(DUMP_FRR)).unwrap();
            let headers: Vec<&str> = dump
                .lines()
                .filter(|l| l.starts_with("###### show"))
                .collect();
            assert_eq!(
                headers,
                VTYSH_COMMANDS.map(|(c, _)| format!("###### {c}")),
                "{dump}"
            );
            assert!(!dump.contains("s3cr3t"), "{dump}");
            assert!(dump.contains("password <redacted>"), "{dump}");
            assert!(
                dump.contains(
                    "###### show bgp ipv4\nNo BGP prefixes displayed\n###### show bgp ipv6\n"
                ),
                "{dump}"
            );
            assert!(dump.ends_with("bfdd is not running\n"), "{dump}");
        }
        let asked = exec.asked.lock().unwrap();
        assert_eq!(asked.len(), 18, "{asked:?}");
        assert!(asked.iter().all(|a| a.contains("/frr: ")), "{asked:?}");
    }

    /// Time is paused: the clock only moves when every task waits on a timer, so the elapsed
    /// time is exactly the timeouts that fired, and a missing timeout would show as the outer
    /// one firing instead of a test that hangs.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_vtysh_ends_at_the_step_timeout_keeping_what_it_printed() {
        let dir = tempfile::tempdir().unwrap();
        let mut exec = answering_everything();
        exec.answers.insert(
            "vtysh -c show running-config".into(),
            Answer::PrintsThenHangs("frr version 8.4\n neighbor 10.77.0.99 password s3cr3t-MD5\n"),
        );
        exec.answers.remove("vtysh -c show bgp neighbor");
        let pods = ["speaker-a".to_string(), "speaker-b".to_string()];
        let step = Duration::from_secs(20);
        let started = Instant::now();
        let failures = tokio::time::timeout(
            Duration::from_secs(3600),
            gather(&exec, dir.path(), "metallb-system", &pods, step),
        )
        .await
        .expect("the gather hung");
        // Two hung steps per pod, the pods in parallel: two step timeouts, not four.
        assert_eq!(started.elapsed(), 2 * step);
        let timed_out: Vec<&String> = failures
            .iter()
            .filter(|f| f.contains("timed out after 20s"))
            .collect();
        assert_eq!(timed_out.len(), 4, "{failures:?}");
        let logs = container_logs_dir(dir.path(), "metallb-system", "speaker-b", "frr");
        let dump = std::fs::read_to_string(logs.join(DUMP_FRR)).unwrap();
        assert!(
            dump.starts_with(
                "###### show running-config\nfrr version 8.4\n neighbor 10.77.0.99 password \
                 <redacted>\n###### must-gather: timed out after 20s\n###### show bgp ipv4\n"
            ),
            "{dump}"
        );
        assert!(
            dump.contains("###### show bgp neighbor\n###### must-gather: timed out after 20s\n###### show bfd peer\n"),
            "{dump}"
        );
    }
}
