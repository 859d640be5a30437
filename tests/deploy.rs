//! The deployment files say what the binary does: every Kubernetes manifest in
//! deploy/kubernetes parses, its gst-emotion command lines use only options the
//! subcommand has, its shard counts match the replicas or completions, its probes and
//! ports are the server's, its autoscaling metric is one the server exports; the
//! SageMaker Dockerfile runs `serve` on the port and with the model folder the binary
//! uses.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::serve::{Server, client, state_dir};
use serde::Deserialize;
use serde_yaml::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every document of every manifest, with the file it came from.
fn manifests() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("kubernetes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            for key in ["apiVersion", "kind"] {
                assert!(doc[key].is_string(), "{name}: no {key}");
            }
            assert!(
                doc["metadata"]["name"].is_string(),
                "{name}: no metadata.name"
            );
            docs.push((name.clone(), doc));
        }
    }
    docs
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// The gst-emotion arguments a container runs (after `gst-emotion`), whether given
/// as `args` to the image's entry point or as a `/bin/sh -c` script.
fn command_line(container: &Value) -> Vec<String> {
    let list = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| s.iter().map(text).collect())
            .unwrap_or_default()
    };
    let (command, args) = (list(&container["command"]), list(&container["args"]));
    if command.first().is_some_and(|c| c.ends_with("sh")) {
        let script = args.join(" ");
        let words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
        let at = words
            .iter()
            .position(|w| w == "gst-emotion")
            .unwrap_or_else(|| panic!("no gst-emotion in {script}"));
        return words[at + 1..].to_vec();
    }
    assert!(command.is_empty(), "the image's entry point is gst-emotion");
    args
}

