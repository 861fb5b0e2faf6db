//! The deployment files in `deploy/` checked without a Docker engine or a cluster: every YAML
//! file parses; the compose stack, the Kubernetes manifests and the Dockerfile agree with one
//! another and with the binary (their config files are read the way `modsignal run --config`
//! reads them, environment overrides included); and every metric the Grafana dashboard, the alert rules and
//! the autoscaler's adapter name is one that `modsignal_metrics::Metrics` really exports, with
//! labels it really has.
//!
//! When `promtool` is on PATH, the alert rules, the compose Prometheus configuration and every
//! dashboard query are also checked by Prometheus' own parser, and the alert rules' unit tests
//! (`deploy/prometheus/alerts.test.yml`) run. When `kubernetes-validate` (`PyPI`) is on PATH, the
//! manifests are validated against Kubernetes' schemas. Set `MODSIGNAL_REQUIRE_DEPLOY_TOOLS=1`
//! to make their absence a failure instead of a note.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use modsignal::kafka::{EXIT_GRACE, KafkaArgs};
use modsignal_api::{ApiConfig, ApiState, FlagStore, router};
use modsignal_core::Policy;
use modsignal_kafka::WorkerConfig;
use modsignal_metrics::Metrics;
use serde_json::{Map, Value};
use tower::ServiceExt;
use yaml_rust2::{Yaml, YamlLoader};

/// The command every deployment runs (see "Assumptions" in deploy/README.md).
const COMMAND: [&str; 5] = [
    "run",
    "--config",
    "/etc/modsignal/modsignal.toml",
    "--log-format",
    "json",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------------------------------------
// YAML, read into serde_json values so that the checks can use JSON pointers.

/// Every document of a YAML file.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs.iter().map(|d| to_json(d, path)).collect()
}

/// The one document of a YAML file.
fn yaml(path: &Path) -> Value {
    let mut docs = yaml_docs(path);
    assert_eq!(docs.len(), 1, "{} should hold one YAML document", path.display());
    docs.remove(0)
}

/// A YAML node as JSON. Mapping keys become strings; `<<` merge keys (YAML 1.1, which compose
/// uses for shared service settings) are expanded the way compose expands them, keys written
/// beside them winning.
fn to_json(y: &Yaml, path: &Path) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => Value::from(
            r.parse::<f64>()
                .unwrap_or_else(|e| panic!("{}: {r}: {e}", path.display())),
        ),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(|v| to_json(v, path)).collect()),
        Yaml::Hash(h) => {
            let mut merged = Map::new();
            let mut own = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("{}: unsupported mapping key {other:?}", path.display()),
                };
                if key == "<<" {
                    let sources = match to_json(v, path) {
                        Value::Array(a) => a,
                        one => vec![one],
                    };
                    for source in sources {
                        let Value::Object(m) = source else {
                            panic!("{}: a merge key needs a mapping", path.display())
                        };
                        merged.extend(m);
                    }
                } else {
                    own.insert(key, to_json(v, path));
                }
            }
            merged.extend(own);
            Value::Object(merged)
        }
        Yaml::Alias(_) | Yaml::BadValue => panic!("{}: unresolved YAML node {y:?}", path.display()),
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn deploy_files(ext: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files_under(&root().join("deploy"), &mut all);
    all.retain(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| ext.contains(&e)));
    all
}

/// `v[pointer]` as a string, or a failure naming what is missing.
fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v:#}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_else(|| panic!("not a string: {x}")))
        .collect()
}

// ------------------------------------------------------------------------------------------
// modsignal's config files.

/// A config file read as `modsignal run --config FILE` reads it: its `[kafka]` section with
/// the settings of the environment variable `MODSIGNAL_KAFKA_PROPERTY` laid over it, and its
/// `[http]` section with the secrets it names taken from `env`.
fn modsignal_config(text: &str, what: &str, env: &BTreeMap<String, String>) -> (WorkerConfig, ApiConfig) {
    let properties: Vec<String> = env
        .get("MODSIGNAL_KAFKA_PROPERTY")
        .map(|p| p.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    let file = std::env::temp_dir().join(format!(
        "modsignal-deploy-{}-{}.toml",
        std::process::id(),
        what.replace('/', "-")
    ));
    std::fs::write(&file, text).unwrap();
    let args = KafkaArgs {
        config: Some(file.clone()),
        properties,
        ..KafkaArgs::default()
    };
    let kafka = args.worker_config(Policy::default());
    let _ = std::fs::remove_file(&file);
    let kafka = kafka.unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let section = modsignal::settings::parse_config(text, what)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .http
        .unwrap_or_else(|| panic!("{what}: no [http] section"));
    let http = ApiConfig::from_section(section, |name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("{what}: [http]: {e}"));
    (kafka, http)
}

/// A compose `environment` value as compose interpolates it when the variable is not set in
/// the shell: `${NAME:-default}` gives the default.
fn compose_value(value: &str) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(inner) => {
            let (_, default) = inner
                .split_once(":-")
                .unwrap_or_else(|| panic!("{value}: a variable without a default"));
            default.to_owned()
        }
        None => value.to_owned(),
    }
}

