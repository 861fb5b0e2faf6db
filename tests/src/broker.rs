//! A real Kafka-protocol broker for tests: tansu, started on a free loopback port with memory
//! storage (or SQLite storage, which survives a restart) in a temporary directory, and killed
//! when the [`Broker`] is dropped (also when the test panics, and with the test process if that
//! dies first). Plus the small clients the tests need around it: create topics, produce
//! records, read a topic back, read a group's committed offsets.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// How long a broker may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The version the test tooling installs (`scripts/test`).
pub const TANSU_VERSION: &str = "0.6.0";

/// The `tansu` binary: on the `PATH`, else in `~/.cargo/bin`.
pub fn tansu_path() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|c| c.join("bin").join("tansu"));
    on_path.chain(cargo_home).find(|p| p.is_file())
}

/// Where the broker keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: gone with the process, and wrong for a fetch from inside a record batch
    /// (see [`Broker::start`]).
    Memory,
    /// In a SQLite file in the broker's directory: survives [`Broker::restart`].
    Sqlite,
}

impl Storage {
    fn url(self) -> &'static str {
        match self {
            Storage::Memory => "memory://tansu/",
            // Relative to the broker's working directory, its temporary directory.
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }
}

/// A running tansu broker on `127.0.0.1`.
pub struct Broker {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    storage: Storage,
    /// Starts so far, to keep each start's log.
    starts: u32,
}

impl Broker {
    /// Starts a broker with SQLite storage and waits until it answers a metadata request.
    ///
    /// Not memory storage: tansu 0.6.0's memory engine answers a fetch from an offset inside a
    /// record batch with the wrong batches (from offset 1 of 5,000 records produced in batches,
    /// a consumer reads 3,971 onwards first and 884 records never), so a worker resuming from a
    /// committed offset, as after a crash or a rebalance, silently loses input and can read
    /// nothing at all. SQLite storage answers such fetches correctly
    /// (`tests/examples/tansu_fetch.rs` shows both).
    ///
    /// # Panics
    /// When tansu is not installed (run `scripts/test`, which installs it), or when it does not
    /// answer within 30 seconds; the panic message carries the end of its log.
    pub fn start() -> Broker {
        Broker::start_with(Storage::Sqlite)
    }

