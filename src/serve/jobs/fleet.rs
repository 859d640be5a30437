//! Jobs shared by several `serve` replicas through Redis (`--jobs-store redis://…`).
//!
//! - Each job's record is the JSON string `gst-emotion:job:ID`; its state changes with a
//!   compare-and-set script (a state moves on only from the states it may come from),
//!   so a cancel and a start never both win.
//! - The queue is the stream `gst-emotion:jobs` (one entry per job, field `id`) read by
//!   the consumer group `runners`: a replica takes an entry with `XREADGROUP`, keeps it
//!   while the job runs (a heartbeat re-claims it, resetting its idle time), and
//!   acknowledges and deletes it once the job's results are written and its record says
//!   so. An entry idle longer than `--claim-after` belongs to a replica that died: the
//!   next replica with a free pipeline takes it over with `XAUTOCLAIM` and runs the job
//!   again from the start. A replica that finds it lost an entry stops that analysis.
//! - A cancel is the key `gst-emotion:job:ID:cancel`, which the running replica reads
//!   at every heartbeat.
//! - Finished jobs are counted in the hash `gst-emotion:finished` (by state), by the
//!   same script that takes them off the queue, and only by the replica whose
//!   acknowledgement counted.
//!
//! Job files (uploads, partial and final results, credentials) stay in `--state-dir`,
//! which replicas must share (a network file system); credentials never go to Redis.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamInfoGroupsReply, StreamReadReply};

use super::{JobRecord, JobState};
use crate::serve::error::ApiError;

const STREAM: &str = "gst-emotion:jobs";
const GROUP: &str = "runners";
const FINISHED: &str = "gst-emotion:finished";

fn record_key(id: &str) -> String {
    format!("gst-emotion:job:{id}")
}

fn cancel_key(id: &str) -> String {
    format!("gst-emotion:job:{id}:cancel")
}

