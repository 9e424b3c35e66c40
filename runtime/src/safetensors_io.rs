//! Reading and writing safetensors files with the `safetensors` crate. Reads are memory mapped;
//! writes go through [`crate::output`], so a failed run never leaves a partial output.

use crate::output::{self, OutputError};
use crate::{DType, Tensor};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A safetensors file that could not be read or written.
#[derive(Debug)]
pub struct IoError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for IoError {}

fn err(path: &Path, message: impl Into<String>) -> IoError {
    IoError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and dropped before this module returns; a file truncated by
    // another process while mapped would fault, which is the documented risk of every mmap
    // reader (the safetensors crate's own examples map the same way).
    #[allow(unsafe_code)]
    unsafe {
        memmap2::Mmap::map(file)
    }
}

/// Reads every tensor of a safetensors file, in the file's name order.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>, IoError> {
    read_filtered(path, |_| true)
}

/// Maps the regular file `path` (see [`read`] for what is refused).
fn map_regular(path: &Path) -> Result<memmap2::Mmap, IoError> {
    // Non-blocking, so that a FIFO given as input is refused below instead of waiting for a
    // writer; it changes nothing for a regular file.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| err(path, e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(path, e.to_string()))?;
    if meta.is_dir() {
        return Err(err(path, "is a directory, not a safetensors file"));
    }
    if !meta.is_file() {
        return Err(err(
            path,
            "is not a regular file (a FIFO, device or socket)",
        ));
    }
    let len = meta.len();
    if len == 0 {
        return Err(err(path, "the file is empty, not a safetensors file"));
    }
    map_file(&file).map_err(|e| err(path, e.to_string()))
}

/// Reads the tensors of a safetensors file whose names `keep` accepts, in name order; the
/// others are not decoded (they may have dtypes FTL does not support).
pub fn read_filtered(
    path: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Tensor)>, IoError> {
    let map = map_regular(path)?;
    decode(&map, keep).map_err(|m| err(path, m))
}

/// Decodes the tensors of safetensors `bytes` whose names `keep` accepts, in name order; the
/// error is one sentence naming the offending tensor.
pub fn decode(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Result<Vec<(String, Tensor)>, String> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| keep(n))
        .map(str::to_string)
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        let dtype = DType::from_safetensors(view.dtype()).ok_or_else(|| {
            format!(
                "tensor `{name}` has dtype {:?}, which FTL does not support",
                view.dtype()
            )
        })?;
        let tensor = Tensor::from_bytes(dtype, view.shape(), view.data())
            .ok_or_else(|| format!("tensor `{name}`: data does not match its shape"))?;
        out.push((name, tensor));
    }
    Ok(out)
}

/// Writes tensors to `path` through the one output writer ([`crate::output`]): atomically,
/// never through a symbolic link or over anything but a regular file.
pub fn write_atomic(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), OutputError> {
    let refuse = |message: String| OutputError {
        path: path.to_path_buf(),
        message,
    };
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let view = TensorView::new(t.dtype().to_safetensors(), t.shape().to_vec(), t.bytes())
            .map_err(|e| refuse(format!("tensor `{name}`: {e}")))?;
        views.push((name.as_str(), view));
    }
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| refuse(format!("cannot serialize: {e}")))?;
    output::write_bytes(path, &bytes)
}

/// Writes `base` to `out` with the tensors in `replace` substituted (same names): every other
/// tensor is copied byte for byte whatever its dtype (u8, i8, f8…), and the header's
/// `__metadata__` is kept. `ftc merge` writes merged weights this way.
pub fn rewrite(
    base: &Path,
    replace: &std::collections::BTreeMap<String, Tensor>,
    out: &Path,
) -> Result<(), RewriteError> {
    let map = map_regular(base).map_err(RewriteError::Read)?;
    let invalid = |e: safetensors::SafeTensorError| {
        RewriteError::Read(err(base, format!("not a valid safetensors file: {e}")))
    };
    let st = SafeTensors::deserialize(&map).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(&map).map_err(invalid)?;
    let refuse = |message: String| {
        RewriteError::Write(OutputError {
            path: out.to_path_buf(),
            message,
        })
    };
    let mut views = Vec::new();
    for (name, view) in st.tensors() {
        let view = match replace.get(&name) {
            Some(t) => TensorView::new(t.dtype().to_safetensors(), t.shape().to_vec(), t.bytes())
                .map_err(|e| refuse(format!("tensor `{name}`: {e}")))?,
            None => view,
        };
        views.push((name, view));
    }
    let bytes = safetensors::serialize(views, header.metadata().clone())
        .map_err(|e| refuse(format!("cannot serialize: {e}")))?;
    output::write_bytes(out, &bytes).map_err(RewriteError::Write)
}

/// Why [`rewrite`] failed: the base could not be read, or the output not written.
#[derive(Debug)]
pub enum RewriteError {
    /// Reading the base.
    Read(IoError),
    /// Writing the output.
    Write(OutputError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_keeps_names_dtypes_and_values() {
        let dir = std::env::temp_dir().join(format!("ftl-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let tensors = vec![
            (
                "a".to_string(),
                Tensor::from_f64(DType::F32, &[2], &[1.5, -2.0]),
            ),
            ("b".to_string(), Tensor::from_f64(DType::Bool, &[1], &[1.0])),
            ("c".to_string(), Tensor::scalar(DType::BF16, 0.5)),
        ];
        write_atomic(&path, &tensors).unwrap();
        assert_eq!(read(&path).unwrap(), tensors);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(read(&path).unwrap_err().message.contains("not a valid"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
