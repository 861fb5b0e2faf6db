//! A real Apache Kafka broker for tests, started on free loopback ports in `KRaft` mode (one
//! process that is both broker and controller) with its data in a temporary directory, and
//! killed when the [`Broker`] is dropped (also when the test panics, and with the test process
//! if that dies first). Plus the small clients the tests need around it: create topics, produce
//! records, read a topic back, read a group's committed offsets.
//!
//! The broker is Maven's: `tests/broker/pom.xml` pins Apache Kafka, Maven resolves its jars
//! into its local cache (`scripts/test` warms it; the harness then resolves offline), and the
//! harness runs `kafka.Kafka` from that classpath with the JDK on the `PATH` (or `JAVA_HOME`).
//! Its storage is formatted once per test process and copied for each broker, which saves a
//! JVM start per broker.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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

/// How long a broker may take to answer after it was started (a JVM start and a `KRaft`
/// election: about 5 seconds on an idle 2-core machine, much more under a loaded test run).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The cluster id every test broker is formatted with: the brokers of each test form a cluster
/// of their own, so the ids of different tests' clusters need not differ. It is `modsignal-tests-` (16 bytes) in Kafka's URL-safe base64.
const CLUSTER_ID: &str = "bW9kc2lnbmFsLXRlc3RzLQ";

/// The broker's settings beyond its node id, listeners, quorum, replication and directory
/// ([`write_config`]): what keeps tests quick (no delay before a new
/// group's first rebalance, few partitions of internal topics, session timeouts as short as the
/// failure tests use). Topics are never created by a client's request for them: a test that
/// names a topic outside its namespace on the shared broker fails instead of meeting another
/// test's records.
const SETTINGS: &str = "\
process.roles=broker,controller
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
num.partitions=1
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
";

/// Kafka's logging: its own INFO lines (group coordination is what a failing test needs), less
/// the long listings of every configuration value.
const LOG4J2: &str = "\
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.config.name=org.apache.kafka.common.config
logger.config.level=WARN
";

/// A handle on running Apache Kafka on `127.0.0.1`: a broker of the test's own
/// ([`Broker::start`]) or a cluster of several ([`Broker::cluster`]), which the test may kill,
/// pause and restart, or the test process's shared broker ([`Broker::shared`]), on which each
/// handle names its topics and groups in a namespace of its own. Every method that takes a topic
/// or group name takes it as the test wrote it and puts it in the handle's namespace;
/// [`Broker::topic`] and [`Broker::group`] give the full names.
pub struct Broker {
    /// The broker processes, one per node, when this handle owns them; the shared broker's
    /// lives in a static, and this is empty.
    own: Vec<Process>,
    addrs: Vec<SocketAddr>,
    dirs: Vec<PathBuf>,
    /// What this handle puts before every topic and group name: empty on brokers of the test's
    /// own, `tN.` on the shared one.
    prefix: String,
}

const NOT_OWN: &str =
    "only brokers of the test's own can be stopped: use Broker::start or Broker::cluster, not Broker::shared";

/// One broker process (a `KRaft` node that is both broker and controller), the ports it listens
/// on and its directory.
struct Process {
    child: Child,
    /// Its node id, from 1.
    node: u32,
    addr: SocketAddr,
    controller: SocketAddr,
    dir: PathBuf,
    /// Starts so far, to keep each start's log.
    starts: u32,
}

impl Broker {
    /// Starts a broker of the test's own and waits until it answers a metadata request.
    ///
    /// # Panics
    /// When Java or Maven is missing, when Maven cannot resolve the broker (run `scripts/test`,
    /// which installs both and warms Maven's cache), or when the broker does not answer within
    /// a minute; the panic message carries the end of its log.
    pub fn start() -> Broker {
        Broker::cluster(1)
    }

