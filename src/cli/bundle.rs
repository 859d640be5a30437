//! `gst-emotion bundle check DIR` and `gst-emotion bundle pack DIR OUT.tar.gz`: a
//! bundle as a deployable artifact. `check` loads it as the element would (manifest,
//! files, checksums, labels against the model's outputs in a warm-up) and prints a
//! summary with a content digest; `pack` checks it, then writes a gzipped tar with the
//! bundle at the archive root (the layout SageMaker unpacks into `/opt/ml/model`) and
//! every file's SHA-256 in the packed manifest, verified whenever it is loaded.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Subcommand;

use crate::bundle::{Bundle, MANIFEST, file_sha256};
use crate::infer::{Model, ModelOptions};

/// `gst-emotion bundle` subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Load a bundle as the element would (manifest, files, checksums, warm-up) and
    /// print a summary and a content digest. Exit status 1 when it is not usable.
    Check {
        /// The bundle folder.
        dir: PathBuf,
        /// Device for the warm-up: auto, cpu, cuda, cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Check a bundle, then write it as OUT.tar.gz with the files at the archive root
    /// and their SHA-256 in the packed bundle.toml.
    Pack {
        /// The bundle folder.
        dir: PathBuf,
        /// The archive to write (e.g. model.tar.gz).
        out: PathBuf,
    },
}

