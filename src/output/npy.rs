//! Minimal NumPy `.npy` (format 1.0) writer for float32 and int64 arrays, so users can
//! load exactly what the model saw with `numpy.load`.

use std::io::Write;
use std::path::Path;

/// Element types the writer supports.
pub trait NpyElement: Copy {
    /// NumPy dtype descriptor.
    const DESCR: &'static str;
    /// Little-endian bytes.
    fn le_bytes(self) -> Vec<u8>;
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn le_bytes(self) -> Vec<u8> {
        vec![self]
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// The bytes of an .npy file holding `data` with `shape` (C order).
pub fn npy_bytes<T: NpyElement>(shape: &[usize], data: &[T]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_str}, }}",
        T::DESCR
    );
    // Magic (6) + version (2) + header length (2) + header, padded to 64 bytes with '\n'.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.le_bytes());
    }
    out
}

/// Writes `data` with `shape` to `path` as .npy.
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> std::io::Result<()> {
    std::fs::File::create(path)?.write_all(&npy_bytes(shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_describes_the_array() {
        let b = npy_bytes(&[2, 3], &[0f32; 6]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<f4'") && header.contains("'shape': (2, 3)"));
        assert_eq!(b.len(), 10 + hlen + 24);
        let b = npy_bytes(&[4], &[1i64, 2, 3, 4]);
        assert!(std::str::from_utf8(&b[10..74]).unwrap().contains("(4,)"));
    }
}
