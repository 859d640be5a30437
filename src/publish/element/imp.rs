//! SECTION:element-emotionpublish
//! @title: emotionpublish
//!
//! Publishes the results of an upstream `emotionsense` as they happen: one JSON record
//! per window — the JSON Lines record (docs/batch.md) plus `source` (`source-id`) and a
//! UTC `timestamp` — to a file or standard output (`method=file`) or an MQTT broker
//! (`method=mqtt`). Property names follow Intel DL Streamer's `gvametapublish`.
//!
//! The element reads `EmotionMeta` on the video buffers and publishes each window once,
//! however many buffers carry it; buffers pass through untouched. It never blocks the
//! stream: records go through a bounded queue (`max-queued`) to a thread of their own.
//! While the broker is away records queue up; beyond `max-queued` the oldest are
//! dropped, counted in `records-dropped` and reported with a warning (at most every
//! 10 s). Lost connections are retried with a backoff doubling from 1 s up to
//! `max-reconnect-interval`; a first connection failing `max-connect-attempts` times
//! is an error. At end of stream the queue is emptied (waiting at most 5 s).
//!
//! ## Example launch lines
//! ```sh
//! gst-launch-1.0 uridecodebin uri=file:///path/clip.mp4 name=d \
//!   emotionsense name=e ! emotionpublish method=mqtt address=localhost:1883 topic=cameras/hall ! fakesink \
//!   d. ! video/x-raw ! queue ! videoconvert ! e.video \
//!   d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio
//! gst-launch-1.0 videotestsrc num-buffers=300 ! videoconvert ! emotionsense bundle=none \
//!   ! emotionpublish file-path=stdout ! fakesink
//! ```

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use super::{CAT, FileFormat, Method};
use crate::output::{META_NAME, WindowResult};
use crate::publish::{
    Destination, MqttConfig, Notice, PublishError, Publisher, TlsFiles, default_client_id,
    read_password, record,
};

/// How long end of stream waits for queued records to leave.
const EOS_GRACE: Duration = Duration::from_secs(5);

/// The properties.
#[derive(Clone, Debug)]
struct Settings {
    method: Method,
    address: String,
    topic: String,
    client_id: Option<String>,
    qos: u32,
    username: Option<String>,
    password_file: Option<String>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    file_path: String,
    file_format: FileFormat,
    max_connect_attempts: u32,
    max_reconnect_interval: u32,
    max_queued: u32,
    source_id: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            method: Method::File,
            address: "localhost:1883".into(),
            topic: "emotion".into(),
            client_id: None,
            qos: 0,
            username: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            file_path: "stdout".into(),
            file_format: FileFormat::JsonLines,
            max_connect_attempts: 1,
            max_reconnect_interval: 30,
            max_queued: 1000,
            source_id: None,
        }
    }
}

impl Settings {
    /// Where records go; reads the password file (never logged).
    fn destination(&self) -> Result<Destination, PublishError> {
        Ok(match self.method {
            Method::File => Destination::File {
                path: (self.file_path != "stdout" && self.file_path != "-")
                    .then(|| PathBuf::from(&self.file_path)),
                format: match self.file_format {
                    FileFormat::JsonLines => crate::publish::FileFormat::JsonLines,
                    FileFormat::Json => crate::publish::FileFormat::Json,
                },
            },
            Method::Mqtt => {
                let address = self
                    .address
                    .trim_start_matches("mqtt://")
                    .trim_start_matches("mqtts://");
                let (host, port) = match address.rsplit_once(':') {
                    Some((h, p)) => (
                        h.to_string(),
                        p.parse::<u16>().map_err(|_| {
                            PublishError::Target(format!("address {:?}: bad port", self.address))
                        })?,
                    ),
                    None => (address.to_string(), 1883),
                };
                if host.is_empty() || self.topic.is_empty() {
                    return Err(PublishError::Target(
                        "method=mqtt needs an address (host:port) and a topic".into(),
                    ));
                }
                let password = match &self.password_file {
                    Some(p) => read_password(p.as_ref())?,
                    None => String::new(),
                };
                let tls = match (&self.ca_file, &self.cert_file, &self.key_file) {
                    (None, None, None) => None,
                    (Some(ca), cert, key) => Some(TlsFiles {
                        ca: ca.into(),
                        client: match (cert, key) {
                            (Some(c), Some(k)) => Some((c.into(), k.into())),
                            (None, None) => None,
                            _ => {
                                return Err(PublishError::Target(
                                    "cert-file and key-file go together".into(),
                                ));
                            }
                        },
                    }),
                    (None, _, _) => return Err(PublishError::Target("TLS needs ca-file".into())),
                };
                Destination::Mqtt(MqttConfig {
                    host,
                    port,
                    topic: self.topic.clone(),
                    client_id: self.client_id.clone().unwrap_or_else(default_client_id),
                    qos: self.qos.min(1) as u8,
                    credentials: self.username.clone().map(|u| (u, password)),
                    tls,
                    max_connect_attempts: self.max_connect_attempts,
                    max_reconnect_interval: Duration::from_secs(
                        self.max_reconnect_interval.max(1).into(),
                    ),
                })
            }
        })
    }
}