/// What `gst-emotion SUBCOMMAND --help` prints.
fn help(subcommand: &str) -> String {
    let out = common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_gst-emotion")).args([subcommand, "--help"]),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The workloads (pod templates) with their kind, name and replica count (replicas,
/// or a Job's completions).
fn workloads(docs: &[(String, Value)]) -> Vec<(String, &Value, Option<u64>)> {
    docs.iter()
        .filter(|(_, d)| {
            ["Job", "StatefulSet", "Deployment"].contains(&d["kind"].as_str().unwrap())
        })
        .map(|(file, d)| {
            let kind = d["kind"].as_str().unwrap();
            let count = if kind == "Job" {
                let c = d["spec"]["completions"].as_u64();
                assert_eq!(c, d["spec"]["parallelism"].as_u64(), "{file}");
                c
            } else {
                d["spec"]["replicas"].as_u64()
            };
            (format!("{file}: {kind}"), d, count)
        })
        .collect()
}

#[test]
fn kubernetes_manifests_run_what_the_binary_offers() {
    let docs = manifests();
    let work = workloads(&docs);
    let kinds: Vec<&str> = work.iter().map(|(n, ..)| n.as_str()).collect();
    for wanted in [
        "analyze-job.yaml: Job",
        "watch.yaml: StatefulSet",
        "serve.yaml: Deployment",
    ] {
        assert!(kinds.contains(&wanted), "{kinds:?}");
    }
    let mut helps = BTreeMap::new();
    for (name, doc, count) in &work {
        let spec = &doc["spec"]["template"]["spec"];
        for container in spec["containers"].as_sequence().unwrap() {
            // Other images (the job store's Redis) run their own programs.
            if !text(&container["image"]).contains("gst-emotion") {
                continue;
            }
            let line = command_line(container);
            let sub = line
                .first()
                .unwrap_or_else(|| panic!("{name}: no subcommand"));
            let help = helps.entry(sub.clone()).or_insert_with(|| help(sub));
            for option in line.iter().filter(|w| w.starts_with("--")) {
                let option = option.split('=').next().unwrap();
                assert!(
                    help.contains(&format!("{option} ")) || help.contains(&format!("{option}\n")),
                    "{name}: gst-emotion {sub} has no {option}"
                );
            }
            // $(VAR) in args is Kubernetes' expansion: VAR must be in env.
            let env: Vec<String> = container["env"]
                .as_sequence()
                .map(|e| e.iter().map(|v| text(&v["name"])).collect())
                .unwrap_or_default();
            for word in &line {
                if let Some(var) = word.split("$(").nth(1).and_then(|r| r.split(')').next()) {
                    assert!(
                        env.contains(&var.to_string()),
                        "{name}: $({var}) is not set"
                    );
                }
            }
            if let Some(at) = line.iter().position(|w| w == "--shard") {
                let shard = &line[at + 1];
                let (index, n) = shard.split_once('/').unwrap();
                assert_eq!(
                    n.parse::<u64>().ok(),
                    *count,
                    "{name}: --shard {shard} against {count:?} pods"
                );
                let kind = doc["kind"].as_str().unwrap();
                let expected = match kind {
                    "Job" => "${JOB_COMPLETION_INDEX}",
                    _ => "$(POD_INDEX)",
                };
                assert_eq!(index, expected, "{name}");
                if kind == "Job" {
                    assert_eq!(doc["spec"]["completionMode"], "Indexed", "{name}");
                } else {
                    let from = &container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"];
                    assert_eq!(
                        from, "metadata.labels['apps.kubernetes.io/pod-index']",
                        "{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_served_port_probes_and_autoscaling_metric_are_the_servers() {
    let docs = manifests();
    let serve_help = help("serve");
    let port: u64 = serve_help
        .split("[default: 0.0.0.0:")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|p| p.parse().ok())
        .expect("serve's default port in --help");
    let s = Server::start(&state_dir("deploy"), &[], &[]);
    let metrics = s.get_text("/metrics");
    let mut checked = 0;
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap();
        if kind == "HorizontalPodAutoscaler" {
            let target = &doc["spec"]["scaleTargetRef"];
            assert!(
                docs.iter()
                    .any(|(_, d)| d["kind"] == target["kind"]
                        && d["metadata"]["name"] == target["name"]),
                "{file}: it scales nothing defined here: {target:?}"
            );
            for m in doc["spec"]["metrics"].as_sequence().unwrap() {
                // `type: Pods` reads `pods:`, `type: External` reads `external:`.
                let source = text(&m["type"]).to_lowercase();
                let name = text(&m[source.as_str()]["metric"]["name"]);
                assert!(
                    metrics.lines().any(|l| l.starts_with(&format!("{name} "))),
                    "{file}: the server exports no {name}:\n{metrics}"
                );
                checked += 1;
            }
        }
        let template = &doc["spec"]["template"];
        let Some(containers) = template["spec"]["containers"].as_sequence() else {
            continue;
        };
        for c in containers {
            if command_line(c).first().map(String::as_str) != Some("serve") {
                continue;
            }
            assert_eq!(
                c["ports"][0]["containerPort"].as_u64(),
                Some(port),
                "{file}"
            );
            for probe in ["readinessProbe", "livenessProbe"] {
                assert_eq!(c[probe]["httpGet"]["path"], "/ping", "{file}: {probe}");
                assert_eq!(c[probe]["httpGet"]["port"].as_u64(), Some(port), "{file}");
            }
            let notes = &template["metadata"]["annotations"];
            assert_eq!(
                text(&notes["prometheus.io/port"]),
                port.to_string(),
                "{file}"
            );
            assert_eq!(notes["prometheus.io/path"], "/metrics", "{file}");
            assert!(
                client()
                    .get(s.url("/ping"))
                    .send()
                    .unwrap()
                    .status()
                    .is_success()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "a serve container and an autoscaling metric");
}

/// The serve replicas share jobs: their --jobs-store is the Redis service the manifests
/// define, and their --state-dir a volume every replica can write.
#[test]
fn serve_replicas_share_a_job_store_and_a_state_volume_defined_here() {
    let docs = manifests();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .map(|(_, d)| d)
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let serve = find("Deployment", "gst-emotion");
    let pod = &serve["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let line = command_line(container);
    let option = |o: &str| {
        let at = line
            .iter()
            .position(|w| w == o)
            .unwrap_or_else(|| panic!("no {o}"));
        line[at + 1].clone()
    };
    let store = option("--jobs-store");
    let (host, port) = store
        .strip_prefix("redis://")
        .and_then(|a| a.split_once(':'))
        .unwrap_or_else(|| panic!("--jobs-store {store}"));
    let service = find("Service", host);
    assert_eq!(
        service["spec"]["ports"][0]["port"]
            .as_u64()
            .map(|p| p.to_string()),
        Some(port.to_string())
    );
    let app = &service["spec"]["selector"]["app"];
    let redis = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| d["spec"]["template"]["metadata"]["labels"]["app"] == *app)
        .expect("a workload behind the job store's service");
    assert!(text(&redis["spec"]["template"]["spec"]["containers"][0]["image"]).contains("redis"));
    // The state folder: a volume claim that every replica may write.
    let state = option("--state-dir");
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| text(&m["mountPath"]) == state)
        .expect("--state-dir is a mounted volume");
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let claim = find(
        "PersistentVolumeClaim",
        &text(&volume["persistentVolumeClaim"]["claimName"]),
    );
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteMany");
}

#[test]
fn the_sagemaker_image_serves_on_the_port_and_model_folder_the_binary_uses() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("sagemaker/Dockerfile")).unwrap();
    let last = |instruction: &str| {
        dockerfile
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{instruction} ")))
            .unwrap_or_else(|| panic!("no {instruction}"))
            .trim()
            .to_string()
    };
    assert_eq!(last("ENTRYPOINT"), r#"["gst-emotion"]"#);
    assert_eq!(last("CMD"), r#"["serve"]"#);
    let help = help("serve");
    assert!(
        help.contains(&format!("[default: 0.0.0.0:{}]", last("EXPOSE"))),
        "{help}"
    );
    // SageMaker puts the model in /opt/ml/model and may say so in SM_MODEL_DIR: the
    // binary looks in both (tests/bundle.rs serves from SM_MODEL_DIR).
    assert!(
        help.contains("SM_MODEL_DIR") && help.contains("/opt/ml/model"),
        "{help}"
    );
    assert!(
        dockerfile.contains(":/opt/ml/model"),
        "the run example mounts the model"
    );
    // The binary it copies is the one the build stage makes.
    assert!(dockerfile.contains("cargo build --release --bin gst-emotion"));
    assert!(dockerfile.contains("/src/target/release/gst-emotion /usr/local/bin/gst-emotion"));
}
