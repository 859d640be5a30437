//! `GET /metrics`: Prometheus text format (the `prometheus` crate) — requests by route
//! and status, latency histograms, in-flight requests, queue depth, windows analysed,
//! model / ASR / face seconds, errors by kind, jobs by state, live streams, model load
//! time, jobs waiting over the fleet.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::output::WindowResult;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status.
    pub requests: IntCounterVec,
    /// Request latency, by route.
    pub latency: HistogramVec,
    /// Requests being answered.
    pub in_flight: IntGauge,
    /// Analyses waiting for a pipeline.
    pub queue_depth: IntGauge,
    /// Pipelines running.
    pub pipelines: IntGauge,
    /// Windows analysed.
    pub windows: IntCounter,
    /// Seconds in the model's forward passes (all users of the process).
    pub forward_seconds: Gauge,
    /// Seconds of speech recognition.
    pub asr_seconds: Gauge,
    /// Seconds of face detection and classification.
    pub face_seconds: Gauge,
    /// Errors answered, by code.
    pub errors: IntCounterVec,
    /// Jobs by state (over every replica sharing a job store).
    pub jobs: IntGaugeVec,
    /// Jobs accepted and not started, over every replica sharing the job store: the
    /// autoscaling signal.
    pub jobs_waiting: IntGauge,
    /// 1 while the job store answers (always 1 without `--jobs-store`).
    pub job_store_up: IntGauge,
    /// Live streams running.
    pub streams_up: IntGauge,
    /// Live stream reconnections.
    pub reconnects: IntCounter,
    /// Live inputs that stalled or ended while the other went on, by input.
    pub input_stalls: IntCounterVec,
    /// Seconds the bundle and speech models took to load.
    pub model_load_seconds: Gauge,
    forward_seen: AtomicU64,
}

impl Metrics {
    /// Metrics registered in a fresh registry.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("gst_emotion".into()), None).expect("a valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![0.005, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
            ),
            &["route"],
        )
        .expect("valid metric");
        let gauge = |n: &str, h: &str| IntGauge::new(n, h).expect("valid metric");
        let fgauge = |n: &str, h: &str| Gauge::new(n, h).expect("valid metric");
        let counter = |n: &str, h: &str| IntCounter::new(n, h).expect("valid metric");
        let m = Self {
            requests,
            latency,
            in_flight: gauge("http_requests_in_flight", "HTTP requests being answered"),
            queue_depth: gauge("queue_depth", "analyses waiting for a pipeline"),
            pipelines: gauge("pipelines_running", "analysis pipelines running"),
            windows: counter("windows_analysed_total", "windows analysed"),
            forward_seconds: fgauge(
                "model_forward_seconds_total",
                "seconds spent in model forward passes",
            ),
            asr_seconds: fgauge("asr_seconds_total", "seconds of speech recognition"),
            face_seconds: fgauge(
                "face_seconds_total",
                "seconds of face detection and classification",
            ),
            errors: IntCounterVec::new(
                Opts::new("errors_total", "errors answered, by code"),
                &["code"],
            )
            .expect("valid metric"),
            jobs: IntGaugeVec::new(Opts::new("jobs", "jobs by state"), &["state"])
                .expect("valid metric"),
            jobs_waiting: gauge(
                "jobs_waiting",
                "jobs accepted and not started, over every replica sharing the job store",
            ),
            job_store_up: gauge("job_store_up", "1 while the job store answers"),
            streams_up: gauge("streams_up", "live streams running"),
            reconnects: counter("stream_reconnects_total", "live stream reconnections"),
            input_stalls: IntCounterVec::new(
                Opts::new(
                    "stream_input_stalls_total",
                    "live stream inputs that stalled or ended while the other went on",
                ),
                &["input"],
            )
            .expect("valid metric"),
            model_load_seconds: fgauge(
                "model_load_seconds",
                "seconds the bundle and speech models took to load",
            ),
            registry,
            forward_seen: AtomicU64::new(0),
        };
        let r = &m.registry;
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.latency.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.pipelines.clone()),
            Box::new(m.windows.clone()),
            Box::new(m.forward_seconds.clone()),
            Box::new(m.asr_seconds.clone()),
            Box::new(m.face_seconds.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.jobs.clone()),
            Box::new(m.jobs_waiting.clone()),
            Box::new(m.job_store_up.clone()),
            Box::new(m.streams_up.clone()),
            Box::new(m.reconnects.clone()),
            Box::new(m.input_stalls.clone()),
            Box::new(m.model_load_seconds.clone()),
        ] {
            r.register(c).expect("unique metric names");
        }
        m
    }

    /// Counts a live input that stalled or ended.
    pub fn input_event(&self, e: &crate::element::InputEvent) {
        if e.is_stop() {
            self.input_stalls.with_label_values(&[e.input.name()]).inc();
        }
    }

    /// Counts one analysed window and its stage times.
    pub fn window(&self, r: &WindowResult) {
        self.windows.inc();
        for (stage, ms) in &r.timings {
            match stage.as_str() {
                "asr" => self.asr_seconds.add(ms / 1e3),
                "face-detect" | "face-classify" => self.face_seconds.add(ms / 1e3),
                _ => {}
            }
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let now = crate::infer::FORWARD_NANOS.load(Ordering::Relaxed);
        let before = self.forward_seen.swap(now, Ordering::Relaxed);
        self.forward_seconds
            .add(now.saturating_sub(before) as f64 / 1e9);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
