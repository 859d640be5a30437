//! `--publish` for `watch` and `analyze`: each window's record (src/publish/record.rs)
//! to an MQTT broker or a file as it finishes, through the same [`Publisher`] as the
//! `emotionpublish` element.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail};

use crate::output::WindowResult;
use crate::publish::{
    Destination, Notice, Publisher, TlsFiles, parse_target, read_password, record,
};

/// The publishing options shared by `watch` and `analyze`.
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// Publish each window's record as it finishes: mqtt://[user@]host[:port]/topic,
    /// mqtts://… (TLS, with --publish-ca-file), a file (.json: one array; otherwise
    /// JSON Lines) or - for stdout.
    #[arg(long, value_name = "TARGET")]
    pub publish: Option<String>,
    /// MQTT quality of service: 0 (at most once) or 1 (at least once).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub publish_qos: u8,
    /// File holding the MQTT password (never logged).
    #[arg(long, value_name = "FILE")]
    pub publish_password_file: Option<PathBuf>,
    /// TLS: CA certificate (PEM) of the broker.
    #[arg(long, value_name = "FILE")]
    pub publish_ca_file: Option<PathBuf>,
    /// TLS: client certificate (PEM), with --publish-key-file.
    #[arg(long, value_name = "FILE")]
    pub publish_cert_file: Option<PathBuf>,
    /// TLS: client private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub publish_key_file: Option<PathBuf>,
    /// Records kept while the broker is away; beyond this the oldest are dropped.
    #[arg(long, default_value_t = 1000)]
    pub publish_max_queued: usize,
}

impl PublishArgs {
    /// The publisher, when `--publish` was given; problems are reported on stderr.
    pub fn start(&self) -> anyhow::Result<Option<Publisher>> {
        let Some(target) = &self.publish else {
            return Ok(None);
        };
        let mut to = parse_target(target).map_err(|e| anyhow!("--publish {e}"))?;
        if let Destination::Mqtt(m) = &mut to {
            m.qos = self.publish_qos;
            if let Some(file) = &self.publish_password_file {
                let password = read_password(file).map_err(|e| anyhow!(e))?;
                let user = m.credentials.take().map(|c| c.0).unwrap_or_default();
                m.credentials = Some((user, password));
            }
            let client = match (&self.publish_cert_file, &self.publish_key_file) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                _ => bail!("--publish-cert-file and --publish-key-file go together"),
            };
            match (m.tls.is_some(), &self.publish_ca_file) {
                (true, Some(ca)) => {
                    m.tls = Some(TlsFiles {
                        ca: ca.clone(),
                        client,
                    })
                }
                (true, None) => bail!("mqtts:// needs --publish-ca-file"),
                (false, Some(_)) => bail!("--publish-ca-file needs an mqtts:// target"),
                (false, None) => {}
            }
        }
        let notify = Arc::new(|n: Notice| match n {
            Notice::Dropped(total) => {
                eprintln!("publish: destination not keeping up, {total} record(s) dropped")
            }
            Notice::ConnectionLost(why) => eprintln!("publish: connection lost: {why}"),
            Notice::Reconnected => eprintln!("publish: reconnected"),
            Notice::Fatal(why) => eprintln!("publish: {why}"),
        });
        Publisher::start(&to, self.publish_max_queued, notify)
            .map(Some)
            .map_err(|e| anyhow!("--publish: {e}"))
    }
}

/// Queues `window`'s record from `source`.
pub fn push(publisher: &Publisher, window: &WindowResult, source: &str) {
    publisher.push(record::record(window, source, SystemTime::now()).to_string());
}

/// Publishes what is queued (at most 10 s) and says what could not be.
pub fn finish(publisher: Publisher) {
    let done = publisher.finish(Duration::from_secs(10));
    if done.left > 0 || done.dropped > 0 {
        eprintln!(
            "publish: {} record(s) published, {} dropped, {} not sent before the end",
            done.published, done.dropped, done.left
        );
    }
}
