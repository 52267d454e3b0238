//! A persistent session on one FRR daemon's vty socket (`bgpd.vty`), the socket vtysh itself
//! talks to.
//!
//! A `vtysh` process costs 25-40 ms on the lab VM before it sends its first command; a command
//! on an open session costs 0.05-0.5 ms (measured in the netns lab, FRR 8.4.4, 1,000
//! networks). The speaker's most common change, one Service's `network` line, is bgpd-only,
//! so it goes over this session and reaches bgpd's work queue in well under a millisecond.
//!
//! Wire protocol (FRR `lib/vty.c`, the `VTY_SHELL_SERV` side): the client writes one command
//! terminated by a NUL byte; the daemon answers with the command's output followed by
//! `\0\0\0` and one status byte (`CMD_SUCCESS` = 0). A new session starts in view mode, so
//! [`VtySession::connect`] sends `enable` first. The daemon holds the node (config, `router
//! bgp`, address family) per session, like vtysh's own.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::UnixStream,
};

/// FRR's `CMD_SUCCESS`.
pub const CMD_SUCCESS: u8 = 0;
/// FRR's `CMD_WARNING`.
pub const CMD_WARNING: u8 = 1;
/// FRR's `CMD_ERR_NO_MATCH`: the parser knows no such command (a syntax error).
pub const CMD_ERR_NO_MATCH: u8 = 2;
/// FRR's `CMD_ERR_AMBIGUOUS`.
pub const CMD_ERR_AMBIGUOUS: u8 = 3;
/// FRR's `CMD_ERR_INCOMPLETE`.
pub const CMD_ERR_INCOMPLETE: u8 = 4;

/// Why a vty session call failed.
#[derive(Debug, thiserror::Error)]
pub enum VtyError {
    /// The socket could not be opened (daemon down, wrong pathspace, permissions).
    #[error("connect {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed, or the daemon closed the session.
    #[error("{path}: `{command}`: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The command in flight.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer within the limit.
    #[error("{path}: `{command}` timed out after {timeout:?}")]
    Timeout {
        /// The socket.
        path: PathBuf,
        /// The command in flight.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A command contains a NUL byte or a newline (it would be split into two commands).
    #[error("not a single vty command: {0:?}")]
    BadCommand(String),
    /// An earlier command timed out or its call was dropped before its answer was read: that
    /// answer may still arrive and would be taken for the next one's. Reconnect.
    #[error("{path}: `{command}` was interrupted; the session is out of step")]
    OutOfStep {
        /// The socket.
        path: PathBuf,
        /// The command whose answer was never read.
        command: String,
    },
}

/// One command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VtyReply {
    /// FRR's status code (`CMD_SUCCESS` = 0).
    pub status: u8,
    /// What the daemon printed.
    pub output: String,
}

impl VtyReply {
    /// True for `CMD_SUCCESS`.
    pub fn success(&self) -> bool {
        self.status == CMD_SUCCESS
    }

    /// True when the daemon's parser rejected the line: nothing of it was applied.
    pub fn is_syntax_error(&self) -> bool {
        matches!(
            self.status,
            CMD_ERR_NO_MATCH | CMD_ERR_AMBIGUOUS | CMD_ERR_INCOMPLETE
        )
    }
}

/// Splits one complete answer off the front of `buf`: `(output, status, bytes used)`, or
/// `None` while the terminator has not fully arrived. Output text never contains NUL, so the
/// first NUL starts the terminator.
pub fn split_reply(buf: &[u8]) -> Option<(String, u8, usize)> {
    let start = buf.iter().position(|b| *b == 0)?;
    if buf.len() < start + 4 {
        return None;
    }
    let output = String::from_utf8_lossy(&buf[..start]).into_owned();
    Some((output, buf[start + 3], start + 4))
}

