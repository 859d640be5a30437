//! Live streams (`/v1/streams`): a camera or RTSP feed analysed continuously as
//! `gst-emotion watch` does (RTSP reconnects with backoff), its rolling results pushed
//! to every subscriber of its Server-Sent Events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::metrics::Metrics;
use super::work::ElementSettings;
use crate::bundle::BundleChoice;
use crate::element::{InputEvent, InputEventKind};
use crate::output::jsonl;
use crate::pipeline::live::{LiveEnd, LiveEvent, LiveOptions, LiveSource, run_live};

/// What a stream is doing.
#[derive(Clone, Debug, Serialize)]
pub struct StreamStatus {
    /// Stream id.
    pub id: String,
    /// The name given at creation.
    pub name: String,
    /// The source (credentials removed).
    pub source: String,
    /// `starting`, `playing`, `reconnecting`, `stopped` or `failed`.
    pub state: String,
    /// Windows analysed.
    pub windows: u64,
    /// Reconnections so far.
    pub reconnects: u32,
    /// The last problem (credentials removed).
    pub last_error: Option<String>,
    /// The inputs that deliver nothing now (`audio`, `video`): windows are cut from
    /// the other one (docs/live.md, "When inputs fail"); empty when all is well.
    pub missing_inputs: Vec<String>,
    /// Times an input stalled or ended while the other went on.
    pub input_stalls: u64,
}

impl StreamStatus {
    /// Follows an input stalling, ending or recovering.
    fn note_input(&mut self, e: &InputEvent) {
        let name = e.input.name().to_string();
        if e.is_stop() {
            self.input_stalls += 1;
            self.last_error = Some(e.message.clone());
            if !self.missing_inputs.contains(&name) {
                self.missing_inputs.push(name);
            }
        } else if e.kind == InputEventKind::Recovered {
            self.missing_inputs.retain(|n| *n != name);
        }
    }
}

struct Entry {
    status: Arc<Mutex<StreamStatus>>,
    stop: Arc<AtomicU32>,
    events: broadcast::Sender<String>,
    /// When it stopped or failed.
    ended: Arc<Mutex<Option<Instant>>>,
}

