//! The binary's HTTP face, run as a real process: in file mode the flags of the input are
//! served once it is read; on Kafka every instance serves the flags of the whole output topic
//! and says it is ready only once it has read that topic and restored its partitions. Both
//! expose the Prometheus metrics of the run and stop on SIGTERM.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use modsignal_core::event::Category;
use modsignal_core::{Cohort, Policy};
use modsignal_tests::binary::modsignal_command;
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::simulated;
use modsignal_tests::{final_flags, run_lines};

const ANALYST: &str = "analyst-token-for-the-serve-tests";
const LIAISON: &str = "liaison-token-for-the-serve-tests";

/// The input of the file-mode runs.
const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/offence_viral_hate.jsonl");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = modsignal_tests::scratch_dir(env!("CARGO_TARGET_TMPDIR"), "serve");
    dir.join(name)
}

/// A config file with the `[http]` section the tests use, and `extra` (a `[kafka]` section).
fn config_file(name: &str, port: u16, extra: &str) -> PathBuf {
    let path = temp_path(name);
    let text = format!(
        r#"
[http]
address = "127.0.0.1:{port}"
tokens = [{{ token = "{ANALYST}", role = "analyst" }}, {{ token = "{LIAISON}", role = "liaison" }}]
pseudonymise = ["liaison"]
pseudonym_key = "a-key-for-pseudonyms-in-the-serve-tests"
{extra}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One HTTP/1.1 GET: the status and the body.
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn json(port: u16, path: &str, token: &str) -> serde_json::Value {
    let (status, body) = get(port, path, Some(token)).expect("the server answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Every flag the API lists to `token` for `query` (`limit=500`, say), following the cursor.
fn listed(port: u16, token: &str, query: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    let mut path = format!("/api/v1/flags?{query}");
    loop {
        let page = json(port, &path, token);
        all.extend(page["flags"].as_array().unwrap().iter().map(|e| e["flag"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/flags?{query}&cursor={c}"),
            None => return all,
        }
    }
}

/// The revision of each flag in `flags`, by `flag_id`.
fn revisions(flags: &[serde_json::Value]) -> BTreeMap<String, u64> {
    flags
        .iter()
        .map(|f| {
            (
                f["flag_id"].as_str().unwrap().to_owned(),
                f["revision"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The lines of [`SCENARIO`].
fn scenario_lines() -> Vec<String> {
    std::fs::read_to_string(SCENARIO)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok())
        .sum()
}

/// `modsignal run` as a child process, its log (stderr) in a temporary file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `modsignal run` with `args` and the variables `envs`, its log in `{name}.log`.
    fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let log = temp_path(&format!("{name}.log"));
        let mut cmd = modsignal_command();
        cmd.arg("run")
            .args(args)
            .envs(envs.iter().copied())
            .stderr(std::fs::File::create(&log).unwrap());
        Process {
            child: cmd.spawn().expect("start modsignal"),
            log,
        }
    }

    /// Starts `modsignal run` in file mode on [`SCENARIO`], its flags in `{name}-flags.jsonl`
    /// (returned) and its rejects in `{name}-rejects.jsonl`, with `args` and `envs` for the rest.
    fn on_scenario(name: &str, args: &[&str], envs: &[(&str, &str)]) -> (Process, PathBuf) {
        let out = temp_path(&format!("{name}-flags.jsonl"));
        let rejects = temp_path(&format!("{name}-rejects.jsonl"));
        let files = [
            "-i",
            SCENARIO,
            "-o",
            out.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ];
        let args: Vec<&str> = files.into_iter().chain(args.iter().copied()).collect();
        (Process::start(name, &args, envs), out)
    }

    /// Waits until the server on `port` says it is ready, failing if the process exits first.
    fn wait_ready(&mut self, port: u16) {
        self.wait_until("readiness", Duration::from_secs(60), || {
            get(port, "/readyz", None).is_some_and(|(s, _)| s == 200)
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `ready`, failing if the process exits first.
    fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("modsignal exited ({status}) before {what}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn terminate(mut self) -> ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn file_mode_serves_the_flags_of_its_input_until_sigterm() {
    let port = free_port();
    let config = config_file("file.toml", port, "");
    let lines = scenario_lines();
    let (flags, errors) = run_lines(&Policy::default(), &lines);
    assert!(errors.is_empty(), "{errors:?}");
    let expected = final_flags(&flags);
    let (mut p, out) = Process::on_scenario("file", &["--config", config.to_str().unwrap()], &[]);
    p.wait_ready(port);
    assert_eq!(get(port, "/api/v1/flags", None).unwrap().0, 401, "no token, no flags");

    let served = revisions(&listed(port, ANALYST, "limit=500"));
    let want: BTreeMap<String, u64> = expected.iter().map(|(id, f)| (id.clone(), f.revision)).collect();
    assert_eq!(served, want, "the analyst sees every flag at its newest revision");

    let raised = listed(port, LIAISON, "limit=500");
    assert_eq!(raised.len(), expected.values().filter(|f| f.raised).count());
    for f in &raised {
        assert!(f["account"].as_str().unwrap().starts_with("pseud:"), "{f}");
    }

    let (status, text) = get(port, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "modsignal_events_total{type=\"post\"}"),
        lines.iter().filter(|l| l.contains("\"type\":\"post\"")).count() as f64
    );
    let output = std::fs::read_to_string(&out).unwrap();
    let (pages, written): (Vec<&str>, Vec<&str>) = output
        .lines()
        .partition(|l| l.starts_with(r#"{"schema":"modsignal.cohort/1""#));
    let counted = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        counted("modsignal_flags_emitted_total{"),
        written.len() as f64,
        "every flag written is counted"
    );
    assert_eq!(
        counted("modsignal_cohort_pages_emitted_total{"),
        pages.len() as f64,
        "every resharer cohort page written is counted"
    );
    assert!(
        text.contains("modsignal_http_requests_total"),
        "the API counts its requests"
    );

    let status = p.terminate();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status}");
}

/// The newest revision of each cohort page in a file of output lines, by cohort and page.
fn cohort_pages_in(out: &std::path::Path) -> BTreeMap<(String, u32), Cohort> {
    let mut pages: BTreeMap<(String, u32), Cohort> = BTreeMap::new();
    for line in std::fs::read_to_string(out).unwrap().lines() {
        if !line.starts_with(r#"{"schema":"modsignal.cohort/1""#) {
            continue;
        }
        let page: Cohort = serde_json::from_str(line).expect("a cohort page");
        let key = (page.cohort_id.clone(), page.page);
        if pages.get(&key).is_none_or(|kept| kept.revision < page.revision) {
            pages.insert(key, page);
        }
    }
    pages
}

/// Every member of `message`'s cohort of `category` that the API gives `token`, following
/// cursors, and the last page's cohort (without members).
fn served_members(
    port: u16,
    token: &str,
    message: &str,
    category: &str,
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let base = format!("/api/v1/messages/{message}/resharers?category={category}&limit=7");
    let mut path = base.clone();
    let mut members = Vec::new();
    loop {
        let page = json(port, &path, token);
        let mut cohort = page["cohorts"][0].clone();
        members.extend(cohort["members"].as_array().unwrap().iter().cloned());
        cohort.as_object_mut().unwrap().remove("members");
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{base}&cursor={c}"),
            None => return (members, cohort),
        }
    }
}

#[test]
fn file_mode_serves_every_resharer_from_the_cohorts_it_wrote() {
    let port = free_port();
    let config = config_file("cohorts.toml", port, "");
    let (mut p, out) = Process::on_scenario("cohorts", &["--config", config.to_str().unwrap()], &[]);
    p.wait_ready(port);
    let pages = cohort_pages_in(&out);
    assert!(
        !pages.is_empty(),
        "the scenario's viral message has resharers who do not matter on their own"
    );
    let mut cohorts: BTreeMap<String, Vec<&Cohort>> = BTreeMap::new();
    for page in pages.values() {
        cohorts.entry(page.cohort_id.clone()).or_default().push(page);
    }
    let key = "a-key-for-pseudonyms-in-the-serve-tests";
    let pseudonyms = modsignal_api::Pseudonymiser::new(key.as_bytes());
    for pages in cohorts.values() {
        let first = pages[0];
        let (message, category) = (first.message_id.as_str(), first.category.as_str());
        let written: Vec<serde_json::Value> = pages
            .iter()
            .flat_map(|p| p.members.iter())
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        let (served, cohort) = served_members(port, ANALYST, message, category);
        assert_eq!(served, written, "{message} {category}: every resharer, as written");
        assert_eq!(cohort["revision"], first.revision);
        assert_eq!(cohort["complete"], true);
        assert_eq!(cohort["summary"], serde_json::to_value(&first.summary).unwrap());

        // The liaison officer: raised members only, by pseudonym; none if nothing is raised.
        let raised: Vec<serde_json::Value> = pages
            .iter()
            .flat_map(|p| p.members.iter())
            .filter(|m| m.raised)
            .map(|m| {
                let mut m = m.clone();
                m.account = pseudonyms.account(&m.account);
                serde_json::to_value(&m).unwrap()
            })
            .collect();
        let path = format!("/api/v1/messages/{message}/resharers?category={category}");
        match get(port, &path, Some(LIAISON)).unwrap() {
            (200, _) => assert_eq!(served_members(port, LIAISON, message, category).0, raised),
            (404, _) => assert!(raised.is_empty(), "{path}: raised members, yet not found"),
            (status, body) => panic!("{path}: {status} {body}"),
        }
    }
    assert!(p.terminate().success());
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn on_kafka_each_instance_serves_the_whole_output_topic_once_ready() {
    let broker = Broker::start();
    broker.create_topic("events", 2, &[]).await;
    broker.create_topic("flags", 2, &[]).await;
    broker.create_topic("dead-letters", 1, &[]).await;
    let lines = simulated(4_000, 41);
    // All on the first of two partitions: one instance does the work, the other holds an
    // empty partition, and both must serve every flag.
    let (flags, _) = run_lines(&Policy::default(), &lines);
    let expected = final_flags(&flags);
    broker.produce_lines("events", &lines).await;
    // Cohort pages on the output topic beside the flags, the newer state before the older: every
    // instance's follower reads them through `ingest_json` and serves the newer.
    let newer = crate::api_support::cohort_pages("k-cohort", Category::CredibleThreat, 1200, 5, 2);
    let older = crate::api_support::cohort_pages("k-cohort", Category::CredibleThreat, 900, 5, 1);
    let records: Vec<String> = newer.iter().chain(&older).map(Cohort::to_json).collect();
    broker.produce_lines_to("flags", 1, &records).await;

    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ninput_topics = [\"events\"]\noutput_topic = \"flags\"\ndead_letter_topic = \"dead-letters\"\nflush_interval = \"200ms\"\nidle_after = \"2s\"\n",
        broker.addr()
    );
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = config_file("kafka-a.toml", port_a, &kafka);
    let config_b = config_file("kafka-b.toml", port_b, &kafka);
    let mut a = Process::start("kafka-a", &["--config", config_a.to_str().unwrap()], &[]);
    let mut b = Process::start("kafka-b", &["--config", config_b.to_str().unwrap()], &[]);

    // Both become ready, and each ends up serving every flag, whichever instance wrote it.
    for (p, port) in [(&mut a, port_a), (&mut b, port_b)] {
        p.wait_ready(port);
    }
    let deadline = Duration::from_secs(90);
    for (p, port) in [(&mut a, port_a), (&mut b, port_b)] {
        p.wait_until("every flag served", deadline, || {
            let served = revisions(&listed(port, ANALYST, "limit=500"));
            served.len() == expected.len() && expected.iter().all(|(id, f)| served.get(id) == Some(&f.revision))
        });
    }
    let written: Vec<serde_json::Value> = newer
        .iter()
        .flat_map(|p| p.members.iter())
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    for port in [port_a, port_b] {
        let (served, cohort) = served_members(port, ANALYST, "k-cohort", "credible_threat");
        assert_eq!(served, written, "the newer cohort, whole, on every instance");
        assert_eq!(
            (cohort["revision"].as_u64(), cohort["complete"].as_bool()),
            (Some(newer[0].revision), Some(true))
        );
    }
    let (_, text) = get(port_a, "/metrics", None).unwrap();
    let (_, text_b) = get(port_b, "/metrics", None).unwrap();
    let events = metric(&text, "modsignal_events_total{type=\"post\"}")
        + metric(&text_b, "modsignal_events_total{type=\"post\"}");
    assert!(events > 0.0, "the instances count the events they apply");
    assert!(text.contains("modsignal_partitions_assigned "));
    for p in [a, b] {
        let status = p.terminate();
        assert!(
            status.success(),
            "SIGTERM stops the worker and the server cleanly: {status}"
        );
    }
}

#[test]
fn every_setting_can_come_from_the_environment() {
    // No config file: the server, its token and its page size come from MODSIGNAL__ variables,
    // and a policy setting too.
    let port = free_port();
    let lines = scenario_lines();
    let mut policy = Policy::default();
    policy.labels.high_threshold = 0.01;
    let raised = |p: &Policy| {
        let (flags, _) = run_lines(p, &lines);
        final_flags(&flags).values().filter(|f| f.raised).count()
    };
    let want = raised(&policy);
    assert_ne!(
        want,
        raised(&Policy::default()),
        "the policy variable must make a difference"
    );

    let address = format!("127.0.0.1:{port}");
    let (mut p, _) = Process::on_scenario(
        "env",
        &[],
        &[
            ("MODSIGNAL__HTTP__ADDRESS", address.as_str()),
            (
                "MODSIGNAL__HTTP__TOKENS",
                r#"[{ token_env = "MODSIGNAL_TEST_ANALYST_TOKEN", role = "analyst" }]"#,
            ),
            ("MODSIGNAL_TEST_ANALYST_TOKEN", ANALYST),
            ("MODSIGNAL__HTTP__MAX_PAGE", "3"),
            ("MODSIGNAL__HTTP__DEFAULT_PAGE", "3"),
            ("MODSIGNAL__POLICY__LABELS__HIGH_THRESHOLD", "0.01"),
        ],
    );
    p.wait_ready(port);
    assert_eq!(json(port, "/api/v1/session", ANALYST)["max_page"], 3);
    let all = listed(port, ANALYST, "limit=3&raised=true");
    assert_eq!(all.len(), want, "raised under the policy the variable set");
    assert!(p.terminate().success());
}