/// The vty socket of `daemon` for an instance: `/var/run/frr/[<pathspace>/]<daemon>.vty`.
pub fn socket_path(run_dir: &Path, pathspace: Option<&str>, daemon: &str) -> PathBuf {
    let mut p = run_dir.to_path_buf();
    if let Some(ns) = pathspace {
        p.push(ns);
    }
    p.push(format!("{daemon}.vty"));
    p
}

/// Where FRR keeps its sockets on Debian and in the FRR images.
pub const DEFAULT_RUN_DIR: &str = "/var/run/frr";

/// An open, enabled session on one daemon's vty socket.
#[derive(Debug)]
pub struct VtySession {
    path: PathBuf,
    stream: UnixStream,
    timeout: Duration,
    buf: Vec<u8>,
    /// The command being sent or answered. Kept here, not in the future of
    /// [`VtySession::command`], because that future can be dropped (its timeout, a caller's
    /// `select!`) between writing the command and reading the whole answer; still set when the
    /// next command starts, it means the session is out of step for good.
    unanswered: Option<String>,
}

impl VtySession {
    /// Connects to `path` and enters enable mode.
    pub async fn connect(path: impl Into<PathBuf>, timeout: Duration) -> Result<Self, VtyError> {
        let path = path.into();
        let stream = match tokio::time::timeout(timeout, UnixStream::connect(&path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(VtyError::Connect { path, source }),
            Err(_) => {
                return Err(VtyError::Timeout {
                    path,
                    command: "(connect)".into(),
                    timeout,
                });
            }
        };
        let mut session = Self {
            path,
            stream,
            timeout,
            buf: Vec::with_capacity(4096),
            unanswered: None,
        };
        let reply = session.command("enable").await?;
        if !reply.success() {
            return Err(VtyError::Io {
                path: session.path.clone(),
                command: "enable".into(),
                source: std::io::Error::other(format!(
                    "status {}: {}",
                    reply.status,
                    reply.output.trim()
                )),
            });
        }
        Ok(session)
    }

    /// The socket this session is on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one command and returns its answer, whatever its status.
    ///
    /// Not resumable: once a call times out or is dropped before its answer is read, every
    /// later call fails with [`VtyError::OutOfStep`] (the late answer would otherwise be
    /// returned for the next command). Callers drop the session on any error and reconnect.
    pub async fn command(&mut self, command: &str) -> Result<VtyReply, VtyError> {
        if command.contains(['\0', '\n']) {
            return Err(VtyError::BadCommand(command.to_string()));
        }
        if let Some(command) = &self.unanswered {
            return Err(VtyError::OutOfStep {
                path: self.path.clone(),
                command: command.clone(),
            });
        }
        self.unanswered = Some(command.to_string());
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(command)).await {
            Ok(r) => r,
            Err(_) => Err(VtyError::Timeout {
                path: self.path.clone(),
                command: command.to_string(),
                timeout,
            }),
        }
    }

