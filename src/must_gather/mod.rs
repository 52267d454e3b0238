//! The collector behind `metallb must-gather`. The node-local part (this module): what the
//! seed's troubleshooting procedure (26.7.2) reads from a speaker's FRR, written to files under
//! a destination directory, each step under its own timeout (a hung vtysh must not hang the
//! gather) and every BGP password redacted. The cluster part ([`cluster`]: objects, metallb.io
//! objects and CRDs, pod logs, and [`speaker_frr`]: the same FRR data from every speaker pod
//! through `pods/exec`) is `metallb must-gather --cluster`, what the must-gather image's
//! `/usr/bin/gather` runs. A status API snapshot is not collected yet.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::frr::vtysh::Vtysh;

pub mod cluster;
pub mod speaker_frr;

/// The seed's five vtysh commands and the file each goes to.
pub const VTYSH_COMMANDS: [(&str, &str); 5] = [
    ("show running-config", "running-config.txt"),
    ("show bgp ipv4", "bgp-ipv4.txt"),
    ("show bgp ipv6", "bgp-ipv6.txt"),
    ("show bgp neighbor", "bgp-neighbor.txt"),
    ("show bfd peer", "bfd-peer.txt"),
];

/// The FRR files copied from the FRR configuration directory.
pub const FRR_FILES: [&str; 4] = ["frr.conf", "frr.log", "daemons", "vtysh.conf"];

/// What to collect and where.
#[derive(Clone, Debug)]
pub struct FrrGather {
    /// The FRR instance to ask.
    pub vtysh: Vtysh,
    /// Where FRR's files live (`/etc/frr`).
    pub frr_dir: PathBuf,
    /// The directory to write to (created).
    pub dest: PathBuf,
    /// The limit of each step.
    pub step_timeout: Duration,
}

/// One step that did not produce its file.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// vtysh failed or timed out.
    #[error("{file}: {source}")]
    Vtysh {
        /// The file that was not written.
        file: String,
        /// Why.
        source: crate::frr::vtysh::VtyshError,
    },
    /// A file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Why.
        source: io::Error,
    },
}

/// Redacts every password in a text that may be one JSON document (a
/// `kubectl.kubernetes.io/last-applied-configuration` annotation), JSON lines (the speaker's
/// log) or configuration lines (frr.conf, `show running-config`, YAML): what every file of
/// must-gather goes through.
pub fn redact_text(text: &str) -> String {
    if !mentions_password(text) {
        return text.to_string();
    }
    if let Some(redacted) = redact_json(text) {
        return redacted;
    }
    text.split_inclusive('\n')
        .map(|line| {
            if mentions_password(line) {
                redact_json(line).unwrap_or_else(|| redact_passwords(line))
            } else {
                // Untouched (a JSON log line keeps its key order).
                line.to_string()
            }
        })
        .collect()
}

fn mentions_password(text: &str) -> bool {
    text.to_ascii_lowercase().contains("password")
}

/// `text` (an object or array, maybe with a line end) with [`redact_value`] applied, or `None`
/// when it is not JSON.
fn redact_json(text: &str) -> Option<String> {
    let body = text.trim_end_matches(['\n', '\r']);
    if !body.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    redact_value(&mut value);
    Some(format!("{value}{}", &text[body.len()..]))
}

/// Replaces every `password` field's value (`password`, `bgpPassword`, `passwordSecret`) and
/// redacts every string that mentions one with [`redact_text`].
pub fn redact_value(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.to_ascii_lowercase().contains("password") && !v.is_null() {
                    *v = Value::String("<redacted>".into());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) if mentions_password(text) => *text = redact_text(text),
        _ => {}
    }
}

