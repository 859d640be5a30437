//! Publishing window records as they happen (docs/publish.md): to a file (or stdout)
//! as JSON Lines or a JSON array, or to an MQTT broker. Used by the `emotionpublish`
//! element and by `watch`/`analyze --publish`.
//!
//! A [`Publisher`] never blocks its caller: [`Publisher::push`] puts the record in a
//! bounded queue that a thread of its own empties; while the destination is away the
//! queue fills up to `max_queued` records and then the oldest are dropped and counted.

pub mod element;
mod file;
mod mqtt;
pub mod record;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why publishing could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The destination or its settings are not usable: what to change.
    #[error("{0}")]
    Target(String),
    /// A file (records, password, certificate) could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The publishing thread could not be started.
    #[error("{0}")]
    Thread(String),
}

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A file (`None`: standard output).
    File {
        /// The file, created or truncated; `None` for stdout.
        path: Option<PathBuf>,
        /// One record per line, or the whole file one JSON array.
        format: FileFormat,
    },
    /// An MQTT broker.
    Mqtt(MqttConfig),
}

/// How records are laid out in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON object per line.
    JsonLines,
    /// The whole file is one JSON array of records.
    Json,
}

/// An MQTT broker and how to talk to it.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port (1883, 8883 with TLS).
    pub port: u16,
    /// Topic every record is published to.
    pub topic: String,
    /// Client id (unique per broker).
    pub client_id: String,
    /// 0 (at most once) or 1 (at least once).
    pub qos: u8,
    /// User name and password, when the broker wants them.
    pub credentials: Option<(String, String)>,
    /// TLS: CA certificate (PEM) and optionally a client certificate and key (PEM).
    pub tls: Option<TlsFiles>,
    /// Failed attempts before the first connection counts as impossible (0 = never).
    pub max_connect_attempts: u32,
    /// Longest wait between reconnection attempts (starts at 1 s, doubles).
    pub max_reconnect_interval: Duration,
}

impl std::fmt::Debug for MqttConfig {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("topic", &self.topic)
            .field("client_id", &self.client_id)
            .field("qos", &self.qos)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// TLS files (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate the broker's certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate and key, for brokers that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// What a publisher reports as it goes (the element posts these as messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Records were dropped because the queue was full; the total so far.
    Dropped(u64),
    /// The connection was lost (or could not be made); retrying.
    ConnectionLost(String),
    /// Connected again after a loss.
    Reconnected,
    /// Publishing is impossible (the first connection failed `max_connect_attempts`
    /// times, or the file cannot be written).
    Fatal(String),
}

/// Counters of a publisher.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records written or handed to the broker (QoS 0) / acknowledged by it (QoS 1).
    pub published: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// The queue between the caller and the publishing thread.
struct Queue {
    records: Mutex<VecDeque<String>>,
    ready: Condvar,
    max: usize,
    /// No more records will come: empty the queue and stop.
    closing: AtomicBool,
    /// Stop now, whatever is queued.
    abort: AtomicBool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next record, waiting up to `wait`; `None` on timeout or when closed and
    /// empty (see [`Queue::finished`]).
    fn next(&self, wait: Duration) -> Option<String> {
        let mut q = self.lock();
        if q.is_empty() && !self.closing.load(Ordering::SeqCst) {
            q = self
                .ready
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        q.pop_front()
    }

    /// Puts a record back at the front (it could not be sent yet).
    fn unget(&self, record: String) {
        self.lock().push_front(record);
    }

    /// Closed and empty, or aborted: the thread may end.
    fn finished(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
            || (self.closing.load(Ordering::SeqCst) && self.lock().is_empty())
    }

    /// Sleeps up to `d`, waking early when aborted.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.abort.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// What a finished publisher did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Records still queued when it stopped (not published).
    pub left: usize,
    /// Records published.
    pub published: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
}

/// Publishes records on its own thread(s); see the module docs.
pub struct Publisher {
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    notify: Arc<dyn Fn(Notice) + Send + Sync>,
    threads: Vec<JoinHandle<()>>,
    last_drop_notice: Mutex<Option<Instant>>,
}

impl Publisher {
    /// Starts publishing to `to`, queueing at most `max_queued` records. A file that
    /// cannot be created and unreadable TLS/password files fail here; a broker that is
    /// not there is retried on the publishing thread (see [`Notice`]).
    pub fn start(
        to: &Destination,
        max_queued: usize,
        notify: Arc<dyn Fn(Notice) + Send + Sync>,
    ) -> Result<Self, PublishError> {
        let queue = Arc::new(Queue {
            records: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            max: max_queued.max(1),
            closing: AtomicBool::new(false),
            abort: AtomicBool::new(false),
        });
        let stats = Arc::new(Stats::default());
        let threads = match to {
            Destination::File { path, format } => file::start(
                path.as_deref(),
                *format,
                queue.clone(),
                stats.clone(),
                notify.clone(),
            )?,
            Destination::Mqtt(config) => {
                mqtt::start(config, queue.clone(), stats.clone(), notify.clone())?
            }
        };
        Ok(Self {
            queue,
            stats,
            notify,
            threads,
            last_drop_notice: Mutex::new(None),
        })
    }