// ------------------------------------------------------------------------------------------
// Every YAML file.

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = deploy_files(&["yml", "yaml"]);
    // compose, its Prometheus and Grafana files, the alert rules and their tests, and the
    // Kubernetes manifests: far more than this, so an emptied directory cannot pass.
    assert!(
        files.len() >= 15,
        "only {} YAML files under deploy/: {files:?}",
        files.len()
    );
    for f in &files {
        let docs = yaml_docs(f);
        assert!(!docs.is_empty(), "{} holds no YAML document", f.display());
        for d in &docs {
            assert!(d.is_object(), "{}: every document is a mapping, not {d}", f.display());
        }
    }
}

// ------------------------------------------------------------------------------------------
// compose.

#[test]
fn compose_runs_kafka_in_kraft_mode_two_instances_prometheus_and_grafana() {
    let compose = yaml(&deploy("compose.yaml"));
    let services = compose["services"].as_object().expect("compose has services");
    for name in [
        "kafka",
        "kafka-init",
        "modsignal-1",
        "modsignal-2",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "compose lacks the service {name}");
    }

    // One Apache Kafka node that is its own KRaft controller.
    let kafka = &services["kafka"];
    assert!(s(kafka, "/image").starts_with("apache/kafka:"));
    let env = &kafka["environment"];
    let roles: BTreeSet<&str> = s(env, "/KAFKA_PROCESS_ROLES").split(',').collect();
    assert_eq!(roles, BTreeSet::from(["broker", "controller"]));
    let node_id = env["KAFKA_NODE_ID"].as_i64().expect("KAFKA_NODE_ID");
    assert_eq!(
        s(env, "/KAFKA_CONTROLLER_QUORUM_VOTERS"),
        format!("{node_id}@kafka:9093"),
        "the node is the only voter, on its CONTROLLER listener"
    );
    assert!(s(env, "/KAFKA_LISTENERS").contains("CONTROLLER://:9093"));
    assert_eq!(s(env, "/KAFKA_CONTROLLER_LISTENER_NAMES"), "CONTROLLER");
    assert!(s(env, "/KAFKA_ADVERTISED_LISTENERS").contains("PLAINTEXT://kafka:9092"));
    assert!(!s(env, "/CLUSTER_ID").is_empty());
    assert_eq!(
        env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], 1,
        "one node holds one replica"
    );

    // The config both instances mount, read by modsignal's own parser.
    let config_text = read(&deploy("compose/modsignal.toml"));
    let instance_env: BTreeMap<String, String> = services["modsignal-1"]["environment"]
        .as_object()
        .expect("environment as a mapping")
        .iter()
        .map(|(k, v)| (k.clone(), compose_value(v.as_str().unwrap())))
        .collect();
    let (config, http) = modsignal_config(&config_text, "deploy/compose/modsignal.toml", &instance_env);
    let http_port = http.address.port();
    assert!(
        http.address.ip().is_unspecified(),
        "the server listens on every interface of the container"
    );
    assert!(
        config.brokers.split(',').all(|b| b == "kafka:9092"),
        "{}",
        config.brokers
    );

    // kafka-init runs `modsignal topics` on the config the instances mount, so every topic it
    // names is made as modsignal needs it: the input with several partitions (two instances
    // share it) and every record kept (state is rebuilt by replaying it), the repartition topic
    // too, the changelog compacted.
    let init = &services["kafka-init"];
    assert_eq!(
        s(init, "/image"),
        s(&services["modsignal-1"], "/image"),
        "kafka-init runs modsignal"
    );
    let init_command = strings(&init["command"]);
    assert_eq!(init_command[0], "topics", "{init_command:?}");
    let option = |name: &str| {
        let i = init_command
            .iter()
            .position(|a| *a == name)
            .unwrap_or_else(|| panic!("kafka-init has no {name}: {init_command:?}"));
        init_command[i + 1].to_owned()
    };
    assert_eq!(
        option("--config"),
        "/etc/modsignal/modsignal.toml",
        "kafka-init reads the instances' config"
    );
    assert!(
        strings(&init["volumes"]).contains(&"./compose/modsignal.toml:/etc/modsignal/modsignal.toml:ro"),
        "kafka-init mounts the instances' config"
    );
    let layout = modsignal_kafka::topics::Layout {
        partitions: option("--partitions").parse().expect("--partitions is a number"),
        replication: Some(
            option("--replication-factor")
                .parse()
                .expect("--replication-factor is a number"),
        ),
    };
    let wanted = modsignal_kafka::topics::wanted(&config, &layout, &BTreeMap::new());
    let made = |topic: &str| {
        wanted
            .iter()
            .find(|w| w.name == topic)
            .unwrap_or_else(|| panic!("kafka-init does not create {topic}: {wanted:?}"))
    };
    let setting = |topic: &str, key: &str| {
        made(topic)
            .settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for topic in config
        .input_topics
        .iter()
        .chain([&config.output_topic, &config.dead_letter_topic])
    {
        made(topic);
    }
    for topic in config.input_topics.iter().chain(&config.repartition_topic) {
        assert!(
            made(topic).partitions >= 2,
            "{topic} has {} partition(s) for two instances",
            made(topic).partitions
        );
        assert_eq!(setting(topic, "retention.ms"), "-1", "{topic} must keep its records");
    }
    // The demo feeder writes to an input topic.
    let feed = strings(&services["feed"]["command"]).join(" ");
    assert!(
        config.input_topics.iter().any(|t| flag_value(&feed, "--topic") == t),
        "the demo feeds {feed}"
    );

    let changelog = config
        .changelog_topic
        .as_deref()
        .expect("compose keeps a changelog topic");
    assert_eq!(
        setting(changelog, "cleanup.policy"),
        "compact",
        "the changelog topic {changelog} is created compacted"
    );
    let state_dir = config.state_dir.as_ref().expect("compose keeps local snapshots");
    let state_dir = state_dir.to_str().unwrap();
    assert_eq!(
        s(init, "/depends_on/kafka/condition"),
        "service_healthy",
        "topics are created once the broker answers"
    );

    // Two instances of one image and one config (so one consumer group), on distinct ports.
    let mut host_ports = BTreeSet::new();
    let mut state_volumes = BTreeSet::new();
    for name in ["modsignal-1", "modsignal-2"] {
        let svc = &services[name];
        assert_eq!(s(svc, "/build/dockerfile"), "deploy/Dockerfile", "{name}");
        assert_eq!(strings(&svc["command"]), COMMAND, "{name}");
        let volumes = strings(&svc["volumes"]);
        assert!(
            volumes.contains(&"./compose/modsignal.toml:/etc/modsignal/modsignal.toml:ro"),
            "{name} mounts the config: {volumes:?}"
        );
        // Each instance has a volume of its own for its snapshots, declared at the top level.
        let state = volumes
            .iter()
            .find_map(|v| v.strip_suffix(&format!(":{state_dir}")))
            .unwrap_or_else(|| panic!("{name} mounts nothing at state_dir {state_dir}: {volumes:?}"));
        assert!(
            compose["volumes"].get(state).is_some(),
            "{name}'s volume {state} is declared"
        );
        state_volumes.insert(state);
        assert_eq!(
            s(svc, "/depends_on/kafka-init/condition"),
            "service_completed_successfully"
        );
        for var in [
            "MODSIGNAL_TOKEN_LIAISON",
            "MODSIGNAL_TOKEN_ANALYST",
            "MODSIGNAL_PSEUDONYM_KEY",
        ] {
            assert!(svc["environment"].get(var).is_some(), "{name} lacks {var}");
        }
        let ports = strings(&svc["ports"]);
        assert_eq!(ports.len(), 1, "{name}: {ports:?}");
        let (host, container) = ports[0].rsplit_once(':').unwrap();
        assert_eq!(
            container.parse::<u16>().unwrap(),
            http_port,
            "{name} publishes the HTTP port"
        );
        assert!(host.starts_with("127.0.0.1:"), "{name} is published on loopback only");
        host_ports.insert(host.to_owned());
        // The process may take EXIT_GRACE past shutdown_timeout to commit and leave the group.
        let grace = duration(s(svc, "/stop_grace_period"));
        assert!(
            grace > config.shutdown_timeout + EXIT_GRACE,
            "{name}: stop_grace_period {grace:?} must exceed shutdown_timeout {:?} + {EXIT_GRACE:?}",
            config.shutdown_timeout
        );
    }
    assert_eq!(host_ports.len(), 2, "the instances need distinct host ports");
    assert_eq!(state_volumes.len(), 2, "the instances need distinct state volumes");

    // Prometheus scrapes both instances as job `modsignal` and loads the alert rules.
    let prometheus = yaml(&deploy("prometheus/prometheus.yml"));
    let job = prometheus["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "modsignal")
        .expect("a scrape job named modsignal (the alert rules select it)");
    let targets: BTreeSet<&str> = strings(&job["static_configs"][0]["targets"]).into_iter().collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            format!("modsignal-1:{http_port}").as_str(),
            format!("modsignal-2:{http_port}").as_str()
        ])
    );
    assert_eq!(strings(&prometheus["rule_files"]), ["alerts.yml"]);
    let prom_volumes = strings(&services["prometheus"]["volumes"]);
    assert!(prom_volumes.contains(&"./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro"));
    assert!(prom_volumes.contains(&"./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"));

    // Grafana gets the data source and the dashboard, from the folder its provider reads.
    let grafana_volumes = strings(&services["grafana"]["volumes"]);
    let provider = yaml(&deploy("grafana/provisioning/dashboards/modsignal.yaml"));
    let folder = s(&provider, "/providers/0/options/path");
    assert!(
        grafana_volumes.contains(&format!("./grafana/modsignal.json:{folder}/modsignal.json:ro").as_str()),
        "the dashboard is mounted where the provider looks ({folder}): {grafana_volumes:?}"
    );
    assert!(grafana_volumes.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro"));
    let datasource = yaml(&deploy("grafana/provisioning/datasources/prometheus.yaml"));
    assert_eq!(s(&datasource, "/datasources/0/type"), "prometheus");
    assert_eq!(s(&datasource, "/datasources/0/url"), "http://prometheus:9090");

    // Every file compose mounts exists.
    for svc in services.values() {
        for v in svc.get("volumes").map(strings).unwrap_or_default() {
            let source = v.split(':').next().unwrap();
            if let Some(rel) = source.strip_prefix("./") {
                assert!(deploy(rel).exists(), "compose mounts {source}, which does not exist");
            }
        }
    }
}