/// Streaming state, rebuilt at start.
#[derive(Default)]
struct State {
    publisher: Option<Publisher>,
    source: String,
    /// The last window published (index, start), to publish each once.
    last: Option<(u64, u64)>,
}

/// The element.
#[derive(Default)]
pub struct EmotionPublish {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Counters of the last publisher, kept for the read-only properties after it
    /// stopped (while it runs they are read from it).
    counts: Mutex<(u64, u64)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for EmotionPublish {
    const NAME: &'static str = "GstEmotionPublish";
    type Type = super::EmotionPublish;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for EmotionPublish {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            let string = |name: &str, nick: &str, blurb: &str, default: Option<&str>| {
                glib::ParamSpecString::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecEnum::builder_with_default("method", d.method)
                    .nick("Method")
                    .blurb("Where records go: file (file-path) or mqtt (address, topic)")
                    .mutable_ready()
                    .build(),
                string(
                    "address",
                    "Address",
                    "MQTT broker as host:port (mqtt:// or mqtts:// prefixes allowed)",
                    Some(&d.address),
                ),
                string(
                    "topic",
                    "Topic",
                    "MQTT topic of the records",
                    Some(&d.topic),
                ),
                string(
                    "mqtt-client-id",
                    "MQTT client id",
                    "Client id given to the broker (unique per broker); unset: \
                     gst-emotion-PID-N",
                    None,
                ),
                glib::ParamSpecUInt::builder("qos")
                    .nick("QoS")
                    .blurb("MQTT quality of service: 0 at most once, 1 at least once")
                    .maximum(1)
                    .default_value(d.qos)
                    .mutable_ready()
                    .build(),
                string(
                    "username",
                    "User name",
                    "MQTT user name (the password comes from password-file)",
                    None,
                ),
                string(
                    "password-file",
                    "Password file",
                    "File holding the MQTT password (its first line; never logged)",
                    None,
                ),
                string(
                    "ca-file",
                    "CA file",
                    "TLS: CA certificate (PEM) the broker's certificate must chain to; \
                     setting it turns TLS on",
                    None,
                ),
                string(
                    "cert-file",
                    "Certificate file",
                    "TLS: client certificate (PEM), with key-file",
                    None,
                ),
                string(
                    "key-file",
                    "Key file",
                    "TLS: client private key (PEM)",
                    None,
                ),
                string(
                    "file-path",
                    "File path",
                    "method=file: the file to write (created or truncated); \"stdout\" \
                     for standard output",
                    Some(&d.file_path),
                ),
                glib::ParamSpecEnum::builder_with_default("file-format", d.file_format)
                    .nick("File format")
                    .blurb("method=file: json-lines (a record per line) or json (one array)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-connect-attempts")
                    .nick("Max connect attempts")
                    .blurb(
                        "Failed attempts at the first MQTT connection before it is an error \
                         (0: keep trying)",
                    )
                    .default_value(d.max_connect_attempts)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-reconnect-interval")
                    .nick("Max reconnect interval")
                    .blurb(
                        "Longest wait in seconds between reconnection attempts (the wait \
                         starts at 1 s and doubles)",
                    )
                    .minimum(1)
                    .maximum(3600)
                    .default_value(d.max_reconnect_interval)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-queued")
                    .nick("Max queued")
                    .blurb(
                        "Records kept while the destination is away; beyond this the oldest \
                         are dropped (records-dropped)",
                    )
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(d.max_queued)
                    .mutable_ready()
                    .build(),
                string(
                    "source-id",
                    "Source id",
                    "The source field of every record; unset: the pipeline's name",
                    None,
                ),
                glib::ParamSpecUInt64::builder("records-published")
                    .nick("Records published")
                    .blurb("Records written, or sent (QoS 0) / acknowledged (QoS 1)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("records-dropped")
                    .nick("Records dropped")
                    .blurb("Records dropped because more than max-queued were waiting")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let string = |v: &glib::Value| v.get::<Option<String>>().ok().flatten();
        match pspec.name() {
            "method" => s.method = value.get().unwrap_or_default(),
            "address" => s.address = string(value).unwrap_or_default(),
            "topic" => s.topic = string(value).unwrap_or_default(),
            "mqtt-client-id" => s.client_id = string(value),
            "qos" => s.qos = value.get().unwrap_or_default(),
            "username" => s.username = string(value),
            "password-file" => s.password_file = string(value),
            "ca-file" => s.ca_file = string(value),
            "cert-file" => s.cert_file = string(value),
            "key-file" => s.key_file = string(value),
            "file-path" => s.file_path = string(value).unwrap_or_else(|| "stdout".into()),
            "file-format" => s.file_format = value.get().unwrap_or_default(),
            "max-connect-attempts" => s.max_connect_attempts = value.get().unwrap_or(1),
            "max-reconnect-interval" => s.max_reconnect_interval = value.get().unwrap_or(30),
            "max-queued" => s.max_queued = value.get().unwrap_or(1000),
            "source-id" => s.source_id = string(value),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "method" => s.method.to_value(),
            "address" => s.address.to_value(),
            "topic" => s.topic.to_value(),
            "mqtt-client-id" => s.client_id.to_value(),
            "qos" => s.qos.to_value(),
            "username" => s.username.to_value(),
            "password-file" => s.password_file.to_value(),
            "ca-file" => s.ca_file.to_value(),
            "cert-file" => s.cert_file.to_value(),
            "key-file" => s.key_file.to_value(),
            "file-path" => s.file_path.to_value(),
            "file-format" => s.file_format.to_value(),
            "max-connect-attempts" => s.max_connect_attempts.to_value(),
            "max-reconnect-interval" => s.max_reconnect_interval.to_value(),
            "max-queued" => s.max_queued.to_value(),
            "source-id" => s.source_id.to_value(),
            "records-published" => self.counts().0.to_value(),
            "records-dropped" => self.counts().1.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for EmotionPublish {}

impl ElementImpl for EmotionPublish {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Emotion result publisher",
                "Filter/Metadata/Network",
                "Publishes emotionsense results (EmotionMeta) per window as JSON to a file \
                 or an MQTT broker; buffers pass through",
                "gst-emotion developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for EmotionPublish {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let destination = settings
            .destination()
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        gst::info!(CAT, imp = self, "publishing to {destination:?}");
        let weak = self.obj().downgrade();
        let notify = Arc::new(move |n: Notice| {
            if let Some(obj) = weak.upgrade() {
                obj.imp().notice(n);
            }
        });
        let publisher = Publisher::start(&destination, settings.max_queued as usize, notify)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{e}")))?;
        let source = settings
            .source_id
            .clone()
            .unwrap_or_else(|| self.pipeline_name());
        *lock(&self.counts) = (0, 0);
        *lock(&self.state) = State {
            publisher: Some(publisher),
            source,
            last: None,
        };
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.finish(Duration::from_secs(2));
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => self.finish(EOS_GRACE),
            gst::EventView::FlushStop(_) => lock(&self.state).last = None,
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.publish_from(buf);
        Ok(gst::FlowSuccess::Ok)
    }

    fn transform_ip_passthrough(
        &self,
        buf: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.publish_from(buf);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl EmotionPublish {
    /// Publishes the window `buf` carries, unless it was published already.
    fn publish_from(&self, buf: &gst::BufferRef) {
        let Ok(meta) = gst::meta::CustomMeta::from_buffer(buf, META_NAME) else {
            return;
        };
        let s = meta.structure();
        // Many frames carry the same window: compare its key before reading it all.
        let (Ok(index), Ok(start)) = (s.get::<u64>("index"), s.get::<u64>("start")) else {
            return;
        };
        let mut state = lock(&self.state);
        if state.last == Some((index, start)) {
            return;
        }
        state.last = Some((index, start));
        let window = match WindowResult::from_structure(s) {
            Ok(w) => w,
            Err(e) => {
                gst::warning!(CAT, imp = self, "unreadable EmotionMeta: {e}");
                return;
            }
        };
        let text = record::record(&window, &state.source, SystemTime::now()).to_string();
        if let Some(p) = &state.publisher {
            p.push(text);
        }
    }

    /// Publishes what is queued (waiting at most `grace`) and stops the publisher.
    fn finish(&self, grace: Duration) {
        let Some(publisher) = lock(&self.state).publisher.take() else {
            return;
        };
        let done = publisher.finish(grace);
        *lock(&self.counts) = (done.published, done.dropped);
        let left = done.left;
        if left > 0 {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("{left} record(s) could not be published before the end")
            );
        }
    }

    /// The name of the top-level pipeline this element is in.
    fn pipeline_name(&self) -> String {
        let mut obj: gst::Object = self.obj().clone().upcast();
        while let Some(parent) = obj.parent() {
            obj = parent;
        }
        obj.name().to_string()
    }

    /// The counters (published, dropped), live while running.
    fn counts(&self) -> (u64, u64) {
        if let Some(p) = &lock(&self.state).publisher {
            return (
                p.stats().published.load(Ordering::SeqCst),
                p.stats().dropped.load(Ordering::SeqCst),
            );
        }
        *lock(&self.counts)
    }

    /// Posts what the publisher reports.
    fn notice(&self, n: Notice) {
        match n {
            Notice::Dropped(total) => gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("The destination is not keeping up: {total} record(s) dropped so far")
            ),
            Notice::ConnectionLost(why) => gst::element_imp_warning!(
                self,
                gst::ResourceError::OpenWrite,
                ("Connection lost: {why}")
            ),
            Notice::Reconnected => {
                gst::info!(CAT, imp = self, "reconnected");
                let s = gst::Structure::builder("emotionpublish-reconnected").build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
            }
            Notice::Fatal(why) => gst::element_imp_error!(
                self,
                gst::ResourceError::OpenWrite,
                ("{why}"),
                ["check the broker address, credentials and TLS files"]
            ),
        }
    }
}
