//! Resizes a raw packed BGR image with `gst_emotion::media::resize_linear`, for
//! comparing against OpenCV (`models/` parity scripts).
//!
//! usage: resize_raw IN.raw WIDTH HEIGHT OUT.raw OUT_WIDTH OUT_HEIGHT
//! IN.raw holds WIDTH×HEIGHT×3 bytes in B,G,R order; OUT.raw receives B,G,R too.

use gst_emotion::media::{PixelLayout, resize_linear};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(a.len() == 6, "usage: resize_raw IN.raw W H OUT.raw OW OH");
    let (w, h): (usize, usize) = (a[1].parse()?, a[2].parse()?);
    let (ow, oh): (usize, usize) = (a[4].parse()?, a[5].parse()?);
    let src = std::fs::read(&a[0])?;
    anyhow::ensure!(src.len() == w * h * 3, "{} is not {w}x{h}x3 bytes", a[0]);
    let out = resize_linear(&src, w, h, w * 3, PixelLayout::BGR, ow, oh);
    // `out` is RGB; write back in B,G,R order.
    let bgr: Vec<u8> = out
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    std::fs::write(&a[3], bgr)?;
    Ok(())
}