fn flag_value<'a>(line: &'a str, flag: &str) -> &'a str {
    let mut words = line.split_whitespace();
    words.find(|w| *w == flag);
    words.next().unwrap_or_else(|| panic!("no {flag} in {line}"))
}

/// A compose or Kubernetes duration: `40s`, `2m`, `1m30s`.
fn duration(text: &str) -> Duration {
    let mut total = 0u64;
    let mut n = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            n.push(c);
        } else {
            let v: u64 = n.parse().unwrap_or_else(|_| panic!("bad duration {text}"));
            n.clear();
            total += v * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => panic!("bad duration {text}"),
            };
        }
    }
    assert!(n.is_empty(), "duration {text} lacks a unit");
    Duration::from_secs(total)
}

// ------------------------------------------------------------------------------------------
// Kubernetes.

/// Every object of the manifests that kustomization.yaml lists, by kind.
fn k8s_objects() -> BTreeMap<String, Value> {
    let kustomization = yaml(&deploy("k8s/kustomization.yaml"));
    let mut objects = BTreeMap::new();
    for file in strings(&kustomization["resources"]) {
        for doc in yaml_docs(&deploy("k8s").join(file)) {
            let kind = s(&doc, "/kind").to_owned();
            assert!(
                objects.insert(kind.clone(), doc).is_none(),
                "two objects of kind {kind}"
            );
        }
    }
    objects
}

