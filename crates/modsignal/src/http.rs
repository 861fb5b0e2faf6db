//! The binary's HTTP face: the `[http]` section of the config file (or `--http-address`), the
//! flag store behind the query API and the dashboard, and the server (see [`modsignal_api`]).
//!
//! In file mode the store is fed with every flag the pipeline writes and is ready once the
//! input has been read; the server then keeps serving until SIGTERM or SIGINT. On Kafka the
//! store follows the whole output topic ([`modsignal_kafka::follow_output`]), so every instance
//! answers about every message, and it is ready once it has read the topic to its end and the
//! worker holds no partition still being restored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use modsignal_api::{ApiConfig, ApiState, FlagStore};
use modsignal_metrics::Metrics;

/// Command-line options of the HTTP server.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "HTTP API, dashboard and metrics")]
pub struct HttpArgs {
    /// Serve the query API, the dashboard, /metrics, /healthz and /readyz on this address
    /// (overrides `[http] address` of --config). Without it and without an `[http]` section,
    /// no server runs. Bearer tokens and pseudonymisation are set in the `[http]` section.
    #[arg(long, value_name = "IP:PORT", env = "MODSIGNAL_HTTP_ADDRESS")]
    pub http_address: Option<SocketAddr>,
}

/// The server's configuration, if one is asked for: the `[http]` section of `config_file` (with
/// `MODSIGNAL__HTTP__…` variables laid over it, see [`crate::settings`]), its address replaced
/// by `address` when given; or, with `address` alone, a server with no
/// tokens (health, readiness and metrics only: every API call is refused).
pub fn load(config_file: Option<&Path>, address: Option<SocketAddr>) -> Result<Option<ApiConfig>> {
    let origin = config_file.map_or("the MODSIGNAL__HTTP__ variables".to_owned(), |p| {
        p.display().to_string()
    });
    let section = match crate::settings::load_config(config_file)?.and_then(|file| file.http) {
        None => None,
        Some(section) => Some(
            ApiConfig::from_section(section, |name| std::env::var(name).ok())
                .with_context(|| format!("[http] of {origin}"))?,
        ),
    };
    let config = match (section, address) {
        (Some(mut c), Some(a)) => {
            c.address = a;
            Some(c)
        }
        (Some(c), None) => Some(c),
        (None, Some(a)) => {
            tracing::warn!(
                "no [http] section: the API has no tokens and refuses every call; health, readiness and metrics are served"
            );
            Some(ApiConfig::new(a))
        }
        (None, None) => None,
    };
    Ok(config)
}

/// The store, its server's configuration, and the metrics it exports.
#[derive(Clone)]
pub struct Http {
    pub config: ApiConfig,
    pub store: Arc<FlagStore>,
    pub metrics: Metrics,
}

impl Http {
    pub fn new(config: ApiConfig, metrics: Metrics) -> Http {
        let store = Arc::new(FlagStore::new(config.max_revisions));
        Http { config, store, metrics }
    }

    /// Feeds the store with each flag written in this process.
    pub fn flag_sink(&self) -> crate::files::FlagSink {
        let store = self.store.clone();
        Box::new(move |f| {
            if let Err(e) = store.ingest(f) {
                tracing::warn!(error = %e, "a flag was not taken into the API's store");
            }
        })
    }

    /// Feeds the store with each resharer cohort page written in this process.
    pub fn cohort_sink(&self) -> crate::files::CohortSink {
        let store = self.store.clone();
        Box::new(move |c| {
            if let Err(e) = store.ingest_cohort(c) {
                tracing::warn!(error = %e, "a resharer cohort page was not taken into the API's store");
            }
        })
    }

    /// Binds and serves until `shutdown` completes.
    pub async fn serve(&self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        let state = ApiState::new(&self.config, self.store.clone(), self.metrics.registry().clone())
            .context("cannot set up the HTTP API")?;
        tracing::info!(address = %self.config.address, "serving the API, the dashboard and /metrics");
        modsignal_api::serve(&self.config, state, shutdown)
            .await
            .context("the HTTP server failed")
    }
}