    /// Starts a broker with the given storage; see [`Broker::start`].
    pub fn start_with(storage: Storage) -> Broker {
        tansu();
        let dir = temp_dir();
        // A port taken between our probe and tansu's bind makes tansu exit at once: try again
        // on another port.
        let mut last_error = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let mut broker = Broker {
                child: spawn_tansu(addr, &dir, storage),
                addr,
                dir: dir.clone(),
                storage,
                starts: 1,
            };
            match broker.wait_ready() {
                Ok(()) => return broker,
                Err(e) => {
                    last_error = format!("{e}\n--- tansu log ---\n{}", broker.log_tail());
                    // Dropping the broker would delete the directory we retry in.
                    let _ = broker.child.kill();
                    let _ = broker.child.wait();
                    std::mem::forget(broker);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("tansu did not start: {last_error}");
    }

    /// Kills the broker (SIGKILL: a crash, not a clean stop). Clients see it gone until
    /// [`Broker::start_again`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port with the same data, after [`Broker::kill`],
    /// and waits until it answers.
    ///
    /// # Panics
    /// With memory storage (there would be no data to come back to), or when it does not
    /// answer within 30 seconds.
    pub fn start_again(&mut self) {
        assert_eq!(
            self.storage,
            Storage::Sqlite,
            "only a broker with SQLite storage keeps its data across a restart"
        );
        // Keep the earlier start's log for a failure message.
        let log = self.dir.join("tansu.log");
        let _ = std::fs::rename(&log, self.dir.join(format!("tansu.{}.log", self.starts)));
        self.starts += 1;
        // The port was ours a moment ago; a bind can still fail while the kernel releases it,
        // so try a few times.
        let mut last_error = String::new();
        for _ in 0..5 {
            self.child = spawn_tansu(self.addr, &self.dir, self.storage);
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) => {
                    last_error = format!("{e}\n--- tansu log ---\n{}", self.log_tail());
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!("tansu did not start again on {}: {last_error}", self.addr);
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing is answered, as with a
    /// broker that hangs or a network that drops everything. [`Broker::resume`] undoes it.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused broker run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        // SAFETY: `kill` has no memory effects; the pid is our own child, not yet reaped.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0, "cannot send signal {signal} to the broker");
    }

    /// [`Broker::kill`], then [`Broker::start_again`].
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let probe: BaseConsumer = self.client_config().create().map_err(|e| e.to_string())?;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("tansu exited with {status}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && probe.fetch_metadata(None, Duration::from_secs(2)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on {} within {START_TIMEOUT:?}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// A client configuration pointed at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.addr());
        c
    }

    /// The last few kilobytes of the broker's output.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("tansu.log")) {
            let _ = f.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// Creates a topic with `partitions` partitions and the given topic settings.
    pub async fn create_topic(&self, name: &str, partitions: i32, settings: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().expect("admin client");
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in settings {
            topic = topic.set(k, v);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics([&topic], &options).await.expect("create_topics");
        for r in results {
            if let Err((t, code)) = r {
                panic!("cannot create topic {t}: {code}");
            }
        }
    }

    /// Produces records to partition 0 of `topic`, in order, and returns their offsets.
    /// `None` as a value produces a record with no value.
    pub async fn produce(&self, topic: &str, values: &[Option<&[u8]>]) -> Vec<i64> {
        self.produce_to(topic, 0, values).await
    }

    /// Produces lines of text to one partition of `topic`, in order.
    pub async fn produce_lines_to<S: AsRef<str>>(&self, topic: &str, partition: i32, lines: &[S]) -> Vec<i64> {
        let values: Vec<Option<&[u8]>> = lines.iter().map(|l| Some(l.as_ref().as_bytes())).collect();
        self.produce_to(topic, partition, &values).await
    }

    /// The offsets the consumer group `group` has committed for `topic`, by partition
    /// (partitions with no commit are left out). Reading them does not join the group.
    pub async fn committed(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        let mut config = self.client_config();
        config.set("group.id", group).set("enable.auto.commit", "false");
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = config.create().expect("consumer");
            let metadata = c
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
            let mut tpl = TopicPartitionList::new();
            for t in metadata.topics() {
                for p in t.partitions() {
                    tpl.add_partition(&topic, p.id());
                }
            }
            let committed = c
                .committed_offsets(tpl, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("committed offsets of {topic}: {e}"));
            committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect()
        })
        .await
        .expect("reading committed offsets does not panic")
    }

    /// Produces records to one partition of `topic`, in order, and returns their offsets.
    pub async fn produce_to(&self, topic: &str, partition: i32, values: &[Option<&[u8]>]) -> Vec<i64> {
        let producer: FutureProducer = self
            .client_config()
            .set("message.max.bytes", "4000000")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let mut pending = Vec::with_capacity(values.len());
        for v in values {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).partition(partition);
            if let Some(v) = v {
                record = record.payload(v);
            }
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => panic!("cannot produce to {topic}: {e}"),
                }
            }
        }
        let mut offsets = Vec::with_capacity(pending.len());
        for f in pending {
            let delivery = f
                .await
                .expect("producer alive")
                .unwrap_or_else(|(e, _)| panic!("delivery to {topic} failed: {e}"));
            offsets.push(delivery.offset);
        }
        offsets
    }

    /// Produces lines of text to partition 0 of `topic`.
    pub async fn produce_lines<S: AsRef<str>>(&self, topic: &str, lines: &[S]) -> Vec<i64> {
        let values: Vec<Option<&[u8]>> = lines.iter().map(|l| Some(l.as_ref().as_bytes())).collect();
        self.produce(topic, &values).await
    }

    /// Every record of every partition of `topic`, read from the beginning until each
    /// partition reports its end. The end comes from fetch responses: tansu 0.6.0 answers a
    /// ListOffsets request for the latest offset with the base offset of the last batch plus
    /// one, so `fetch_watermarks` undercounts a partition written in batches.
    pub async fn read_all(&self, topic: &str) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer<EndsQuietly> = self
            .client_config()
            // librdkafka lets only a consumer with a group assign itself partitions; this one
            // never subscribes or commits, so the group stays empty.
            .set("group.id", "modsignal-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create_with_context(EndsQuietly)
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        let mut open: Vec<i32> = Vec::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("tpl");
                open.push(p.id());
            }
        }
        assert!(!open.is_empty(), "topic {topic} has no partitions");
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("reading {topic} took over two minutes"))
            {
                Ok(m) => out.push(m.detach()),
                Err(KafkaError::PartitionEOF(p)) => open.retain(|&o| o != p),
                Err(e) => panic!("reading {topic}: {e}"),
            }
        }
        out
    }
}

/// A reader's client context that does not log the end of a partition, which it asked for,
/// as an error: a test that reads a topic every half second would otherwise bury its own
/// failure message under three such lines per read.
struct EndsQuietly;

impl rdkafka::ClientContext for EndsQuietly {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EndsQuietly {}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tansu binary.
///
/// # Panics
/// When it is not installed, saying how to install it.
fn tansu() -> PathBuf {
    tansu_path().unwrap_or_else(|| {
        panic!(
            "tansu {TANSU_VERSION} is not installed (looked on PATH and in ~/.cargo/bin): run scripts/test, or \
             `cargo install tansu --version {TANSU_VERSION} --locked --features dynostore,libsql`"
        )
    })
}

/// Starts tansu on `addr`, its data and log in `dir`.
fn spawn_tansu(addr: SocketAddr, dir: &Path, storage: Storage) -> Child {
    let tansu = tansu();
    let log = std::fs::File::create(dir.join("tansu.log")).expect("create the broker log");
    let url = format!("tcp://{addr}");
    let mut cmd = Command::new(&tansu);
    cmd.arg("broker")
        .arg("--listener-url")
        .arg(&url)
        .arg("--advertised-listener-url")
        .arg(&url)
        .arg("--storage-engine")
        .arg(storage.url())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log);
    kill_with_parent(&mut cmd);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu.display()))
}

/// The value of a header, as text.
pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers: &OwnedHeaders = m.headers()?;
    headers
        .iter()
        .find(|h: &Header<'_, &[u8]>| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "modsignal-tansu-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the broker's directory");
    dir
}

/// A port free on the loopback interface right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Makes a child (the broker, a worker process) die with the thread that started it, so that
/// a test run killed from outside, or a test that panics, leaves no process behind.
pub fn kill_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: `prctl` is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