#[test]
fn kubernetes_manifests_probe_readiness_on_readyz_and_agree_with_each_other() {
    let objects = k8s_objects();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        assert!(objects.contains_key(kind), "kustomization.yaml lacks a {kind}");
    }
    assert!(
        !objects.contains_key("Secret"),
        "the example Secret holds placeholders and must not be applied with the rest"
    );

    let config_map = &objects["ConfigMap"];
    let config_text = s(config_map, "/data/modsignal.toml");
    let deployment = &objects["Deployment"];
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];

    // The environment as Kubernetes expands it, with the example Secret's values: `$(NAME)`
    // takes the value of a variable defined before it.
    let example = yaml(&deploy("k8s/secret.example.yaml"));
    let mut env: Vec<(String, String)> = Vec::new();
    for e in c["env"].as_array().unwrap() {
        let value = if let Some(v) = e.get("value") {
            let mut v = v.as_str().unwrap().to_owned();
            for (name, earlier) in &env {
                v = v.replace(&format!("$({name})"), earlier);
            }
            v
        } else {
            let r = &e["valueFrom"]["secretKeyRef"];
            assert_eq!(r["name"], example["metadata"]["name"]);
            let key = s(r, "/key");
            s(&example["stringData"], &format!("/{key}")).to_owned()
        };
        env.push((s(e, "/name").to_owned(), value));
    }
    let env: BTreeMap<String, String> = env.into_iter().collect();
    let (config, http) = modsignal_config(config_text, "deploy/k8s/configmap.yaml", &env);
    let http_port = http.address.port();
    assert_eq!(
        config.properties.get("sasl.password").map(String::as_str),
        example["stringData"]["kafka-sasl-password"].as_str(),
        "the SASL password reaches librdkafka from the Secret"
    );
    for var in [
        "MODSIGNAL_TOKEN_LIAISON",
        "MODSIGNAL_TOKEN_ANALYST",
        "MODSIGNAL_PSEUDONYM_KEY",
    ] {
        assert!(
            env.get(var).is_some_and(|v| v.starts_with("REPLACE-ME")),
            "the Deployment sets {var} from the Secret"
        );
    }

    assert_eq!(s(deployment, "/apiVersion"), "apps/v1");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    let pod_labels = pod["metadata"]["labels"].as_object().unwrap();
    assert!(
        selects(&deployment["spec"]["selector"]["matchLabels"], pod_labels),
        "the Deployment's selector matches its pods"
    );
    let spec = &pod["spec"];
    assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
    assert_eq!(strings(&c["args"]), COMMAND);

    // Probes: ready on /readyz, alive on /healthz, both on the port the config listens on.
    let port_name = s(c, "/ports/0/name");
    assert_eq!(c["ports"][0]["containerPort"], http_port);
    assert_eq!(s(c, "/readinessProbe/httpGet/path"), "/readyz");
    assert_eq!(s(c, "/livenessProbe/httpGet/path"), "/healthz");
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(s(c, &format!("/{probe}/httpGet/port")), port_name, "{probe} port");
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(s(annotations, "/prometheus.io~1scrape"), "true");
    assert_eq!(s(annotations, "/prometheus.io~1port"), http_port.to_string());
    assert_eq!(s(annotations, "/prometheus.io~1path"), "/metrics");

    // The config file is mounted where the command reads it, and the snapshots' directory is
    // a writable volume (the root filesystem is read-only).
    let volume_at = |path: &str| {
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
        let volume = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        (mount, volume)
    };
    let (_, config_volume) = volume_at("/etc/modsignal");
    assert_eq!(config_volume["configMap"]["name"], config_map["metadata"]["name"]);
    let state_dir = config.state_dir.as_ref().expect("the ConfigMap keeps local snapshots");
    let (state_mount, state_volume) = volume_at(state_dir.to_str().unwrap());
    assert!(state_mount.get("readOnly").is_none_or(|r| r == false));
    assert!(state_volume.get("emptyDir").is_some() || state_volume.get("persistentVolumeClaim").is_some());

    // A stopping pod has time to drain: the preStop pause, the worker's shutdown timeout, and
    // the EXIT_GRACE the process may take past it to commit and leave the group.
    let pre_stop: u64 = strings(&c["lifecycle"]["preStop"]["exec"]["command"])[1]
        .parse()
        .unwrap();
    let grace = Duration::from_secs(spec["terminationGracePeriodSeconds"].as_u64().unwrap());
    let needed = Duration::from_secs(pre_stop) + config.shutdown_timeout + EXIT_GRACE;
    assert!(
        grace > needed,
        "terminationGracePeriodSeconds {grace:?} must exceed preStop + shutdown_timeout + EXIT_GRACE = {needed:?}"
    );

    // Unprivileged, on a read-only root filesystem, with resources set.
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert!(spec["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&c["securityContext"]["capabilities"]["drop"]), ["ALL"]);
    for what in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][what].get(r).is_some(), "resources.{what}.{r} is set");
        }
    }

    // The Service and the PodDisruptionBudget select the Deployment's pods.
    let service = &objects["Service"];
    assert!(selects(&service["spec"]["selector"], pod_labels));
    assert_eq!(s(service, "/spec/ports/0/targetPort"), port_name);
    let pdb = &objects["PodDisruptionBudget"];
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
    assert!(pdb["spec"].get("minAvailable").is_some() || pdb["spec"].get("maxUnavailable").is_some());

    // The autoscaler scales the Deployment on a metric modsignal exports, served by the
    // adapter rule shipped beside it.
    let hpa = &objects["HorizontalPodAutoscaler"];
    assert_eq!(s(hpa, "/apiVersion"), "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
    let (min, max) = (
        hpa["spec"]["minReplicas"].as_u64().unwrap(),
        hpa["spec"]["maxReplicas"].as_u64().unwrap(),
    );
    assert!(
        min <= 2 && 2 <= max,
        "the Deployment's 2 replicas lie within {min}..={max}"
    );
    let metric = &hpa["spec"]["metrics"][0];
    let metric_name = match s(metric, "/type") {
        "External" => s(metric, "/external/metric/name"),
        "Pods" => s(metric, "/pods/metric/name"),
        other => panic!("the HPA should scale on lag (External or Pods), not {other}"),
    };
    assert_eq!(metric_name, "modsignal_consumer_lag_records");
    let catalogue = Catalogue::new();
    assert!(catalogue.families.contains_key(metric_name));
    if let Some(topic) = metric.pointer("/external/metric/selector/matchLabels/topic") {
        assert!(
            config.input_topics.iter().any(|t| topic.as_str() == Some(t.as_str())),
            "the HPA selects topic {topic}, which the ConfigMap does not consume"
        );
    }
    let adapter = yaml(&deploy("k8s/monitoring/prometheus-adapter-values.yaml"));
    let rule = &adapter["rules"]["external"][0];
    assert_eq!(s(rule, "/name/as"), metric_name);
    let problems = catalogue.check_expr(s(rule, "/seriesQuery"));
    assert!(problems.is_empty(), "prometheus-adapter-values.yaml: {problems:?}");
}