/// A server on a thread and runtime of its own, for file mode, whose pipeline runs on the main
/// thread: it serves until SIGTERM or SIGINT. Binding happens before this returns, so a taken
/// address is reported at once. A signal that comes before the input is read (before
/// [`Http::store`] is ready) ends the process, as it would without a server.
pub fn spawn_server(http: Http) -> Result<ServerThread> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("modsignal-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP server's runtime")?;
    let state = ApiState::new(&http.config, http.store.clone(), http.metrics.registry().clone())
        .context("cannot set up the HTTP API")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(http.config.address))
        .with_context(|| format!("cannot listen on {}", http.config.address))?;
    tracing::info!(address = %http.config.address, "serving the API, the dashboard and /metrics");
    let store = http.store.clone();
    let handle = std::thread::Builder::new()
        .name("modsignal-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let stop = async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                        (Ok(mut term), Ok(mut int)) => {
                            let code = tokio::select! {
                                _ = term.recv() => 128 + libc::SIGTERM,
                                _ = int.recv() => 128 + libc::SIGINT,
                            };
                            if !store.is_ready() {
                                tracing::warn!("interrupted before the end of the input");
                                std::process::exit(code);
                            }
                        }
                        _ => std::future::pending::<()>().await,
                    }
                };
                modsignal_api::serve_listener(listener, state, stop)
                    .await
                    .context("the HTTP server failed")
            })
        })
        .context("cannot start the HTTP server's thread")?;
    Ok(ServerThread(handle))
}

/// The file-mode server's thread.
pub struct ServerThread(std::thread::JoinHandle<Result<()>>);

impl ServerThread {
    /// Waits until the server has stopped (on SIGTERM or SIGINT).
    pub fn join(self) -> Result<()> {
        self.0
            .join()
            .map_err(|_| anyhow::anyhow!("the HTTP server's thread panicked"))?
    }
}

#[cfg(test)]
mod tests {
    use modsignal_api::{ApiConfig, Role};

    const SHIPPED: &str = include_str!("../../../config/modsignal.toml");
    const PRODUCTION: &str = include_str!("../../../config/production.toml");

    fn env(name: &str) -> Option<String> {
        name.starts_with("MODSIGNAL_")
            .then(|| format!("{name}-is-a-long-enough-secret"))
    }

    /// The `[http]` section of `text` as the binary reads it, with the environment `env`.
    fn http(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, modsignal_api::ConfigError> {
        let file = crate::settings::parse_config(text, "the test's file").unwrap();
        ApiConfig::from_section(file.http.expect("an [http] section"), env)
    }

    #[test]
    fn the_shipped_config_documents_the_servers_defaults() {
        let c = http(SHIPPED, env).unwrap();
        let d = ApiConfig::new(c.address);
        assert_eq!(c.address.to_string(), modsignal_api::config::DEFAULT_ADDRESS);
        assert_eq!(
            (c.default_page, c.max_page, c.max_revisions),
            (d.default_page, d.max_page, d.max_revisions)
        );
        assert_eq!(c.pseudonymise, vec![Role::Liaison]);
        assert_eq!(
            c.tokens.iter().map(|t| t.role).collect::<Vec<_>>(),
            vec![Role::Liaison, Role::Analyst]
        );
        // Without the variables the file names, the server refuses to start.
        assert!(http(SHIPPED, |_| None).is_err());
    }

    #[test]
    fn the_production_example_is_a_valid_config() {
        let server = http(PRODUCTION, env).unwrap();
        assert_eq!(server.address.port(), 8080);
        let kafka = crate::settings::parse_config(PRODUCTION, "config/production.toml")
            .unwrap()
            .kafka
            .expect("a [kafka] section")
            .into_config(modsignal_core::Policy::default())
            .unwrap();
        assert_eq!(
            kafka.properties.get("security.protocol").map(String::as_str),
            Some("SASL_SSL")
        );
        assert!(kafka.repartition_topic.is_some() && kafka.changelog_topic.is_some());
        assert_eq!(
            kafka.input_formats.get("bsky.jetstream"),
            Some(&modsignal_formats::Format::Jetstream)
        );
        assert!(
            !kafka.properties.contains_key("sasl.password"),
            "no secret in the example"
        );
    }
}