    async fn exchange(&mut self, command: &str) -> Result<VtyReply, VtyError> {
        let path = &self.path;
        let io = |source| VtyError::Io {
            path: path.clone(),
            command: command.to_string(),
            source,
        };
        let mut frame = Vec::with_capacity(command.len() + 1);
        frame.extend_from_slice(command.as_bytes());
        frame.push(0);
        self.stream.write_all(&frame).await.map_err(io)?;
        // Nothing follows an answer (the daemon only speaks when asked), so each exchange
        // starts with an empty buffer.
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((output, status, _)) = split_reply(&self.buf) {
                self.unanswered = None;
                return Ok(VtyReply { status, output });
            }
            let n = self.stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the daemon closed the session",
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_complete_only_with_its_status_byte() {
        assert_eq!(split_reply(b"partial out"), None);
        assert_eq!(split_reply(b"out\0\0\0"), None);
        assert_eq!(
            split_reply(b"out\n\0\0\0\x02"),
            Some(("out\n".to_string(), CMD_ERR_NO_MATCH, 8))
        );
        assert_eq!(split_reply(b"\0\0\0\0"), Some((String::new(), 0, 4)));
        // A second answer behind the first is left for the next call.
        assert_eq!(split_reply(b"a\0\0\0\x01b"), Some(("a".to_string(), 1, 5)));
    }

    #[test]
    fn syntax_errors_are_the_parser_statuses() {
        let reply = |status| VtyReply {
            status,
            output: String::new(),
        };
        assert!(reply(CMD_SUCCESS).success());
        assert!(reply(CMD_ERR_NO_MATCH).is_syntax_error());
        assert!(reply(CMD_ERR_INCOMPLETE).is_syntax_error());
        assert!(!reply(CMD_WARNING).is_syntax_error());
        assert!(!reply(13).is_syntax_error());
    }

    #[test]
    fn socket_paths_follow_the_pathspace() {
        let run = Path::new("/var/run/frr");
        assert_eq!(
            socket_path(run, Some("mlb-node1"), "bgpd"),
            Path::new("/var/run/frr/mlb-node1/bgpd.vty")
        );
        assert_eq!(
            socket_path(run, None, "bgpd"),
            Path::new("/var/run/frr/bgpd.vty")
        );
    }

    #[tokio::test]
    async fn commands_with_a_newline_are_refused_before_sending() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut s = VtySession {
            path: PathBuf::from("pair"),
            stream: a,
            timeout: Duration::from_secs(1),
            buf: Vec::new(),
            unanswered: None,
        };
        assert!(matches!(
            s.command("network 1.2.3.4/32\nno network 5.6.7.8/32").await,
            Err(VtyError::BadCommand(_))
        ));
    }

    /// A session on a fake daemon that answers `<command> answer`, after `slow` for commands
    /// containing "slow" and at once otherwise, in order, as bgpd does.
    fn session_on_fake_daemon(timeout: Duration, slow: Duration) -> VtySession {
        let (client, mut daemon) = UnixStream::pair().unwrap();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            loop {
                while let Some(end) = buf.iter().position(|b| *b == 0) {
                    let command = String::from_utf8(buf.drain(..=end).collect()).unwrap();
                    let command = command.trim_end_matches('\0');
                    if command.contains("slow") {
                        tokio::time::sleep(slow).await;
                    }
                    let reply = format!("{command} answer\0\0\0\0");
                    daemon.write_all(reply.as_bytes()).await.unwrap();
                }
                match daemon.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        VtySession {
            path: PathBuf::from("fake"),
            stream: client,
            timeout,
            buf: Vec::new(),
            unanswered: None,
        }
    }

    /// The late answer of a timed-out command arrives while the next command waits: taken for
    /// the next command's answer, it would report `show fast` as having printed `show slow`'s
    /// output (or a rejected `network` line as accepted).
    #[tokio::test(start_paused = true)]
    async fn after_a_timeout_the_late_answer_is_never_taken_for_the_next_commands() {
        let mut session =
            session_on_fake_daemon(Duration::from_millis(50), Duration::from_millis(80));
        let reply = session.command("show fast").await.unwrap();
        assert_eq!(reply.output, "show fast answer");
        assert!(matches!(
            session.command("show slow").await,
            Err(VtyError::Timeout { .. })
        ));
        match session.command("show fast").await {
            Err(VtyError::OutOfStep { command, .. }) => assert_eq!(command, "show slow"),
            other => panic!("expected OutOfStep, got {other:?}"),
        }
    }

    /// The same when a caller's `select!` drops the call between sending and reading.
    #[tokio::test(start_paused = true)]
    async fn after_a_dropped_call_the_late_answer_is_never_taken_for_the_next_commands() {
        let mut session = session_on_fake_daemon(Duration::from_secs(1), Duration::from_millis(80));
        tokio::select! {
            biased;
            reply = session.command("show slow") => panic!("answered before the drop: {reply:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        match session.command("show fast").await {
            Err(VtyError::OutOfStep { command, .. }) => assert_eq!(command, "show slow"),
            other => panic!("expected OutOfStep, got {other:?}"),
        }
    }
}