/// Runs a `bundle` subcommand; returns the exit code.
pub fn run(cmd: BundleCommand) -> anyhow::Result<u8> {
    match cmd {
        BundleCommand::Check { dir, device } => match check(&dir, &device) {
            Ok(summary) => {
                print!("{summary}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("{}: not usable: {e:#}", dir.display());
                Ok(1)
            }
        },
        BundleCommand::Pack { dir, out } => {
            let summary = check(&dir, "cpu").with_context(|| format!("{}", dir.display()))?;
            print!("{summary}");
            let digest = pack(&dir, &out)?;
            println!("packed {} (content digest {digest})", out.display());
            Ok(0)
        }
    }
}

/// The bundle's files, relative, sorted (hidden files and the manifest excluded).
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("reading {}", dir.join(&rel).display()))?
        {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let path = rel.join(&name);
            let kind = e.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && path != Path::new(MANIFEST) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-256 over every file's path and digest: equal for equal bundle contents.
fn content_digest(dir: &Path, listed: &[(PathBuf, String)]) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let manifest = std::fs::read(dir.join(MANIFEST))?;
    h.update(MANIFEST.as_bytes());
    h.update(sha2::Sha256::digest(&manifest));
    for (path, digest) in listed {
        h.update(path.to_string_lossy().as_bytes());
        h.update(digest.as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads and warms up the bundle; returns a readable summary.
fn check(dir: &Path, device: &str) -> anyhow::Result<String> {
    gst::init()?;
    let bundle = Bundle::load(dir)?;
    let options = ModelOptions {
        device: device.parse().map_err(|e| anyhow!("--device: {e}"))?,
        always_warm_up: true,
        ..ModelOptions::default()
    };
    let model = Model::shared(dir, options)?;
    let m = &bundle.manifest;
    let mut s = format!(
        "bundle {} (format {}) in {}\n",
        m.name,
        m.format,
        dir.display()
    );
    if !m.description.is_empty() {
        s.push_str(&format!("  {}\n", m.description));
    }
    s.push_str(&format!(
        "  kind: {}\n",
        if bundle.is_fusion() {
            "late fusion"
        } else {
            "one TorchScript model"
        }
    ));
    for model in &m.models {
        s.push_str(&format!("  model {}: {}\n", model.name, model.file));
    }
    for (name, input) in &m.inputs {
        s.push_str(&format!("  input {name}: {}\n", describe(input)));
    }
    for h in &m.heads {
        s.push_str(&format!("  head {}: {}\n", h.name, h.labels.join(", ")));
    }
    s.push_str(&format!(
        "  window: {} s, hop {} s, min {} s\n",
        m.window.length, m.window.hop, m.window.min_length
    ));
    let mut listed = Vec::new();
    for f in files(dir)? {
        let digest = file_sha256(&dir.join(&f))?;
        listed.push((f, digest));
    }
    let verified = m.sha256.len();
    s.push_str(&format!(
        "  files: {} ({} with a checksum in the manifest, all verified)\n",
        listed.len(),
        verified
    ));
    s.push_str(&format!(
        "  warm-up on {:?}: every head gave one finite probability per label\n",
        model.device
    ));
    s.push_str(&format!(
        "  content digest: {}\n",
        content_digest(dir, &listed)?
    ));
    Ok(s)
}

/// One line about an input.
fn describe(input: &crate::bundle::InputSpec) -> String {
    use crate::bundle::{CropMode, InputSpec};
    match input {
        InputSpec::Video(v) => format!(
            "{} frames ({:?}), {}x{} {:?}, layout {:?}{}",
            v.frames,
            v.policy,
            v.width,
            v.height,
            v.channel_order,
            v.layout,
            if v.crop == CropMode::Face {
                ", face crops"
            } else {
                ""
            }
        )
        .to_lowercase(),
        InputSpec::Mel(m) => format!(
            "mel spectrogram, {} Hz, {} bands, n_fft {}, hop {}{}",
            m.sample_rate,
            m.n_mels,
            m.n_fft,
            m.hop_length,
            m.frames
                .map(|f| format!(", {f} frames"))
                .unwrap_or_default()
        ),
        InputSpec::TextIds => "token ids of the transcript".into(),
        InputSpec::TextMask => "attention mask of the transcript".into(),
    }
}

/// `text` with its `[sha256]` table replaced by `digests`.
fn with_checksums(text: &str, digests: &[(PathBuf, String)]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let header = line.trim_start().starts_with('[');
        if header {
            skipping = line.trim() == "[sha256]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let mut out = out.trim_end().to_string();
    out.push_str(
        "\n\n# SHA-256 of every file, checked when the bundle is loaded (bundle pack).\n[sha256]\n",
    );
    for (path, digest) in digests {
        out.push_str(&format!(
            "{} = \"{digest}\"\n",
            toml::Value::String(path.to_string_lossy().to_string())
        ));
    }
    out
}

/// Writes the archive; returns the packed bundle's content digest.
fn pack(dir: &Path, out: &Path) -> anyhow::Result<String> {
    let listed: Vec<(PathBuf, String)> = files(dir)?
        .into_iter()
        .map(|f| {
            let d = file_sha256(&dir.join(&f))?;
            Ok((f, d))
        })
        .collect::<anyhow::Result<_>>()?;
    let manifest = std::fs::read_to_string(dir.join(MANIFEST))?;
    let packed = with_checksums(&manifest, &listed);
    // The packed manifest must still be a valid one.
    let parsed = crate::bundle::Manifest::parse(&packed, &dir.join(MANIFEST))?;
    parsed.validate(&dir.join(MANIFEST))?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    {
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut header = tar::Header::new_gnu();
        header.set_size(packed.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, packed.as_bytes())?;
        for (f, _) in &listed {
            tar.append_path_with_name(dir.join(f), f)?;
        }
        tar.into_inner()?.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, out)?;
    // Digest of what was packed (the manifest with its checksums).
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(MANIFEST.as_bytes());
    h.update(sha2::Sha256::digest(packed.as_bytes()));
    for (path, digest) in &listed {
        h.update(path.to_string_lossy().as_bytes());
        h.update(digest.as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksums_replace_an_old_table() {
        let text = "format = 1\n[sha256]\n\"a\" = \"x\"\n\n[window]\nlength = 3.0\n";
        let out = super::with_checksums(text, &[("b.ts".into(), "00ff".into())]);
        assert!(!out.contains("\"a\""), "{out}");
        assert!(out.contains("[window]\nlength = 3.0"));
        assert!(out.ends_with("[sha256]\n\"b.ts\" = \"00ff\"\n"), "{out}");
    }
}