fn selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    let selector = selector.as_object().expect("a selector is a mapping");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ------------------------------------------------------------------------------------------
// The Dockerfile.

#[test]
fn dockerfile_builds_the_release_binary_and_runs_it_unprivileged() {
    let text = read(&deploy("Dockerfile"));
    // Instructions, with continuation lines joined and comments dropped.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage: {stages:?}");
    assert!(stages[0].ends_with(" AS builder"));
    let builder_end = lines.iter().position(|l| l == stages[1]).unwrap();
    let (builder, runtime) = lines.split_at(builder_end);
    assert!(
        builder
            .iter()
            .any(|l| l.contains("cargo build --release --locked -p modsignal")),
        "the builder builds the release binary from the lock file"
    );
    for pkg in ["make", "g++", "perl", "pkg-config", "libssl-dev", "zlib1g-dev"] {
        assert!(
            builder
                .iter()
                .any(|l| l.starts_with("RUN apt-get") && l.split_whitespace().any(|w| w == pkg)),
            "the builder installs {pkg} (librdkafka's bundled build needs it)"
        );
    }
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets a USER");
    let uid: u32 = user.split(':').next().unwrap().parse().expect("a numeric user");
    assert!(uid > 0, "the runtime user is not root");
    let deployment = &k8s_objects()["Deployment"];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"], uid,
        "the Deployment runs as the image's user"
    );
    assert!(runtime.contains(&"EXPOSE 8080"));
    assert!(runtime.contains(&r#"ENTRYPOINT ["/usr/local/bin/modsignal"]"#));
    let cmd = runtime.iter().find_map(|l| l.strip_prefix("CMD ")).expect("a CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    assert_eq!(cmd, COMMAND);

    let ignore = read(&root().join(".dockerignore"));
    let ignored: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    for p in [".git", "target"] {
        assert!(ignored.contains(p), ".dockerignore should exclude {p}");
    }
}

// ------------------------------------------------------------------------------------------
// Metric names in the dashboard, the alert rules and the adapter rule.

/// What `/metrics` serves: each family's type and label names, read from the HTTP server's own
/// `/metrics` route over the worker's registry, as the binary puts them together.
struct Catalogue {
    families: BTreeMap<String, (String, BTreeSet<String>)>,
}

/// The text of `GET /metrics` from modsignal's HTTP server (`modsignal_api::router`), whose
/// registry is the worker's (`modsignal_metrics::Metrics`), as in the binary.
fn served_metrics() -> String {
    let metrics = Metrics::new();
    // Some families have a series only once something happened: the lag gauge once a partition
    // is measured, the request counter once a request is answered. A running instance has
    // both, so the catalogue is read after one of each.
    metrics.consumer_lag("modsignal.events", 0, 0);
    let mut config = ApiConfig::new("127.0.0.1:0".parse().unwrap());
    config.tokens.push(modsignal_api::TokenConfig {
        token: modsignal_api::Secret::new("a-token-for-the-deploy-test"),
        role: modsignal_api::Role::Analyst,
    });
    let store = Arc::new(FlagStore::new(config.max_revisions));
    let state = ApiState::new(&config, store, metrics.registry().clone()).unwrap();
    let app = router(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let get = |path: &'static str| {
            let app = app.clone();
            async move {
                let response = app
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "GET {path}");
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        get("/healthz").await;
        get("/metrics").await
    })
}

/// Labels Prometheus itself attaches to every scraped series (`job`, `instance`) or that the
/// Kubernetes scrape configuration adds (`namespace`, `pod`).
const TARGET_LABELS: [&str; 4] = ["job", "instance", "namespace", "pod"];

/// `PromQL` words that are not metric names: aggregations, keywords and operators.
const PROMQL_WORDS: [&str; 21] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
];