/// Replaces what follows the word `password` on each line by `<redacted>`: FRR's `neighbor X
/// password Y` and `password Y`, YAML's `password: Y`, `"password": "Y",`.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let words: Vec<&str> = body.split_whitespace().collect();
        match words.iter().position(|w| is_password_key(w)) {
            Some(i) if i + 1 < words.len() => {
                let indent = &body[..body.len() - body.trim_start().len()];
                out.push_str(indent);
                out.push_str(&words[..=i].join(" "));
                out.push_str(" <redacted>");
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// `password`, `password:`, `"password":`, `Password=` and the like.
fn is_password_key(word: &str) -> bool {
    word.trim_matches('"')
        .trim_end_matches([':', '='])
        .trim_matches('"')
        .eq_ignore_ascii_case("password")
}

impl FrrGather {
    /// Runs every step; a failed step writes `<file>.error` and the others still run. Returns the
    /// failures.
    pub async fn run(&self) -> Result<Vec<StepError>, io::Error> {
        std::fs::create_dir_all(&self.dest)?;
        let vtysh = self.vtysh.clone().with_timeout(self.step_timeout);
        let mut failures = Vec::new();
        for (command, file) in VTYSH_COMMANDS {
            match vtysh.command(command).await {
                Ok(text) => self.write(file, &text, &mut failures),
                Err(source) => {
                    self.write(&format!("{file}.error"), &source.to_string(), &mut failures);
                    failures.push(StepError::Vtysh {
                        file: file.to_string(),
                        source,
                    });
                }
            }
        }
        for file in FRR_FILES {
            match std::fs::read_to_string(self.frr_dir.join(file)) {
                Ok(text) => self.write(file, &text, &mut failures),
                Err(source) => failures.push(StepError::Io {
                    file: file.to_string(),
                    source,
                }),
            }
        }
        Ok(failures)
    }

    fn write(&self, file: &str, text: &str, failures: &mut Vec<StepError>) {
        let path: &Path = &self.dest.join(file);
        if let Err(source) = std::fs::write(path, redact_text(text)) {
            failures.push(StepError::Io {
                file: file.to_string(),
                source,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn passwords_are_redacted_keeping_the_rest() {
        let conf = "router bgp 64500\n neighbor 10.77.0.1 remote-as 64501\n \
                    neighbor 10.77.0.1 password s3cr3t-MD5\n password zebra\nline vty\n";
        let redacted = redact_passwords(conf);
        assert!(!redacted.contains("s3cr3t-MD5"), "{redacted}");
        assert!(!redacted.contains("zebra"), "{redacted}");
        assert!(redacted.contains(" neighbor 10.77.0.1 password <redacted>\n"));
        assert!(redacted.contains(" neighbor 10.77.0.1 remote-as 64501\n"));
        assert!(redacted.ends_with("line vty\n"));
    }

    #[test]
    fn yaml_and_json_passwords_are_redacted() {
        let yaml = "peers:\n- peer-address: 10.77.0.1\n  password: s3cr3t-MD5\n";
        assert_eq!(
            redact_text(yaml),
            "peers:\n- peer-address: 10.77.0.1\n  password: <redacted>\n"
        );
        // kubectl apply's annotation: one JSON document in a string.
        let applied = r#"{"apiVersion":"metallb.io/v1beta2","spec":{"password":"s3cr3t-MD5","peerASN":64501}}"#;
        let redacted = redact_text(applied);
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert!(redacted.contains(r#""peerASN":64501"#), "{redacted}");
        // JSON log lines next to plain ones.
        let log = "{\"msg\":\"config\",\"password\":\"s3cr3t-MD5\"}\nneighbor 10.77.0.1 password s3cr3t-MD5\n";
        let redacted = redact_text(log);
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert_eq!(redacted.lines().count(), 2, "{redacted}");
        assert!(redacted.ends_with("neighbor 10.77.0.1 password <redacted>\n"));
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("vtysh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        path
    }

    #[tokio::test]
    async fn a_hanging_vtysh_does_not_hang_the_gather() {
        let dir = tempfile::tempdir().unwrap();
        let frr_dir = dir.path().join("etc-frr");
        std::fs::create_dir(&frr_dir).unwrap();
        std::fs::write(
            frr_dir.join("frr.conf"),
            "router bgp 64500\n neighbor 10.77.0.1 password s3cr3t\n",
        )
        .unwrap();
        let gather = FrrGather {
            vtysh: Vtysh::new(None).with_binary(script(dir.path(), "exec sleep 60")),
            frr_dir,
            dest: dir.path().join("out"),
            step_timeout: Duration::from_millis(300),
        };
        let started = Instant::now();
        let failures = gather.run().await.unwrap();
        // Five vtysh steps of 300 ms each, nowhere near the 60 s the fake vtysh would take.
        assert!(started.elapsed() < Duration::from_secs(20));
        let timed_out = failures
            .iter()
            .filter(|f| f.to_string().contains("timed out"))
            .count();
        assert_eq!(timed_out, 5, "{failures:?}");
        assert!(gather.dest.join("bfd-peer.txt.error").exists());
        let conf = std::fs::read_to_string(gather.dest.join("frr.conf")).unwrap();
        assert_eq!(
            conf,
            "router bgp 64500\n neighbor 10.77.0.1 password <redacted>\n"
        );
        // frr.log, daemons and vtysh.conf were missing: reported, not fatal.
        assert_eq!(failures.len(), 8, "{failures:?}");
    }

    #[tokio::test]
    async fn vtysh_output_is_written_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let gather = FrrGather {
            vtysh: Vtysh::new(None).with_binary(script(
                dir.path(),
                "echo ' neighbor 10.77.0.1 password s3cr3t'",
            )),
            frr_dir: dir.path().to_path_buf(),
            dest: dir.path().join("out"),
            step_timeout: Duration::from_secs(10),
        };
        gather.run().await.unwrap();
        for (_, file) in VTYSH_COMMANDS {
            let text = std::fs::read_to_string(gather.dest.join(file)).unwrap();
            assert!(text.contains("password <redacted>"), "{file}: {text}");
            assert!(!text.contains("s3cr3t"), "{file}: {text}");
        }
    }
}
