//! Reader for CTranslate2's `model.bin`.
//!
//! Written by hand because no maintained Rust crate reads this format without linking the
//! C++ CTranslate2 runtime (ct2rs builds the whole C++ library, which we do not want on a
//! 2-core box nor in CI). The format is small and stable (binary version 6):
//!
//! ```text
//! u32 binary_version
//! str spec_name          (u16 length incl. NUL, bytes)
//! u32 spec_revision
//! u32 n_variables
//!   str name; u8 rank; u32 dims[rank]; u8 dtype; u32 n_bytes; n_bytes data
//! u32 n_aliases
//!   str alias; str target
//! ```
//! All integers are little-endian.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::Error;

/// CTranslate2 `DataType` enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One variable of the model: shape, type and raw little-endian bytes.
#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2DType,
    pub data: Vec<u8>,
}

impl Variable {
    /// Scalar integer value (CT2 stores flags and head counts as 0-d int tensors).
    pub fn as_i64(&self) -> Option<i64> {
        if self.shape.iter().product::<usize>() != 1 {
            return None;
        }
        let d = &self.data;
        Some(match self.dtype {
            Ct2DType::I8 => d[0] as i8 as i64,
            Ct2DType::I16 => i16::from_le_bytes([d[0], d[1]]) as i64,
            Ct2DType::I32 => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            _ => return None,
        })
    }

    /// The variable as an f32 candle tensor (f16/bf16 widened: candle's CPU f16 matmul is far
    /// slower than f32 and the model fits comfortably in memory as f32).
    pub fn to_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        let t = match self.dtype {
            Ct2DType::F32 => {
                let v: Vec<f32> = self
                    .data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Tensor::from_vec(v, self.shape.as_slice(), device)?
            }
            Ct2DType::F16 => {
                let v: Vec<half::f16> = self
                    .data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                    .collect();
                Tensor::from_vec(v, self.shape.as_slice(), device)?.to_dtype(DType::F32)?
            }
            Ct2DType::BF16 => {
                let v: Vec<half::bf16> = self
                    .data
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]))
                    .collect();
                Tensor::from_vec(v, self.shape.as_slice(), device)?.to_dtype(DType::F32)?
            }
            other => candle_core::bail!("variable of type {other:?} is not a float tensor"),
        };
        Ok(t)
    }
}

/// A parsed CTranslate2 model file.
#[derive(Debug)]
pub struct Ct2Model {
    pub binary_version: u32,
    pub spec: String,
    pub spec_revision: u32,
    pub variables: HashMap<String, Variable>,
}

impl Ct2Model {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
        Self::parse(&bytes).map_err(|msg| Error::Model(format!("{}: {msg}", path.display())))
    }

    /// Parses the whole file; the error names the byte offset and variable where it failed.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { b: bytes, p: 0 };
        let binary_version = r.u32()?;
        if !(2..=6).contains(&binary_version) {
            return Err(format!("unsupported CTranslate2 binary version {binary_version} (expected 2..=6)"));
        }
        let spec = r.string()?;
        let spec_revision = r.u32()?;
        let n = r.u32()? as usize;
        let mut variables = HashMap::with_capacity(n);
        for i in 0..n {
            let name = r.string().map_err(|e| format!("variable #{i}: {e}"))?;
            let rank = r.u8().map_err(|e| format!("variable {name}: {e}"))? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(r.u32().map_err(|e| format!("variable {name}: {e}"))? as usize);
            }
            let dtype_id = r.u8().map_err(|e| format!("variable {name}: {e}"))?;
            let dtype = Ct2DType::from_id(dtype_id)
                .ok_or_else(|| format!("variable {name}: unknown dtype id {dtype_id}"))?;
            let n_bytes = r.u32().map_err(|e| format!("variable {name}: {e}"))? as usize;
            let expected = shape.iter().product::<usize>() * dtype.size();
            if n_bytes != expected {
                return Err(format!(
                    "variable {name}: {n_bytes} bytes but shape {shape:?} of {dtype:?} needs {expected}"
                ));
            }
            let data = r.take(n_bytes).map_err(|e| format!("variable {name}: {e}"))?.to_vec();
            variables.insert(name, Variable { shape, dtype, data });
        }
        if binary_version >= 3 {
            let n_alias = r.u32()?;
            for _ in 0..n_alias {
                let alias = r.string()?;
                let target = r.string()?;
                let v = variables
                    .get(&target)
                    .ok_or_else(|| format!("alias {alias} points to unknown variable {target}"))?
                    .clone();
                variables.insert(alias, v);
            }
        }
        if r.p != bytes.len() {
            return Err(format!("{} trailing bytes after the last record", bytes.len() - r.p));
        }
        Ok(Self { binary_version, spec, spec_revision, variables })
    }

    pub fn get(&self, name: &str) -> Result<&Variable, Error> {
        self.variables
            .get(name)
            .ok_or_else(|| Error::Model(format!("model.bin has no variable {name}")))
    }

    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor, Error> {
        Ok(self.get(name)?.to_tensor(device)?)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.p.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            format!("truncated at byte {}: need {n} more bytes, file has {}", self.p, self.b.len())
        })?;
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let at = self.p;
        let s = self.take(n)?;
        let s = s.strip_suffix(&[0]).unwrap_or(s);
        String::from_utf8(s.to_vec()).map_err(|_| format!("invalid UTF-8 string at byte {at}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn push_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Writes a tiny CT2 file: one f16 matrix, one int16 scalar and an alias.
    pub(crate) fn tiny_file() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        push_str(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&12u32.to_le_bytes());
        for x in [1.0f32, -2.0, 0.5, 3.25, 0.0, -0.125] {
            b.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
        }
        push_str(&mut b, "heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&8i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "w_alias");
        push_str(&mut b, "w");
        b
    }

    #[test]
    fn parses_tiny_file_with_alias_and_scalar() {
        let bytes = tiny_file();
        let dir = std::env::temp_dir().join(format!("veertien-ct2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.bin");
        std::fs::write(&path, &bytes).unwrap();
        let m = Ct2Model::load(&path).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.spec_revision, 3);
        assert_eq!(m.get("heads").unwrap().as_i64(), Some(8));
        let t = m.tensor("w_alias", &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            vec![vec![1.0, -2.0, 0.5], vec![3.25, 0.0, -0.125]]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn truncated_file_names_the_variable() {
        let bytes = tiny_file();
        let err = Ct2Model::parse(&bytes[..40]).unwrap_err();
        assert!(err.contains("variable w"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn size_mismatch_is_reported() {
        let mut bytes = tiny_file();
        // Corrupt the byte count of "w" (12 -> 10).
        let pos = bytes.windows(4).position(|w| w == 12u32.to_le_bytes()).unwrap();
        bytes[pos] = 10;
        let err = Ct2Model::parse(&bytes).unwrap_err();
        assert!(err.contains("needs 12"), "{err}");
    }
}
