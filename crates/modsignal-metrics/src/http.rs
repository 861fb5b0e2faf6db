//! The HTTP server's metrics, registered in the registry the server's owner passes in (the
//! one `/metrics` renders). The server's crate defines no metric of its own: it hands this
//! module its request timings and a reader of its store's [`StoreStats`].
//!
//! `route` is the route's template (`/api/v1/flags/{flag_id}`), never the path asked for, so
//! no flag, message or account id becomes a label; requests that match no route count as
//! `unmatched`.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// What the HTTP server's flag store holds and has done, read at each scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Whether the store is ready to answer (`/readyz` says 200).
    pub ready: bool,
    pub flags: u64,
    /// Flags with at least one raised revision kept.
    pub raised_flags: u64,
    pub revisions: u64,
    pub ingested_total: u64,
    pub duplicates_total: u64,
    pub rejected_total: u64,
    pub thinned_total: u64,
}

/// The HTTP server's request metrics; its store's are read through [`StoreStats`].
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers the request metrics, and the store's, read by `stats` at each scrape.
    pub fn register(
        registry: &Registry,
        stats: impl Fn() -> StoreStats + Send + Sync + 'static,
    ) -> prometheus::Result<HttpMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "modsignal_http_requests_total",
                "HTTP requests answered, by route and status code.",
            ),
            &["route", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "modsignal_http_request_duration_seconds",
                "Time to answer an HTTP request.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(StoreCollector::new(Box::new(stats))?))?;
        Ok(HttpMetrics { requests, duration })
    }
}

/// Reads the store's sizes and counters at each scrape, so they are never stale.
struct StoreCollector {
    stats: Box<dyn Fn() -> StoreStats + Send + Sync>,
    ready: IntGauge,
    flags: IntGauge,
    raised: IntGauge,
    revisions: IntGauge,
    ingested: IntCounter,
    duplicates: IntCounter,
    rejected: IntCounter,
    thinned: IntCounter,
    descs: Vec<Desc>,
    /// Two scrapes at once must not both add the same growth to the counters.
    scrape: Mutex<()>,
}

impl StoreCollector {
    fn new(stats: Box<dyn Fn() -> StoreStats + Send + Sync>) -> prometheus::Result<StoreCollector> {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let mut c = StoreCollector {
            stats,
            ready: gauge("modsignal_api_ready", "1 when the API's store is ready to answer.")?,
            flags: gauge("modsignal_api_flags", "Flags in the API's store.")?,
            raised: gauge(
                "modsignal_api_raised_flags",
                "Flags in the API's store with a raised revision.",
            )?,
            revisions: gauge(
                "modsignal_api_flag_revisions",
                "Flag revisions kept in the API's store.",
            )?,
            ingested: counter("modsignal_api_flags_ingested_total", "Flag revisions stored.")?,
            duplicates: counter(
                "modsignal_api_flags_duplicate_total",
                "Flag revisions received again; nothing changed.",
            )?,
            rejected: counter(
                "modsignal_api_flags_rejected_total",
                "Flags refused as not following the flag contract.",
            )?,
            thinned: counter(
                "modsignal_api_revisions_thinned_total",
                "Revisions dropped to keep each flag's history within its cap.",
            )?,
            descs: Vec::new(),
            scrape: Mutex::new(()),
        };
        c.descs = c.parts().iter().flat_map(|m| m.desc()).cloned().collect();
        Ok(c)
    }

    fn parts(&self) -> [&dyn Collector; 8] {
        [
            &self.ready,
            &self.flags,
            &self.raised,
            &self.revisions,
            &self.ingested,
            &self.duplicates,
            &self.rejected,
            &self.thinned,
        ]
    }
}

impl Collector for StoreCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = (self.stats)();
        self.ready.set(i64::from(s.ready));
        self.flags.set(s.flags as i64);
        self.raised.set(s.raised_flags as i64);
        self.revisions.set(s.revisions as i64);
        // The store's counters only grow; each scrape adds what they grew by since the last.
        for (counter, total) in [
            (&self.ingested, s.ingested_total),
            (&self.duplicates, s.duplicates_total),
            (&self.rejected, s.rejected_total),
            (&self.thinned, s.thinned_total),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.parts().iter().flat_map(|m| m.collect()).collect()
    }
}