impl Entry {
    fn ended(&self) -> Option<Instant> {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Finished streams stay listed this long...
pub const KEEP_FINISHED_FOR: Duration = Duration::from_secs(600);

/// ...and at most this many of them (the most recent).
pub const KEEP_FINISHED: usize = 32;

/// The running streams.
pub struct Streams {
    entries: Mutex<HashMap<String, Entry>>,
    max: usize,
    metrics: Arc<Metrics>,
}

impl Streams {
    /// At most `max` streams at once.
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            max,
            metrics,
        })
    }

    /// The streams, finished ones beyond [`KEEP_FINISHED`] or older than
    /// [`KEEP_FINISHED_FOR`] dropped.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut finished: Vec<(Instant, String)> = entries
            .iter()
            .filter_map(|(id, e)| Some((e.ended()?, id.clone())))
            .collect();
        finished.sort();
        let excess = finished.len().saturating_sub(KEEP_FINISHED);
        for (i, (ended, id)) in finished.iter().enumerate() {
            if i < excess || ended.elapsed() > KEEP_FINISHED_FOR {
                entries.remove(id);
            }
        }
        entries
    }

    /// Starts analysing `source` (already checked against the server's policy).
    pub fn start(
        &self,
        source: LiveSource,
        shown: String,
        name: String,
        settings: &ElementSettings,
    ) -> Result<StreamStatus, ApiError> {
        let mut entries = self.lock();
        let running = entries
            .values()
            .filter(|e| {
                let s = e.status.lock().unwrap_or_else(|e| e.into_inner());
                s.state != "stopped" && s.state != "failed"
            })
            .count();
        if running >= self.max {
            return Err(ApiError::busy(
                format!("{running} streams are running (--max-streams); stop one first"),
                30,
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let status = Arc::new(Mutex::new(StreamStatus {
            id: id.clone(),
            name: name.clone(),
            source: shown,
            state: "starting".into(),
            windows: 0,
            reconnects: 0,
            last_error: None,
            missing_inputs: Vec::new(),
            input_stalls: 0,
        }));
        let stop = Arc::new(AtomicU32::new(0));
        let ended = Arc::new(Mutex::new(None));
        let (events, _) = broadcast::channel(256);
        let opts = LiveOptions {
            bundle: Some(BundleChoice::parse(&settings.bundle)),
            device: settings.device.clone(),
            properties: settings.properties.clone(),
            name: Some(name),
            ..LiveOptions::default()
        };
        let thread = {
            let (status, stop, events, metrics, ended) = (
                status.clone(),
                stop.clone(),
                events.clone(),
                self.metrics.clone(),
                ended.clone(),
            );
            std::thread::Builder::new()
                .name("serve-stream".into())
                .spawn(move || {
                    metrics.streams_up.inc();
                    let set = |f: &dyn Fn(&mut StreamStatus)| {
                        f(&mut status.lock().unwrap_or_else(|e| e.into_inner()))
                    };
                    let end = run_live(
                        &source,
                        &opts,
                        |event| match event {
                            LiveEvent::Playing => set(&|s| s.state = "playing".into()),
                            LiveEvent::Resumed => set(&|s| s.state = "playing".into()),
                            LiveEvent::Window(r) => {
                                metrics.window(&r);
                                set(&|s| s.windows += 1);
                                let _ = events.send(jsonl::record(&r).to_string());
                            }
                            LiveEvent::Warning(w) => set(&|s| s.last_error = Some(w.clone())),
                            LiveEvent::Input(e) => {
                                metrics.input_event(&e);
                                set(&|s| s.note_input(&e));
                            }
                            LiveEvent::Lost { reason, .. } => {
                                metrics.reconnects.inc();
                                set(&|s| {
                                    s.state = "reconnecting".into();
                                    s.reconnects += 1;
                                    s.last_error = Some(reason.clone());
                                });
                            }
                        },
                        &|| stop.load(Ordering::SeqCst),
                    );
                    match end {
                        Ok(LiveEnd::Stopped) => set(&|s| s.state = "stopped".into()),
                        Ok(LiveEnd::Failed(e)) => set(&|s| {
                            s.state = "failed".into();
                            s.last_error = Some(e.clone());
                        }),
                        Err(e) => set(&|s| {
                            s.state = "failed".into();
                            s.last_error = Some(e.to_string());
                        }),
                    }
                    metrics.streams_up.dec();
                    *ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    let _ = events.send(String::new());
                })
        };
        thread.map_err(|e| ApiError::internal(format!("cannot start the stream thread: {e}")))?;
        let snapshot = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        entries.insert(
            id,
            Entry {
                status,
                stop,
                events,
                ended,
            },
        );
        Ok(snapshot)
    }

    /// The status of stream `id`.
    pub fn get(&self, id: &str) -> Option<StreamStatus> {
        self.lock()
            .get(id)
            .map(|e| e.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Every stream's status.
    pub fn list(&self) -> Vec<StreamStatus> {
        let mut v: Vec<StreamStatus> = self
            .lock()
            .values()
            .map(|e| e.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Live events of stream `id` from now on.
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<String>> {
        self.lock().get(id).map(|e| e.events.subscribe())
    }

    /// Stops stream `id` (its last windows are analysed first).
    pub fn stop(&self, id: &str) -> Result<StreamStatus, ApiError> {
        let entries = self.lock();
        let e = entries
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("no stream {id}")))?;
        e.stop.fetch_add(1, Ordering::SeqCst);
        Ok(e.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Stops every stream at once (shutdown).
    pub fn stop_all(&self) {
        for e in self.lock().values() {
            e.stop.store(2, Ordering::SeqCst);
        }
    }

    /// A stream's status as the API answers it.
    pub fn body(s: &StreamStatus) -> Value {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        v["urls"] = json!({
            "status": format!("/v1/streams/{}", s.id),
            "events": format!("/v1/streams/{}/events", s.id),
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: &str, ended: Option<Instant>) -> Entry {
        let (events, _) = broadcast::channel(1);
        Entry {
            status: Arc::new(Mutex::new(StreamStatus {
                id: String::new(),
                name: String::new(),
                source: String::new(),
                state: state.into(),
                windows: 0,
                reconnects: 0,
                last_error: None,
                missing_inputs: Vec::new(),
                input_stalls: 0,
            })),
            stop: Arc::new(AtomicU32::new(0)),
            events,
            ended: Arc::new(Mutex::new(ended)),
        }
    }

    #[test]
    fn finished_streams_are_dropped_after_a_while_or_beyond_a_count() {
        let streams = Streams::new(4, Arc::new(Metrics::new()));
        let now = Instant::now();
        {
            let mut e = streams.entries.lock().unwrap();
            e.insert("running".into(), entry("playing", None));
            e.insert(
                "old".into(),
                entry(
                    "stopped",
                    now.checked_sub(KEEP_FINISHED_FOR + Duration::from_secs(1)),
                ),
            );
            for i in 0..KEEP_FINISHED + 3 {
                let ended = now.checked_sub(Duration::from_secs(i as u64));
                e.insert(format!("f{i}"), entry("stopped", ended));
            }
        }
        let ids: Vec<String> = streams.lock().keys().cloned().collect();
        assert_eq!(ids.len(), 1 + KEEP_FINISHED);
        assert!(ids.contains(&"running".to_string()));
        assert!(!ids.contains(&"old".to_string()));
        // The most recent ones stay.
        assert!(ids.contains(&"f0".to_string()));
        assert!(!ids.contains(&format!("f{}", KEEP_FINISHED + 2)));
    }
}