impl Catalogue {
    fn new() -> Catalogue {
        let text = served_metrics();
        let mut families: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
                families.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
            } else if !line.starts_with('#') && !line.is_empty() {
                let name_end = line.find(['{', ' ']).unwrap();
                let name = &line[..name_end];
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|f| families.contains_key(*f)))
                    .unwrap_or(name);
                let labels = &mut families.get_mut(family).unwrap_or_else(|| panic!("{line}")).1;
                if let Some(inside) = line[name_end..].strip_prefix('{') {
                    for pair in inside.split("\",") {
                        let label = pair.split('=').next().unwrap().trim_start_matches(',');
                        if label != "le" {
                            labels.insert(label.to_owned());
                        }
                    }
                }
            }
        }
        for family in [
            "modsignal_events_total",
            "modsignal_consumer_lag_records",
            "modsignal_http_requests_total",
            "modsignal_api_ready",
        ] {
            assert!(families.contains_key(family), "/metrics lacks {family}:\n{text}");
        }
        Catalogue { families }
    }

    /// The label names a series of `name` may be selected by, or `None` if Prometheus would
    /// have no such series. A histogram is queried through its `_bucket`, `_sum` and `_count`
    /// series, never by its bare name.
    fn labels_of(&self, name: &str) -> Option<BTreeSet<String>> {
        let mut allowed: BTreeSet<String> = TARGET_LABELS.iter().map(std::string::ToString::to_string).collect();
        if name == "up" {
            return Some(allowed);
        }
        if let Some((kind, labels)) = self.families.get(name) {
            if kind == "histogram" {
                return None;
            }
            allowed.extend(labels.iter().cloned());
            return Some(allowed);
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some((kind, labels)) = name.strip_suffix(suffix).and_then(|f| self.families.get(f))
                && kind == "histogram"
            {
                allowed.extend(labels.iter().cloned());
                if suffix == "_bucket" {
                    allowed.insert("le".to_owned());
                }
                return Some(allowed);
            }
        }
        None
    }

    /// What is wrong with the metric names and label matchers of one `PromQL` expression.
    fn check_expr(&self, expr: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, matchers) in selectors(expr) {
            match self.labels_of(&name) {
                None => problems.push(format!("{name} is not a series modsignal exports (in `{expr}`)")),
                Some(allowed) => {
                    for label in matchers {
                        if !allowed.contains(&label) {
                            problems.push(format!("{name} has no label {label} (in `{expr}`)"));
                        }
                    }
                }
            }
        }
        problems
    }
}

