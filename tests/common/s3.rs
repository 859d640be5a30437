//! moto's S3-compatible server (`pip moto[server]`, scripts/setup) on a free loopback
//! port, stopped when dropped; boto3 (moto's own dependency) makes buckets and reads
//! what the product wrote.

use std::process::{Child, Command, Stdio};

use super::{free_port, python};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto on a free port with `buckets` made (waits until it answers).
    pub fn start(buckets: &[&str]) -> Moto {
        let port = free_port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's S3 server (pip moto[server], scripts/setup)");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let make = buckets
            .iter()
            .map(|b| format!("s3.create_bucket(Bucket='{b}')\n"))
            .collect::<String>();
        moto.boto3(&format!(
            "import time\n\
             for _ in range(100):\n\
             \x20   try:\n\
             \x20       s3.list_buckets(); break\n\
             \x20   except Exception: time.sleep(0.2)\n\
             {make}"
        ));
        moto
    }

    /// The environment a client needs to reach this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// Runs Python `code` with `s3`, a boto3 client of this server, defined; returns
    /// what it printed.
    pub fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import boto3\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
             \x20   aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             {code}",
            self.endpoint
        );
        let out = Command::new(python())
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 against moto failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Turns on versioning for `bucket`: every write of an object is then counted.
    pub fn keep_versions(&self, bucket: &str) {
        self.boto3(&format!(
            "s3.put_bucket_versioning(Bucket='{bucket}', \
             VersioningConfiguration={{'Status': 'Enabled'}})"
        ));
    }

    /// Every object of `bucket` (see [`Moto::keep_versions`]): key → how many times it
    /// was written.
    pub fn objects(&self, bucket: &str) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        let listing = self.boto3(&format!(
            "for page in s3.get_paginator('list_object_versions').paginate(Bucket='{bucket}'):\n\
             \x20   for o in page.get('Versions', []):\n\
             \x20       print(o['Key'])\n"
        ));
        for key in listing.lines() {
            *out.entry(key.to_string()).or_insert(0) += 1;
        }
        out
    }

    /// The contents of `bucket/key`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let hex = self.boto3(&format!(
            "print(s3.get_object(Bucket='{bucket}', Key='{key}')['Body'].read().hex())"
        ));
        (0..hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Uploads the file `path` to `bucket/key`.
    pub fn put_file(&self, path: &std::path::Path, bucket: &str, key: &str) {
        self.boto3(&format!(
            "s3.upload_file('{}', '{bucket}', '{key}')",
            path.display()
        ));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
