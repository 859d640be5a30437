//! Records to an MQTT broker (rumqttc): one thread runs the connection (reconnecting
//! with backoff), another hands queued records to it while it is connected, so the
//! publisher's own queue is the only buffer that grows while the broker is away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rumqttc::{
    Client, ClientError, Event, Incoming, MqttOptions, Outgoing, QoS, TlsConfiguration, Transport,
};

use super::PublishError;
use super::{MqttConfig, Notice, Queue, Stats};

/// Reads the TLS files, then starts the connection and feeder threads.
pub(super) fn start(
    config: &MqttConfig,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    notify: Arc<dyn Fn(Notice) + Send + Sync>,
) -> Result<Vec<JoinHandle<()>>, PublishError> {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options.set_keep_alive(Duration::from_secs(10));
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &config.credentials {
        options.set_credentials(user, password);
    }
    if let Some(tls) = &config.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| PublishError::Io(format!("cannot read {}: {e}", p.display())))
        };
        let client_auth = match &tls.client {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca: read(&tls.ca)?,
            alpn: None,
            client_auth,
        }));
    }
    let qos = if config.qos >= 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let (client, connection) = Client::new(options, 16);
    let connected = Arc::new(AtomicBool::new(false));
    let events = {
        let (queue, stats, connected, config) = (
            queue.clone(),
            stats.clone(),
            connected.clone(),
            config.clone(),
        );
        std::thread::Builder::new()
            .name("emotion-mqtt".into())
            .spawn(move || {
                run_connection(connection, &config, &queue, &stats, &connected, &*notify)
            })
            .map_err(|e| PublishError::Thread(format!("cannot start the MQTT thread: {e}")))?
    };
    let topic = config.topic.clone();
    let feeder = std::thread::Builder::new()
        .name("emotion-mqtt-feed".into())
        .spawn(move || feed(&client, &topic, qos, &queue, &connected, &stats))
        .map_err(|e| PublishError::Thread(format!("cannot start the MQTT thread: {e}")))?;
    Ok(vec![feeder, events])
}

/// Hands records to the connection while it is up; at the end, waits until what it
/// handed over is published (sent at QoS 0, acknowledged at QoS 1), then disconnects.
fn feed(
    client: &Client,
    topic: &str,
    qos: QoS,
    queue: &Queue,
    connected: &AtomicBool,
    stats: &Stats,
) {
    let mut handed = 0u64;
    while !queue.finished() {
        if !connected.load(Ordering::SeqCst) {
            queue.sleep(Duration::from_millis(50));
            continue;
        }
        let Some(record) = queue.next(Duration::from_millis(200)) else {
            continue;
        };
        match client.try_publish(topic, qos, false, record.into_bytes()) {
            Ok(()) => handed += 1,
            Err(ClientError::TryRequest(req)) => {
                // The connection's channel is full: put the record back and wait.
                if let rumqttc::Request::Publish(p) = req {
                    queue.unget(String::from_utf8_lossy(&p.payload).into_owned());
                }
                queue.sleep(Duration::from_millis(20));
            }
            Err(_) => break,
        }
    }
    while stats.published.load(Ordering::SeqCst) < handed
        && connected.load(Ordering::SeqCst)
        && !queue.abort.load(Ordering::SeqCst)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = client.try_disconnect();
}

/// Drives the connection: counts what was published, reconnects with backoff, gives
/// up on a first connection that fails `max_connect_attempts` times.
fn run_connection(
    mut connection: rumqttc::Connection,
    config: &MqttConfig,
    queue: &Queue,
    stats: &Stats,
    connected: &AtomicBool,
    notify: &(dyn Fn(Notice) + Send + Sync),
) {
    let mut ever_connected = false;
    let mut failures = 0u32;
    let mut lost = false;
    let mut backoff = Duration::from_secs(1);
    for event in connection.iter() {
        if queue.abort.load(Ordering::SeqCst) {
            break;
        }
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                connected.store(true, Ordering::SeqCst);
                ever_connected = true;
                failures = 0;
                backoff = Duration::from_secs(1);
                if lost {
                    lost = false;
                    notify(Notice::Reconnected);
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) if config.qos == 0 => {
                stats.published.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Event::Incoming(Incoming::PubAck(_))) => {
                stats.published.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                connected.store(false, Ordering::SeqCst);
                failures += 1;
                if !ever_connected
                    && config.max_connect_attempts > 0
                    && failures >= config.max_connect_attempts
                {
                    notify(Notice::Fatal(format!(
                        "cannot connect to the MQTT broker {}:{} ({failures} attempt(s)): {e}",
                        config.host, config.port
                    )));
                    queue.abort.store(true, Ordering::SeqCst);
                    break;
                }
                if !lost {
                    lost = true;
                    notify(Notice::ConnectionLost(format!(
                        "MQTT broker {}:{}: {e}; retrying",
                        config.host, config.port
                    )));
                }
                queue.sleep(backoff);
                backoff =
                    (backoff * 2).min(config.max_reconnect_interval.max(Duration::from_secs(1)));
            }
        }
    }
    connected.store(false, Ordering::SeqCst);
}