    /// Starts a cluster of `nodes` brokers of the test's own, each also a `KRaft` controller (so
    /// a majority of them must be up), and waits until each answers. Topics the handle creates
    /// get a replica on each node up to three, internal topics too, and `min.insync.replicas`
    /// is 2 when there are several: what a deployment that survives the loss of a broker uses.
    ///
    /// # Panics
    /// As [`Broker::start`].
    pub fn cluster(nodes: usize) -> Broker {
        let own = Process::start_cluster(nodes);
        Broker {
            addrs: own.iter().map(|p| p.addr).collect(),
            dirs: own.iter().map(|p| p.dir.clone()).collect(),
            own,
            prefix: String::new(),
        }
    }

    /// A handle on the broker this test process shares among its tests, started by the first
    /// call, with a namespace of its own: tests that never stop the broker share one, which
    /// spares a JVM start each. The broker lives as long as the test process (it is started
    /// from a thread that never ends, so that it dies with the process and not with the test
    /// that happened to start it).
    ///
    /// # Panics
    /// As [`Broker::start`].
    pub fn shared() -> Broker {
        static SHARED: OnceLock<(SocketAddr, PathBuf)> = OnceLock::new();
        static NAMESPACES: AtomicU64 = AtomicU64::new(0);
        let (addr, dir) = SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("shared-kafka".into())
                .spawn(move || match std::panic::catch_unwind(|| Process::start_cluster(1)) {
                    Ok(mut nodes) => {
                        let p = nodes.pop().expect("one node");
                        let _ = tx.send(Ok((p.addr, p.dir.clone())));
                        // Never dropped: the broker runs until this thread ends with the
                        // process.
                        std::mem::forget(p);
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(panic) => {
                        let _ = tx.send(Err(panic));
                    }
                })
                .expect("start the shared broker's thread");
            match rx.recv().expect("the shared broker's thread answers") {
                Ok(at) => at,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        Broker {
            own: Vec::new(),
            addrs: vec![*addr],
            dirs: vec![dir.clone()],
            prefix: format!("t{}.", NAMESPACES.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The full name of topic `name` in this handle's namespace.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The full name of consumer group `name` in this handle's namespace.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn nodes_mut(&mut self) -> &mut [Process] {
        assert!(!self.own.is_empty(), "{NOT_OWN}");
        &mut self.own
    }

    fn nodes_ref(&self) -> &[Process] {
        assert!(!self.own.is_empty(), "{NOT_OWN}");
        &self.own
    }

    /// Kills every broker (SIGKILL: a crash, not a clean stop). Clients see them gone until
    /// [`Broker::start_again`].
    pub fn kill(&mut self) {
        for p in self.nodes_mut() {
            p.kill();
        }
    }

    /// Starts every broker again on the same ports with the same data, after
    /// [`Broker::kill`], and waits until each answers.
    ///
    /// # Panics
    /// When one does not answer within a minute.
    pub fn start_again(&mut self) {
        // All first, then the waits: a controller quorum answers only once a majority is up.
        for p in self.nodes_mut() {
            p.respawn();
        }
        for p in self.nodes_mut() {
            p.wait_ready_or_respawn();
        }
    }

    /// Kills the broker of node `node` of a cluster (SIGKILL).
    pub fn kill_node(&mut self, node: u32) {
        self.node_mut(node).kill();
    }

    /// Starts the broker of node `node` again after [`Broker::kill_node`], and waits until it
    /// answers.
    pub fn start_node_again(&mut self, node: u32) {
        let p = self.node_mut(node);
        p.respawn();
        p.wait_ready_or_respawn();
    }

    fn node_mut(&mut self, node: u32) -> &mut Process {
        self.nodes_mut()
            .iter_mut()
            .find(|p| p.node == node)
            .unwrap_or_else(|| panic!("no node {node} in this cluster"))
    }

    /// The node id of the leader of partition `partition` of `topic`, as the cluster's
    /// metadata says now.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<u32> {
        let topic = self.topic(topic);
        let probe: BaseConsumer = self.client_config().create().expect("metadata client");
        let metadata = probe.fetch_metadata(Some(&topic), Duration::from_secs(10)).ok()?;
        let t = metadata.topics().iter().find(|t| t.name() == topic)?;
        let p = t.partitions().iter().find(|p| p.id() == partition)?;
        u32::try_from(p.leader()).ok()
    }

    /// Freezes every broker (SIGSTOP): connections stay open and nothing is answered, as with
    /// a broker that hangs or a network that drops everything. [`Broker::resume`] undoes it.
    pub fn pause(&self) {
        for p in self.nodes_ref() {
            p.signal(libc::SIGSTOP);
        }
    }

    /// Lets paused brokers run again (SIGCONT).
    pub fn resume(&self) {
        for p in self.nodes_ref() {
            p.signal(libc::SIGCONT);
        }
    }

    /// [`Broker::kill`], then [`Broker::start_again`].
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// `127.0.0.1:PORT` (each broker's, separated by commas), for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        self.addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }

    /// A client configuration pointed at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.addr());
        c
    }

    /// The last few kilobytes of each broker's output.
    pub fn log_tail(&self) -> String {
        match &self.dirs[..] {
            [dir] => log_tail(dir),
            dirs => dirs
                .iter()
                .enumerate()
                .map(|(i, d)| format!("--- node {} ---\n{}", i + 1, log_tail(d)))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Creates a topic with `partitions` partitions and the given topic settings.
    pub async fn create_topic(&self, name: &str, partitions: i32, settings: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().expect("admin client");
        let name = self.topic(name);
        let replicas = self.addrs.len().min(3) as i32;
        let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(replicas));
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
        config
            .set("group.id", self.group(group))
            .set("enable.auto.commit", "false");
        let topic = self.topic(topic);
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
            // The group's coordinator can be moving or loading (Kafka answers `NotCoordinator`
            // or `CoordinatorLoadInProgress` meanwhile), as any client sees now and then: ask
            // again for a while before calling it a failure.
            let deadline = Instant::now() + Duration::from_secs(30);
            let committed = loop {
                match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
                    Ok(committed) => break committed,
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(%e, topic, "committed offsets not read yet");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => panic!("committed offsets of {topic}: {e}"),
                }
            };
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
        let topic = &self.topic(topic);
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
    /// partition reports its end (as fetch responses give it).
    pub async fn read_all(&self, topic: &str) -> Vec<OwnedMessage> {
        let topic = &self.topic(topic);
        let consumer: StreamConsumer<EndsQuietly> = self
            .client_config()
            // librdkafka lets only a consumer with a group assign itself partitions; this one
            // never subscribes or commits, so the group stays empty.
            .set("group.id", "modsignal-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // What a consumer of the worker's output is told to use: records of aborted (or
            // still open) transactions are never read.
            .set("isolation.level", "read_committed")
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

impl Process {
    /// Starts the `nodes` broker processes of a cluster and waits until each answers. A port
    /// taken between our probe and a broker's bind makes it exit at once: the whole cluster is
    /// then started again on other ports.
    fn start_cluster(nodes: usize) -> Vec<Process> {
        let mut last_error = String::new();
        for _ in 0..3 {
            let ports: Vec<(SocketAddr, SocketAddr)> = (0..nodes)
                .map(|_| {
                    (
                        SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
                        SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
                    )
                })
                .collect();
            let voters = voters(ports.iter().map(|(_, c)| *c));
            let mut cluster: Vec<Process> = ports
                .iter()
                .enumerate()
                .map(|(i, &(addr, controller))| {
                    let node = i as u32 + 1;
                    let dir = temp_dir();
                    copy_dir(&formatted_storage(node, nodes), &dir.join("data"));
                    write_config(&dir, node, addr, controller, &voters, nodes);
                    Process {
                        child: spawn_kafka(&dir),
                        node,
                        addr,
                        controller,
                        dir,
                        starts: 1,
                    }
                })
                .collect();
            let failed: Vec<String> = cluster
                .iter_mut()
                .filter_map(|p| {
                    p.wait_ready()
                        .err()
                        .map(|e| format!("node {}: {e}\n--- its log ---\n{}", p.node, log_tail(&p.dir)))
                })
                .collect();
            if failed.is_empty() {
                return cluster;
            }
            last_error = failed.join("\n");
            // Dropping the processes kills them and removes their directories.
            drop(cluster);
        }
        panic!("Kafka did not start: {last_error}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts this broker again with the same settings and data, keeping the earlier start's
    /// log for a failure message.
    fn respawn(&mut self) {
        let log = self.dir.join("kafka.log");
        let _ = std::fs::rename(&log, self.dir.join(format!("kafka.{}.log", self.starts)));
        self.starts += 1;
        self.child = spawn_kafka(&self.dir);
    }

    /// Waits until a broker started again answers. Its ports were its own a moment ago; a bind
    /// can still fail while the kernel releases them, so it is started again a few times.
    fn wait_ready_or_respawn(&mut self) {
        let mut last_error = String::new();
        for _ in 0..5 {
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) => {
                    last_error = format!("{e}\n--- broker log ---\n{}", log_tail(&self.dir));
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    std::thread::sleep(Duration::from_millis(500));
                    self.respawn();
                }
            }
        }
        panic!(
            "Kafka node {} did not start again on {} (controller {}): {last_error}",
            self.node, self.addr, self.controller
        );
    }

    fn signal(&self, signal: i32) {
        // SAFETY: `kill` has no memory effects; the pid is our own child, not yet reaped.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0, "cannot send signal {signal} to the broker");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.addr.to_string())
            .create()
            .map_err(|e| e.to_string())?;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("Kafka exited with {status}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && probe
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok_and(|m| !m.brokers().is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on {} within {START_TIMEOUT:?}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last few kilobytes of the output of the broker whose directory is `dir`.
fn log_tail(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("kafka.log")) {
        let _ = f.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// `controller.quorum.voters` for controllers at `addrs`, node ids from 1.
fn voters(addrs: impl Iterator<Item = SocketAddr>) -> String {
    addrs
        .enumerate()
        .map(|(i, a)| format!("{}@{a}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes the settings of node `node` of a cluster of `nodes` and its logging configuration
/// into `dir`, its data in `dir/data`. Internal topics get a replica on every node up to
/// three, and with several nodes a write needs two in sync.
fn write_config(dir: &Path, node: u32, addr: SocketAddr, controller: SocketAddr, voters: &str, nodes: usize) {
    let replicas = nodes.min(3);
    let in_sync = nodes.min(2);
    let settings = format!(
        "{SETTINGS}node.id={node}\n\
         listeners=PLAINTEXT://{addr},CONTROLLER://{controller}\n\
         advertised.listeners=PLAINTEXT://{addr}\n\
         controller.quorum.voters={voters}\n\
         offsets.topic.replication.factor={replicas}\n\
         transaction.state.log.replication.factor={replicas}\n\
         transaction.state.log.min.isr={in_sync}\n\
         default.replication.factor={replicas}\n\
         min.insync.replicas={in_sync}\n\
         log.dirs={}\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("server.properties"), settings).expect("write the broker's settings");
    std::fs::write(dir.join("log4j2.properties"), LOG4J2).expect("write the broker's logging settings");
}

/// The `java` command: `JAVA_HOME`'s if set, else the one on the `PATH`.
fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin").join("java"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// A JVM running one of Kafka's main classes with the broker's classpath, its output in `log`.
fn kafka_command(dir: &Path, main: &str, log: &Path) -> Command {
    let log = std::fs::File::create(log).expect("create the broker log");
    let mut cmd = Command::new(java());
    // A small heap and the serial collector: a test broker holds little, on a machine of two
    // cores that the test and its workers share.
    cmd.args(["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            dir.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(classpath())
        .arg(main)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log);
    cmd
}

/// Starts the broker whose settings and data are in `dir`.
fn spawn_kafka(dir: &Path) -> Child {
    let mut cmd = kafka_command(dir, "kafka.Kafka", &dir.join("kafka.log"));
    cmd.arg("server.properties");
    kill_with_parent(&mut cmd);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start Kafka with {}: {e}", java().display()))
}

/// The data directory of node `node` of a cluster of `nodes`, formatted for `KRaft`
/// (`kafka-storage format`), made once per test process for each: every broker starts from a
/// copy. Formatting reads only the node id, the controller quorum's shape and the cluster id,
/// which every test cluster of that size shares (the ports in it are placeholders).
fn formatted_storage(node: u32, nodes: usize) -> PathBuf {
    static FORMATTED: std::sync::Mutex<BTreeMap<(u32, usize), PathBuf>> = std::sync::Mutex::new(BTreeMap::new());
    let mut formatted = FORMATTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    formatted
        .entry((node, nodes))
        .or_insert_with(|| {
            let dir = temp_dir();
            let placeholder = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let voters = voters((0..nodes).map(|i| placeholder(10 + i as u16)));
            write_config(
                &dir,
                node,
                placeholder(9),
                placeholder(10 + node as u16 - 1),
                &voters,
                nodes,
            );
            let log = dir.join("format.log");
            let mut cmd = kafka_command(&dir, "kafka.tools.StorageTool", &log);
            cmd.args(["format", "--cluster-id", CLUSTER_ID, "--config", "server.properties"]);
            let status = cmd.status().unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (is a JDK installed? run scripts/test)",
                    java().display()
                )
            });
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                status.success(),
                "formatting the broker's storage failed ({status}):\n{out}"
            );
            dir.join("data")
        })
        .clone()
}

/// The broker's Java classpath, as Maven resolves `tests/broker/pom.xml`: offline from Maven's
/// local cache when it holds everything, online otherwise. Kept in the temporary directory,
/// named by a digest of the pom it came from, and reused while every jar it names is there.
fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker").join("pom.xml");
        let text = std::fs::read(&pom).unwrap_or_else(|e| panic!("{}: {e}", pom.display()));
        let digest = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let cache = std::env::temp_dir().join(format!("modsignal-broker-{digest:016x}.classpath"));
        if let Ok(cp) = std::fs::read_to_string(&cache)
            && !cp.is_empty()
            && cp.split(':').all(|jar| Path::new(jar).is_file())
        {
            return cp;
        }
        let partial = cache.with_extension(format!("{}.partial", std::process::id()));
        let resolve = |offline: bool| {
            let mut cmd = Command::new("mvn");
            cmd.args(["-B", "-q", "-f"]).arg(&pom);
            if offline {
                cmd.arg("-o");
            }
            cmd.arg("dependency:build-classpath")
                .arg(format!("-Dmdep.outputFile={}", partial.display()))
                .stdin(Stdio::null());
            cmd.output()
                .unwrap_or_else(|e| panic!("cannot run mvn: {e} (is Maven installed? run scripts/test)"))
        };
        let offline = resolve(true);
        let out = if offline.status.success() {
            offline
        } else {
            resolve(false)
        };
        assert!(
            out.status.success(),
            "Maven could not resolve the test broker ({}):\n{}{}",
            pom.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cp = std::fs::read_to_string(&partial).expect("Maven wrote the classpath");
        // Renamed into place, so that a test binary running beside this one never reads half.
        std::fs::rename(&partial, &cache).expect("keep the classpath");
        cp
    })
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("read a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        }
    }
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

/// A new directory for one broker, named after this process. The first call also removes the
/// directories of test processes that are gone: a broker's directory is removed when its
/// [`Broker`] is dropped, which a killed test run never does.
fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("modsignal-kafka-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new("/proc").join(pid.to_string()).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = std::env::temp_dir().join(format!(
        "modsignal-kafka-{}-{}",
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
