//! `serve` replicas sharing one job queue through Redis (`--jobs-store`): Debian's
//! redis-server and the replicas run on loopback with one shared state folder, as
//! pods would with a network volume. A replica is killed (SIGKILL) mid-job and
//! another takes the job over; a new replica joins; events, results and cancels work
//! from any replica; with Redis down the job endpoints answer 503 while /invocations
//! goes on.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::serve::*;
use common::*;
use serde_json::{Value, json};

fn replica_args(redis: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--jobs-store",
        redis,
        "--claim-after",
        "3",
        "--max-concurrent",
        "1",
        "--allow-dir",
        &media_dir().display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(FAST_WINDOWS.map(String::from));
    args
}

fn start_replica(state: &std::path::Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(state, &args, &[])
}

/// A 20 s clip: long enough to be caught running.
fn long_clip() -> std::path::PathBuf {
    spoken_clip(
        "fleet-long",
        "We walked along the river all afternoon and talked about the summer.",
        600,
    )
}

fn submit(s: &Server, clip: &std::path::Path) -> String {
    let r = post_json(s, "/v1/jobs", &json!({"video_path": clip}));
    assert_eq!(r.status(), 202, "{}", s.log());
    r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A metric's value in `/metrics` text (the first line that starts with `name`).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The window indices of a finished job's results.jsonl, as served by `s`.
fn result_indices(s: &Server, id: &str) -> Vec<u64> {
    let text = client()
        .get(s.url(&format!("/v1/jobs/{id}/results.jsonl")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// What `gst-emotion analyze` writes as JSON Lines for `clip` with the replicas'
/// window settings (cached per clip).
fn analyzed(clip: &std::path::Path) -> String {
    let stem = clip.file_stem().unwrap().to_string_lossy().to_string();
    let out = fixture_dir().join(format!("fleet-analyze-{stem}"));
    if !out.exists() {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gst-emotion"));
        cmd.arg("analyze").arg(clip).arg("--out").arg(&out);
        cmd.args(["--window-mode", "sliding", "--set", "window-length=1"]);
        cmd.args(["--set", "window-hop=1", "--set", "asr=false"]);
        run_ok(&mut cmd);
    }
    let jsonl = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap_or_else(|| panic!("no JSON Lines in {}", out.display()));
    std::fs::read_to_string(jsonl).unwrap()
}

#[test]
fn replicas_share_one_queue_and_take_over_a_killed_replicas_job() {
    let redis = Redis::start(free_port());
    let state = state_dir("fleet");
    let args = replica_args(&redis.url());
    let (long, short) = (long_clip(), happy_clip());
    let mut replicas: Vec<Server> = (0..3).map(|_| start_replica(&state, &args)).collect();

    // Six jobs, accepted by the three replicas in turn (one as an upload).
    let mut ids = Vec::new();
    for k in 0..6 {
        let s = &replicas[k % 3];
        let clip = if k < 3 { &long } else { &short };
        if k == 5 {
            let r = client()
                .post(s.url("/v1/jobs"))
                .header("Content-Type", "application/octet-stream")
                .body(std::fs::read(clip).unwrap())
                .send()
                .unwrap();
            assert_eq!(r.status(), 202);
            ids.push(
                r.json::<Value>().unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        } else {
            ids.push(submit(s, clip));
        }
    }
    // Three pipelines for six jobs: the fleet sees jobs waiting, from any replica.
    let text = replicas[2].get_text("/metrics");
    assert!(
        metric(&text, "gst_emotion_jobs_waiting").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "gst_emotion_job_store_up"), Some(1.0));
    // Any replica answers for any job.
    for s in &replicas {
        for id in &ids {
            let v = s.get_json(&format!("/v1/jobs/{id}"));
            assert_eq!(v["id"], json!(id), "{v}");
        }
    }

    // The replica running a long job is killed.
    let mut victim = None;
    wait_for("a long job running", Duration::from_secs(120), || {
        victim = ids[..3].iter().find_map(|id| {
            let v = replicas[0].get_json(&format!("/v1/jobs/{id}"));
            let replica = v["replica"].as_str()?.to_string();
            (v["state"] == "running").then(|| (id.clone(), replica))
        });
        victim.is_some()
    });
    let (victim, was_on) = victim.unwrap();
    let k = replicas
        .iter()
        .position(|s| was_on.contains(&format!("-{}-", s.pid())))
        .unwrap_or_else(|| panic!("no replica is {was_on}"));
    let mut killed = replicas.remove(k);
    killed.kill();
    // A new replica joins the fleet.
    replicas.push(start_replica(&state, &args));

    for (n, id) in ids.iter().enumerate() {
        let s = &replicas[n % replicas.len()];
        let v = s.wait_for(&format!("/v1/jobs/{id}"), Duration::from_secs(300), |v| {
            v["state"] != "queued" && v["state"] != "running"
        });
        assert_eq!(v["state"], "done", "{v:#}");
        assert_eq!(
            v["progress"].as_f64().map(|p| p > 0.99),
            Some(true),
            "{v:#}"
        );
    }
    let taken_over = replicas[0].get_json(&format!("/v1/jobs/{victim}"));
    assert_ne!(taken_over["replica"], json!(was_on), "{taken_over}");
    let logs: String = replicas.iter().map(Server::log).collect();
    assert_eq!(
        logs.matches(&format!("job {victim} taken over")).count(),
        1,
        "{logs}"
    );
    // Every job's windows once each, from the first to the last; the long ones alike
    // (the job taken over was run again from its start).
    let mut long_counts = BTreeSet::new();
    for (n, id) in ids.iter().enumerate() {
        let got = result_indices(&replicas[(n + 1) % replicas.len()], id);
        assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>(), "job {id}");
        assert!(!got.is_empty());
        if n < 3 {
            long_counts.insert(got.len());
        }
    }
    assert_eq!(long_counts.len(), 1, "{long_counts:?}");
    // One result set each, identical to `analyze` on the same file and settings.
    for (n, id) in ids.iter().enumerate() {
        let clip = if n < 3 { &long } else { &short };
        let served = client()
            .get(replicas[n % replicas.len()].url(&format!("/v1/jobs/{id}/results.jsonl")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(served, analyzed(clip), "job {id} ({})", clip.display());
    }
    // Each job counted once, over the fleet.
    let text = replicas[1].get_text("/metrics");
    assert_eq!(
        metric(&text, "gst_emotion_jobs{state=\"done\"}"),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "gst_emotion_jobs_waiting"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "gst_emotion_jobs{state=\"running\"}"),
        Some(0.0)
    );

    // Three jobs at once for three replicas of one pipeline each: the one that joined
    // takes one of them. Events of the first from every replica, whichever runs it.
    let batch: Vec<String> = (0..3).map(|k| submit(&replicas[k], &long)).collect();
    let id = batch[0].clone();
    let readers: Vec<_> = replicas
        .iter()
        .map(|s| {
            let url = s.url(&format!("/v1/jobs/{id}/events"));
            std::thread::spawn(move || {
                let mut text = String::new();
                client()
                    .get(url)
                    .send()
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                text
            })
        })
        .collect();
    let events: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let windows = result_indices(&replicas[2], &id).len();
    let joined = format!("-{}-", replicas[2].pid());
    let ran_on: Vec<String> = batch
        .iter()
        .map(|id| {
            let v =
                replicas[0].wait_for(&format!("/v1/jobs/{id}"), Duration::from_secs(120), |v| {
                    v["state"] == "done"
                });
            v["replica"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        ran_on.iter().any(|r| r.contains(&joined)),
        "{ran_on:?} {joined}"
    );
    for text in &events {
        assert_eq!(text.matches("event: window").count(), windows, "{text}");
        assert!(text.contains("event: end"), "{text}");
    }

    // A cancel through one replica stops the job wherever it runs.
    let id = submit(&replicas[0], &long);
    wait_for("the job to start", Duration::from_secs(60), || {
        replicas[2].get_json(&format!("/v1/jobs/{id}"))["state"] == "running"
    });
    let r = client()
        .delete(replicas[1].url(&format!("/v1/jobs/{id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let v = replicas[2].wait_for(&format!("/v1/jobs/{id}"), Duration::from_secs(20), |v| {
        v["state"] != "running"
    });
    assert_eq!(v["state"], "cancelled", "{v}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Nothing was left in the queue.
    assert_eq!(redis.cli(&["XLEN", "gst-emotion:jobs"]).trim(), "0");
}

#[test]
fn jobs_answer_503_while_redis_is_down_and_invocations_go_on() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let state = state_dir("fleet-down");
    let args = replica_args(&url);
    let clip = happy_clip();
    // Started before Redis: ready all the same.
    let s = start_replica(&state, &args);
    let refused = |s: &Server| {
        let r = post_json(s, "/v1/jobs", &json!({"video_path": clip}));
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let v: Value = r.json().unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("job store"))
                && v["error"]["code"] == "job_store_unavailable",
            "{v}"
        );
    };
    refused(&s);
    let text = s.get_text("/metrics");
    assert_eq!(
        metric(&text, "gst_emotion_job_store_up"),
        Some(0.0),
        "{text}"
    );
    let invocations = |s: &Server| {
        let r = post_json(s, "/invocations", &json!({"video_path": clip}));
        assert_eq!(r.status(), 200, "{}", s.log());
    };
    invocations(&s);

    // Redis comes: jobs are taken.
    let mut redis = Redis::start(port);
    let mut id = None;
    wait_for("a job accepted", Duration::from_secs(30), || {
        let r = post_json(&s, "/v1/jobs", &json!({"video_path": clip}));
        if r.status() == 202 {
            id = r.json::<Value>().unwrap()["id"].as_str().map(String::from);
        }
        id.is_some()
    });
    let id = id.unwrap();
    let v = s.wait_for(&format!("/v1/jobs/{id}"), Duration::from_secs(120), |v| {
        v["state"] == "done"
    });
    assert_eq!(v["windows"].as_u64().map(|n| n > 0), Some(true), "{v}");

    // Redis goes: the job endpoints say so, quickly; the rest goes on.
    redis.stop();
    let asked = Instant::now();
    let r = client()
        .get(s.url(&format!("/v1/jobs/{id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(asked.elapsed() < Duration::from_secs(15));
    refused(&s);
    invocations(&s);
    assert_eq!(client().get(s.url("/ping")).send().unwrap().status(), 200);
}
