//! Log lines as MetalLB users know them, from the real binary: `--log-level` with MetalLB's six
//! levels, and off a terminal one JSON object per line with `ts`, `level`, `msg` and `caller`.
//!
//! `metallb validate` on `tests/fixtures/logs/every-level.yaml` logs at every level (trace,
//! debug, info, warn, error), so each level's test sees exactly which lines its filter lets
//! through. The controller's JSON lines are checked in `tests/k8s_controller.rs`
//! (`seed_behaviours_through_the_api_match_the_plan`).

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/logs/every-level.yaml";

/// `metallb <args> validate -f FIXTURE` with stderr (where the tools log) captured, so not a
/// terminal: `--log-format auto` writes JSON.
fn validate_fixture(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metallb"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("METALLB_LOG_LEVEL")
        .env_remove("METALLB_LOG_FILTER")
        .env_remove("METALLB_LOG_FORMAT")
        .args(args)
        .args(["validate", "-f", FIXTURE])
        .output()
        .expect("metallb runs")
}

/// Parses one log line, asserting MetalLB's keys and their shapes.
fn parse_line(line: &str) -> Value {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    for key in ["ts", "level", "msg", "caller"] {
        assert!(value[key].is_string(), "no string {key:?} in {line}");
    }
    let ts = value["ts"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.contains('T') && ts.contains('.'),
        "ts is not RFC 3339 UTC with fractional seconds: {ts}"
    );
    let caller = value["caller"].as_str().unwrap();
    let (file, line_number) = caller.rsplit_once(':').expect("caller is file:line");
    assert!(
        file.ends_with(".rs") && line_number.parse::<u32>().is_ok(),
        "caller: {caller}"
    );
    value
}

/// The levels of the log lines `validate` wrote, after checking that its result (the problem
/// on stdout, exit code 1) does not depend on the log level.
fn levels_logged(level: &str) -> BTreeSet<String> {
    let out = validate_fixture(&["--log-level", level]);
    assert_eq!(out.status.code(), Some(1), "the fixture is invalid");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("IPAddressPool/elsewhere: spec.addresses[0]"),
        "the problem is printed whatever the log level"
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| parse_line(line)["level"].as_str().unwrap().to_string())
        .collect()
}

fn set(levels: &[&str]) -> BTreeSet<String> {
    levels.iter().map(|l| l.to_string()).collect()
}

#[test]
fn log_level_all_logs_everything_trace_included() {
    assert_eq!(
        levels_logged("all"),
        set(&["trace", "debug", "info", "warn", "error"])
    );
}

#[test]
fn log_level_debug_logs_debug_and_above() {
    assert_eq!(
        levels_logged("debug"),
        set(&["debug", "info", "warn", "error"])
    );
}

#[test]
fn log_level_info_logs_info_and_above() {
    assert_eq!(levels_logged("info"), set(&["info", "warn", "error"]));
}

#[test]
fn log_level_warn_logs_warnings_and_errors() {
    assert_eq!(levels_logged("warn"), set(&["warn", "error"]));
}

#[test]
fn log_level_error_logs_errors_only() {
    assert_eq!(levels_logged("error"), set(&["error"]));
}

#[test]
fn log_level_none_logs_nothing() {
    let out = validate_fixture(&["--log-level", "none"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn default_log_level_is_info_like_metallb() {
    let out = validate_fixture(&[]);
    let levels: BTreeSet<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| parse_line(line)["level"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(levels, set(&["info", "warn", "error"]));
}

#[test]
fn json_lines_carry_the_events_fields() {
    let out = validate_fixture(&["--log-level", "warn"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .map(parse_line)
        .find(|line| line["level"] == "warn")
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    assert_eq!(warning["namespaces"], "metallb-system,other");
    assert!(
        warning["caller"]
            .as_str()
            .unwrap()
            .starts_with("cmd/validate.rs:")
    );
}

#[test]
fn text_format_in_a_file_has_no_colour_codes() {
    let out = validate_fixture(&["--log-format", "text"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(" WARN "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape in {stderr:?}");
    assert!(
        serde_json::from_str::<Value>(stderr.lines().next().unwrap()).is_err(),
        "text, not JSON"
    );
}

#[test]
fn log_filter_overrides_the_level() {
    let out = validate_fixture(&["--log-level", "none", "--log-filter", "metallb=debug"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .map(parse_line)
            .any(|line| line["level"] == "debug"),
        "{stderr}"
    );
    let bad = validate_fixture(&["--log-filter", "metallb=loud"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--log-filter"));
}

#[test]
fn unknown_log_level_names_the_six() {
    let out = validate_fixture(&["--log-level", "verbose"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("all, debug, info, warn, error, none"),
        "{stderr}"
    );
}

/// The speaker (manifests mode, no cluster) logs to stdout, like upstream's, and its first line
/// is a JSON object with MetalLB's keys. The 100 s debounce keeps it from touching FRR before
/// it is stopped.
#[test]
fn speaker_logs_json_lines_on_stdout() {
    let manifests = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_metallb"))
        .env_remove("METALLB_LOG_LEVEL")
        .env_remove("METALLB_LOG_FILTER")
        .env_remove("METALLB_LOG_FORMAT")
        .args(["speaker", "--node-name", "node1", "--manifests"])
        .arg(manifests.path())
        .args(["--frr-pathspace", "mlb-logging-test"])
        .args(["--debounce-ms", "100000", "--frr-resync-secs", "0"])
        .arg("--state-dir")
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("metallb speaker starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let line = reader.join().unwrap();
    assert!(
        !line.is_empty(),
        "the speaker logged nothing on stdout; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = parse_line(line.trim_end());
    assert_eq!(value["level"], "info", "{line}");
    assert_eq!(value["node"], "node1", "{line}");
}