/// Replaces a record only while its state is one of `ARGV[2..]`: 1 replaced, 0 in
/// another state, -1 no such record.
const SET_IF_STATE: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local state = cjson.decode(cur)['state']
for i = 2, #ARGV do
  if ARGV[i] == state then
    redis.call('SET', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
";

/// Resets the idle time of entry `ARGV[3]` if consumer `ARGV[2]` still holds it: 1 held,
/// 0 lost (taken over or gone).
const HEARTBEAT: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 1 and p[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0
";

/// Acknowledges and deletes entry `ARGV[2]` of group `ARGV[1]`; if it was pending
/// (acknowledged now), counts a job that ended in state `ARGV[3]` (unless empty).
const FINISH: &str = r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if acked == 1 and ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
end
return acked
";

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The `--jobs-store` value is not a Redis URL.
    #[error("--jobs-store: {0} (expected redis://HOST:PORT[/DB])")]
    Address(String),
    /// Redis did not answer in time.
    #[error("the job store at {0} did not answer in time")]
    Timeout(String),
    /// Redis answered with an error, or the connection failed.
    #[error("the job store at {at}: {source}")]
    Redis {
        /// Where (without credentials).
        at: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// A record in Redis that is not a job record.
    #[error("job {0}: the record in the job store cannot be read")]
    Record(String),
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        ApiError::store_unavailable(format!("{e}; retry later"), 5)
    }
}

/// An entry of the queue taken by this replica.
#[derive(Clone, Debug)]
pub struct Taken {
    /// The stream entry's id.
    pub entry: String,
    /// The job's id.
    pub job: String,
    /// Whether it was taken over from a replica that stopped answering.
    pub taken_over: bool,
}

/// How a replica reaches the shared job store.
pub struct Fleet {
    client: redis::Client,
    at: String,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// This replica's consumer name in the group (host, process, start time).
    pub consumer: String,
    /// An entry idle this long is taken over.
    pub claim_after: Duration,
    set_if_state: redis::Script,
    heartbeat: redis::Script,
    finish: redis::Script,
}

impl Fleet {
    /// The store at `url` (parsed here, once; no connection is made yet).
    pub fn new(url: &str, claim_after: Duration) -> Result<Self, FleetError> {
        if !url.starts_with("redis://") {
            return Err(FleetError::Address("not a redis:// URL".into()));
        }
        let client = redis::Client::open(url).map_err(|e| FleetError::Address(e.to_string()))?;
        let info = client.get_connection_info();
        let at = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        let host: String = std::env::var("HOSTNAME")
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .take(64)
            .collect();
        let host = if host.is_empty() {
            "replica".into()
        } else {
            host
        };
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ok(Self {
            client,
            at,
            conn: tokio::sync::Mutex::new(None),
            consumer: format!("{host}-{}-{started}", std::process::id()),
            claim_after,
            set_if_state: redis::Script::new(SET_IF_STATE),
            heartbeat: redis::Script::new(HEARTBEAT),
            finish: redis::Script::new(FINISH),
        })
    }

    /// Where the store is, without credentials.
    pub fn address(&self) -> &str {
        &self.at
    }

    fn fail(&self, source: redis::RedisError) -> FleetError {
        if source.is_timeout() {
            FleetError::Timeout(self.at.clone())
        } else {
            FleetError::Redis {
                at: self.at.clone(),
                source,
            }
        }
    }

    /// A new connection (reconnecting by itself), the queue's group made if missing.
    /// `answer_within` bounds each command (longer for blocking reads).
    pub async fn connect(&self, answer_within: Duration) -> Result<ConnectionManager, FleetError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(answer_within))
            .set_number_of_retries(1);
        let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
        let mut conn = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| FleetError::Timeout(self.at.clone()))?
            .map_err(|e| self.fail(e))?;
        let made: redis::RedisResult<()> = conn.xgroup_create_mkstream(STREAM, GROUP, "0").await;
        match made {
            Err(e) if e.code() != Some("BUSYGROUP") => return Err(self.fail(e)),
            _ => {}
        }
        Ok(conn)
    }

    /// The shared connection for requests (made on first use, kept after).
    async fn conn(&self) -> Result<ConnectionManager, FleetError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = &*guard {
            return Ok(c.clone());
        }
        let c = self.connect(Duration::from_secs(3)).await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// The record of job `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, FleetError> {
        let text: Option<String> = self
            .conn()
            .await?
            .get(record_key(id))
            .await
            .map_err(|e| self.fail(e))?;
        text.map(|t| serde_json::from_str(&t).map_err(|_| FleetError::Record(id.into())))
            .transpose()
    }

    /// Records a new job and queues it.
    pub async fn submit(&self, record: &JobRecord) -> Result<(), FleetError> {
        let mut c = self.conn().await?;
        let text = serde_json::to_string(record).unwrap_or_default();
        let () = c
            .set(record_key(&record.id), text)
            .await
            .map_err(|e| self.fail(e))?;
        let _: String = c
            .xadd(STREAM, "*", &[("id", record.id.as_str())])
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Replaces job `record.id`'s record if its state is one of `from`; whether it was.
    pub async fn set_if(&self, record: &JobRecord, from: &[JobState]) -> Result<bool, FleetError> {
        let mut c = self.conn().await?;
        let mut call = self.set_if_state.key(record_key(&record.id));
        call.arg(serde_json::to_string(record).unwrap_or_default());
        for s in from {
            call.arg(s.as_str());
        }
        let replaced: i64 = call.invoke_async(&mut c).await.map_err(|e| self.fail(e))?;
        Ok(replaced == 1)
    }

    /// Asks whoever runs job `id` to stop it.
    pub async fn request_cancel(&self, id: &str) -> Result<(), FleetError> {
        let () = self
            .conn()
            .await?
            .set_ex(cancel_key(id), 1, 7 * 24 * 3600)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Whether job `id` was asked to stop.
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, FleetError> {
        let n: i64 = self
            .conn()
            .await?
            .exists(cancel_key(id))
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n > 0)
    }

    /// The next job for this replica on `conn` (its own connection: this blocks up to
    /// a second): first one a dead replica left, else a new one; `None` when none came.
    pub async fn take(&self, conn: &mut ConnectionManager) -> Result<Option<Taken>, FleetError> {
        let idle = self.claim_after.as_millis() as u64;
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(idle)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await
            .map_err(|e| self.fail(e))?;
        if let Some(e) = claimed.claimed.first() {
            return Ok(Some(Taken {
                entry: e.id.clone(),
                job: e.get("id").unwrap_or_default(),
                taken_over: true,
            }));
        }
        let read: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query_async(conn)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(read
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().next())
            .map(|e| Taken {
                job: e.get("id").unwrap_or_default(),
                entry: e.id,
                taken_over: false,
            }))
    }

    /// Keeps `taken` this replica's; false when another replica took it over.
    pub async fn heartbeat(&self, taken: &Taken) -> Result<bool, FleetError> {
        let mut c = self.conn().await?;
        let held: i64 = self
            .heartbeat
            .key(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(&taken.entry)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(held == 1)
    }

    /// Done with `taken`: acknowledged and removed from the queue and, if this
    /// acknowledged it (a retry or a replica that lost it does not), counted as a job
    /// that ended in `state` — one script, so the counts never see a job twice or not
    /// at all.
    pub async fn finish(&self, taken: &Taken, state: Option<JobState>) -> Result<(), FleetError> {
        let mut c = self.conn().await?;
        let _: i64 = self
            .finish
            .key(STREAM)
            .key(FINISHED)
            .arg(GROUP)
            .arg(&taken.entry)
            .arg(state.map_or("", JobState::as_str))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Puts job `taken.job` back at the end of the queue (this replica is stopping).
    pub async fn requeue(&self, taken: &Taken) -> Result<(), FleetError> {
        let mut c = self.conn().await?;
        let () = redis::pipe()
            .atomic()
            .xadd(STREAM, "*", &[("id", taken.job.as_str())])
            .ignore()
            .xack(STREAM, GROUP, &[&taken.entry])
            .ignore()
            .xdel(STREAM, &[&taken.entry])
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Jobs waiting (accepted, not taken) and running (taken, not finished), over every
    /// replica.
    pub async fn queue_counts(&self) -> Result<(u64, u64), FleetError> {
        let mut c = self.conn().await?;
        let len: u64 = c.xlen(STREAM).await.map_err(|e| self.fail(e))?;
        let groups: StreamInfoGroupsReply =
            c.xinfo_groups(STREAM).await.map_err(|e| self.fail(e))?;
        let running = groups
            .groups
            .iter()
            .find(|g| g.name == GROUP)
            .map_or(0, |g| g.pending as u64);
        // Acknowledged entries are deleted: the stream holds exactly the waiting and
        // the running ones.
        Ok((len.saturating_sub(running), running))
    }

    /// Finished jobs by state, as counted since the store began.
    pub async fn finished_counts(&self) -> Result<Vec<(String, u64)>, FleetError> {
        let counts: std::collections::HashMap<String, u64> = self
            .conn()
            .await?
            .hgetall(FINISHED)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(counts.into_iter().collect())
    }
}