/// The metric names a `PromQL` expression selects, each with the label names of its matchers.
///
/// A small tokenizer, enough for the expressions in deploy/: quoted strings, range and
/// subquery brackets (`[5m]`, `[$__rate_interval]`), Grafana variables (`$instance`), numbers
/// and durations are skipped; a word followed by `(` is a function or an aggregation; the
/// parenthesised label list after `by`, `without`, `on`, `ignoring`, `group_left` and
/// `group_right` is skipped; every other word is a metric name, whose `{…}` matchers follow it.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_string = |i: &mut usize| {
        let quote = chars[*i];
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            skip_string(&mut i);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.' || chars[i] == '+') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&word.as_str())
                && next == Some('(')
            {
                while j < chars.len() && chars[j] != ')' {
                    j += 1;
                }
                i = j + 1;
            } else if next == Some('(') || PROMQL_WORDS.contains(&word.as_str()) || word == "offset" || word == "bool" {
                // A function, an aggregation or an operator.
            } else if next == Some('{') {
                let mut k = j + 1;
                let mut labels = Vec::new();
                let mut expect_label = true;
                while k < chars.len() && chars[k] != '}' {
                    let ch = chars[k];
                    if ch == '"' || ch == '\'' || ch == '`' {
                        let mut kk = k;
                        skip_string(&mut kk);
                        k = kk;
                        continue;
                    }
                    if ch == ',' {
                        expect_label = true;
                    } else if expect_label && (ch.is_alphabetic() || ch == '_') {
                        let s = k;
                        while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                            k += 1;
                        }
                        labels.push(chars[s..k].iter().collect());
                        expect_label = false;
                        continue;
                    }
                    k += 1;
                }
                out.push((word, labels));
                i = k + 1;
            } else {
                out.push((word, Vec::new()));
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn the_tokenizer_finds_metric_names_and_their_labels() {
    let found = selectors(
        r#"histogram_quantile(0.99, sum by (le, removal) (rate(modsignal_x_bucket{instance=~"$instance", removal="a,b}"}[$__rate_interval])))
           / on (job) group_left (pod) up{job="modsignal"} > 1e3 and time() - process_start_time_seconds offset 5m"#,
    );
    assert_eq!(
        found,
        [
            (
                "modsignal_x_bucket".to_owned(),
                vec!["instance".to_owned(), "removal".to_owned()]
            ),
            ("up".to_owned(), vec!["job".to_owned()]),
            ("process_start_time_seconds".to_owned(), vec![]),
        ]
    );
    let catalogue = Catalogue::new();
    assert!(
        catalogue
            .check_expr("rate(modsignal_events_total{type=\"post\"}[5m])")
            .is_empty()
    );
    assert_eq!(
        catalogue.check_expr("modsignal_events_totl").len(),
        1,
        "a misspelt name"
    );
    assert_eq!(
        catalogue.check_expr("modsignal_time_to_removal_seconds").len(),
        1,
        "a histogram's bare name selects nothing"
    );
    assert_eq!(
        catalogue.check_expr("modsignal_events_total{reason=\"x\"}").len(),
        1,
        "a label the metric does not have"
    );
    assert!(
        catalogue
            .check_expr("modsignal_time_to_removal_seconds_bucket{le=\"60\", removal=\"author\"}")
            .is_empty()
    );
}

/// Every `PromQL` expression of the Grafana dashboard: panel targets and variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(nested) = p.get("panels").and_then(Value::as_array) {
            panels.extend(nested);
        }
        for t in p.get("targets").and_then(Value::as_array).into_iter().flatten() {
            exprs.push((s(p, "/title").to_owned(), s(t, "/expr").to_owned()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"].get("query").unwrap_or(&v["query"]);
            let q = q.as_str().unwrap();
            // label_values(METRIC, LABEL): the metric is a selector.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map_or(q, |(m, _)| m);
            exprs.push((format!("variable {}", s(v, "/name")), inner.to_owned()));
        }
    }
    exprs
}

#[test]
fn the_grafana_dashboard_loads_and_names_only_exported_metrics() {
    let path = deploy("grafana/modsignal.json");
    let dashboard: Value = serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert_eq!(dashboard["uid"], "modsignal");
    assert!(
        dashboard["id"].is_null(),
        "a provisioned dashboard carries no database id"
    );

    // The data source is a variable, so the dashboard imports into any Grafana.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["name"] == "datasource" && v["query"] == "prometheus")
    );

    let mut ids = BTreeSet::new();
    let mut all: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    let mut panels = Vec::new();
    while let Some(p) = all.pop() {
        all.extend(p.get("panels").and_then(Value::as_array).into_iter().flatten());
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("a panel without an id: {p}"));
        assert!(ids.insert(id), "panel id {id} is used twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && g["h"].as_u64().unwrap() > 0,
            "panel {id} lies outside the grid"
        );
        if p["type"] != "row" {
            panels.push(p);
        }
    }
    assert!(panels.len() >= 15, "only {} panels", panels.len());
    for p in &panels {
        let title = s(p, "/title");
        assert!(
            !title.is_empty() && p.get("description").is_some(),
            "panel {title:?} explains itself"
        );
        assert_eq!(s(p, "/datasource/uid"), "${datasource}", "panel {title:?}");
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no queries");
        let refs: BTreeSet<&str> = targets.iter().map(|t| s(t, "/refId")).collect();
        assert_eq!(refs.len(), targets.len(), "panel {title:?} repeats a refId");
    }

    let catalogue = Catalogue::new();
    let exprs = dashboard_exprs(&dashboard);
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (title, expr) in &exprs {
        let found = selectors(expr);
        assert!(!found.is_empty(), "{title}: `{expr}` selects no metric");
        used.extend(found.into_iter().map(|(n, _)| n));
        problems.extend(catalogue.check_expr(expr).into_iter().map(|p| format!("{title}: {p}")));
    }
    assert!(
        problems.is_empty(),
        "the dashboard names what modsignal does not export:\n{}",
        problems.join("\n")
    );

    // What the dashboard is for: each of these is on it.
    for metric in [
        "modsignal_events_total",
        "modsignal_events_rejected_total",
        "modsignal_dead_letters_total",
        "modsignal_flags_emitted_total",
        "modsignal_time_to_removal_seconds_bucket",
        "modsignal_reach_at_removal_accounts_bucket",
        "modsignal_state_messages",
        "modsignal_state_restores_in_progress",
        "modsignal_consumer_lag_records",
        "modsignal_event_to_flag_latency_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(metric), "the dashboard does not show {metric}");
    }
}