    /// Queues one record (a JSON text) without waiting; when the queue is full the
    /// oldest record is dropped and counted.
    pub fn push(&self, record: String) {
        let dropped = {
            let mut q = self.queue.lock();
            let dropped = q.len() >= self.queue.max && q.pop_front().is_some();
            q.push_back(record);
            dropped
        };
        self.queue.ready.notify_one();
        if dropped {
            let total = self.stats.dropped.fetch_add(1, Ordering::SeqCst) + 1;
            let mut last = self
                .last_drop_notice
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                *last = Some(Instant::now());
                (self.notify)(Notice::Dropped(total));
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Records waiting to be published.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    /// Publishes what is queued, waiting at most `grace`, then stops.
    pub fn finish(mut self, grace: Duration) -> Finished {
        self.queue.closing.store(true, Ordering::SeqCst);
        self.queue.ready.notify_all();
        // The threads end once everything queued is out (and, for MQTT, acknowledged).
        let end = Instant::now() + grace;
        while !self.threads.iter().all(JoinHandle::is_finished) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = self.queued();
        self.queue.abort.store(true, Ordering::SeqCst);
        self.queue.ready.notify_all();
        // A thread stuck connecting to a far broker is left to end on its own.
        let end = Instant::now() + Duration::from_secs(2);
        for t in self.threads.drain(..) {
            while !t.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        Finished {
            left,
            published: self.stats.published.load(Ordering::SeqCst),
            dropped: self.stats.dropped.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.queue.abort.store(true, Ordering::SeqCst);
        self.queue.ready.notify_all();
    }
}

/// Parses a `--publish` target: `mqtt://[user@]host[:port]/topic`, `mqtts://…`
/// (TLS, port 8883), `file:///path.jsonl`, a path, or `-` (stdout).
pub fn parse_target(s: &str) -> Result<Destination, PublishError> {
    if s == "-" || s == "stdout" {
        return Ok(Destination::File {
            path: None,
            format: FileFormat::JsonLines,
        });
    }
    let tls = s.starts_with("mqtts://");
    if let Some(rest) = s
        .strip_prefix("mqtt://")
        .or_else(|| s.strip_prefix("mqtts://"))
    {
        let (authority, topic) = rest.split_once('/').ok_or_else(|| {
            PublishError::Target(format!("{s}: give a topic, as in mqtt://host:1883/TOPIC"))
        })?;
        if topic.is_empty() {
            return Err(PublishError::Target(format!("{s}: the topic is empty")));
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        if user.as_deref().is_some_and(|u| u.contains(':')) {
            return Err(PublishError::Target(
                "do not put a password in the URL: use --publish-password-file".into(),
            ));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| PublishError::Target(format!("{s}: bad port {p:?}")))?,
            ),
            None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(PublishError::Target(format!("{s}: no host")));
        }
        return Ok(Destination::Mqtt(MqttConfig {
            host,
            port,
            topic: topic.to_string(),
            client_id: default_client_id(),
            qos: 0,
            credentials: user.map(|u| (u, String::new())),
            tls: tls.then(|| TlsFiles {
                ca: PathBuf::new(),
                client: None,
            }),
            max_connect_attempts: 0,
            max_reconnect_interval: Duration::from_secs(30),
        }));
    }
    if s.contains("://") && !s.starts_with("file://") {
        return Err(PublishError::Target(format!(
            "{s}: publish to mqtt://, mqtts://, file:// or a path"
        )));
    }
    let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(s));
    let format = if path.extension().is_some_and(|e| e == "json") {
        FileFormat::Json
    } else {
        FileFormat::JsonLines
    };
    Ok(Destination::File {
        path: Some(path),
        format,
    })
}

/// The password in `path`: its first line (never logged).
pub fn read_password(path: &std::path::Path) -> Result<String, PublishError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PublishError::Io(format!(
            "cannot read the password file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// `gst-emotion-<pid>-<n>`: unique in this process and, practically, on the broker.
pub fn default_client_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "gst-emotion-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let Destination::Mqtt(m) = parse_target("mqtt://broker.local/robots/spot").unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.host.as_str(), m.port, m.topic.as_str()),
            ("broker.local", 1883, "robots/spot")
        );
        let Destination::Mqtt(m) = parse_target("mqtts://ops@10.0.0.2:9000/t").unwrap() else {
            panic!()
        };
        assert_eq!((m.port, m.credentials.unwrap().0.as_str()), (9000, "ops"));
        assert!(m.tls.is_some());
        assert!(
            parse_target("mqtt://u:secret@h/t")
                .unwrap_err()
                .to_string()
                .contains("password")
        );
        assert!(parse_target("mqtt://h:1883").is_err());
        assert!(parse_target("kafka://h/t").is_err());
        assert_eq!(
            parse_target("out/records.json").unwrap(),
            Destination::File {
                path: Some("out/records.json".into()),
                format: FileFormat::Json
            }
        );
        assert_eq!(
            parse_target("-").unwrap(),
            Destination::File {
                path: None,
                format: FileFormat::JsonLines
            }
        );
    }

    #[test]
    fn records_reach_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for (name, format) in [
            ("r.jsonl", FileFormat::JsonLines),
            ("r.json", FileFormat::Json),
        ] {
            let path = dir.path().join(name);
            let p = Publisher::start(
                &Destination::File {
                    path: Some(path.clone()),
                    format,
                },
                100,
                Arc::new(|_| {}),
            )
            .unwrap();
            for i in 0..5 {
                p.push(format!("{{\"i\":{i}}}"));
            }
            assert_eq!(p.finish(Duration::from_secs(5)).left, 0);
            let text = std::fs::read_to_string(&path).unwrap();
            let values: Vec<serde_json::Value> = match format {
                FileFormat::JsonLines => text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
                FileFormat::Json => serde_json::from_str(&text).unwrap(),
            };
            let order: Vec<i64> = values.iter().map(|v| v["i"].as_i64().unwrap()).collect();
            assert_eq!(order, [0, 1, 2, 3, 4], "{name}: {text}");
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_so() {
        // A broker port nobody listens on: nothing leaves the queue.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let notices = Arc::new(Mutex::new(Vec::new()));
        let n = notices.clone();
        let p = Publisher::start(
            &Destination::Mqtt(MqttConfig {
                host: "127.0.0.1".into(),
                port,
                topic: "t".into(),
                client_id: default_client_id(),
                qos: 1,
                credentials: None,
                tls: None,
                max_connect_attempts: 0,
                max_reconnect_interval: Duration::from_secs(1),
            }),
            3,
            Arc::new(move |x| n.lock().unwrap().push(x)),
        )
        .unwrap();
        for i in 0..5 {
            p.push(format!("{{\"i\":{i}}}"));
        }
        assert_eq!(p.stats().dropped.load(Ordering::SeqCst), 2);
        assert_eq!(p.queued(), 3);
        assert_eq!(p.finish(Duration::from_millis(300)).left, 3);
        let notices = notices.lock().unwrap();
        // One drop notice (they are rate-limited), and the connection failures.
        assert_eq!(
            notices
                .iter()
                .filter(|n| matches!(n, Notice::Dropped(_)))
                .count(),
            1
        );
    }
}