#[test]
fn alert_rules_are_complete_and_name_only_exported_metrics() {
    let rules = yaml(&deploy("prometheus/alerts.yml"));
    let catalogue = Catalogue::new();
    let mut alerts = BTreeMap::new();
    let mut problems = Vec::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = s(rule, "/alert");
            let expr = s(rule, "/expr");
            assert!(!selectors(expr).is_empty(), "{name} selects no metric");
            problems.extend(catalogue.check_expr(expr).into_iter().map(|p| format!("{name}: {p}")));
            let r#for = duration(s(rule, "/for"));
            assert!(r#for > Duration::ZERO, "{name} fires on a single evaluation");
            assert!(
                ["critical", "warning", "info"].contains(&s(rule, "/labels/severity")),
                "{name}'s severity"
            );
            for a in ["summary", "description"] {
                assert!(!s(rule, &format!("/annotations/{a}")).is_empty(), "{name} lacks {a}");
            }
            assert!(
                alerts.insert(name.to_owned(), (expr.to_owned(), r#for)).is_none(),
                "{name} twice"
            );
        }
    }
    assert!(
        problems.is_empty(),
        "the alert rules name what modsignal does not export:\n{}",
        problems.join("\n")
    );

    // The alerts the issue asks for, each over the metric that shows the trouble.
    let find = |metric: &str, func: &str| {
        alerts
            .iter()
            .find(|(_, (e, _))| e.contains(metric) && e.contains(func))
            .unwrap_or_else(|| panic!("no alert on {func}…{metric}"))
    };
    find("modsignal_consumer_lag_records", "deriv(");
    find("modsignal_dead_letters_total", "rate(");
    let (_, (_, stuck_for)) = find("modsignal_state_restores_in_progress", "> 0");
    assert!(
        *stuck_for >= Duration::from_secs(15 * 60),
        "a restore is stuck after 15 minutes"
    );
    find("up{", "== 0");
    find("modsignal_api_ready", "== 0");
    find("modsignal_output_unacknowledged_records", "");
    find("process_start_time_seconds", "changes(");
}

// ------------------------------------------------------------------------------------------
// External validators, when they are installed.

/// The path of `tool` on PATH, or `None` with a note (a failure when
/// `MODSIGNAL_REQUIRE_DEPLOY_TOOLS=1`).
fn tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("MODSIGNAL_REQUIRE_DEPLOY_TOOLS").is_none_or(|v| v != "1"),
            "{tool} is not on PATH and MODSIGNAL_REQUIRE_DEPLOY_TOOLS=1"
        );
        eprintln!("note: {tool} is not on PATH; its checks of deploy/ are skipped");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_the_config_and_every_dashboard_query() {
    let Some(promtool) = tool("promtool") else { return };
    let dir = deploy("prometheus");
    run(Command::new(&promtool)
        .current_dir(&dir)
        .args(["check", "rules", "alerts.yml"]));
    run(Command::new(&promtool)
        .current_dir(&dir)
        .args(["check", "config", "prometheus.yml"]));
    // Each alert fires on the series it is about and stays quiet on a near miss.
    run(Command::new(&promtool)
        .current_dir(&dir)
        .args(["test", "rules", "alerts.test.yml"]));

    // The dashboard's queries as recording rules, with Grafana's variables given values, so
    // that Prometheus' own parser reads each one. JSON is YAML, so the file is written as JSON.
    let dashboard: Value = serde_json::from_str(&read(&deploy("grafana/modsignal.json"))).unwrap();
    let rules: Vec<Value> = dashboard_exprs(&dashboard)
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| {
            let expr = e
                .replace("$__rate_interval", "1m")
                .replace("$__range", "6h")
                .replace("$instance", ".*");
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr})
        })
        .collect();
    let file = std::env::temp_dir().join(format!("modsignal-dashboard-queries-{}.json", std::process::id()));
    std::fs::write(
        &file,
        serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let result = Command::new(&promtool).args(["check", "rules"]).arg(&file).output();
    let _ = std::fs::remove_file(&file);
    let out = result.unwrap();
    assert!(
        out.status.success(),
        "promtool rejects a dashboard query:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubernetes_schemas_accept_the_manifests() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let mut files = deploy_files(&["yaml"]);
    files.retain(|p| {
        p.starts_with(deploy("k8s")) && !p.starts_with(deploy("k8s/monitoring")) && !p.ends_with("kustomization.yaml")
    });
    assert!(files.len() >= 7, "{files:?}");
    // --strict: a misspelt or misplaced field is an error, not silently dropped.
    run(Command::new(validate).args(["--strict", "--quiet"]).args(&files));
}
