//! Argument validation shared by every binding: bad arguments become
//! `ValueError` / `TypeError` / `IndexError` before they reach the core, so
//! nothing below ever panics or spins on them.

use phasecast_core::{Duration, Instant};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyInt;

/// Largest time accepted anywhere, in milliseconds (about 31 years of
/// virtual time): far beyond any run, far below `u64` microseconds.
pub const MAX_MS: f64 = 1e12;

/// A node index `0 <= node < n`, else `IndexError` (or `TypeError` when it is
/// not an integer at all).
pub fn node_index(what: &str, node: &Bound<'_, PyAny>, n: usize) -> PyResult<u16> {
    if !node.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(node)
        )));
    }
    let v: i64 = node.extract().unwrap_or(i64::MAX);
    if v < 0 || v as u64 >= n as u64 {
        return Err(PyIndexError::new_err(format!(
            "{what} {} is not a node of this cluster (0..{n})",
            node.str().map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    Ok(v as u16)
}

/// The Python type name of `v`, for messages.
pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A finite, non-negative number of milliseconds as microseconds.
pub fn ms_to_us(what: &str, ms: f64) -> PyResult<u64> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a finite number of milliseconds >= 0, got {ms}"
        )));
    }
    if ms > MAX_MS {
        return Err(PyValueError::new_err(format!(
            "{what} = {ms} ms is beyond the simulator's horizon ({MAX_MS:e} ms)"
        )));
    }
    Ok((ms * 1000.0).round() as u64)
}

/// [`ms_to_us`] as an [`Instant`].
pub fn instant(what: &str, ms: f64) -> PyResult<Instant> {
    ms_to_us(what, ms).map(Instant::from_micros)
}

/// [`ms_to_us`] as a [`Duration`].
pub fn duration(what: &str, ms: f64) -> PyResult<Duration> {
    ms_to_us(what, ms).map(Duration::from_micros)
}

/// A strictly positive duration in milliseconds.
pub fn positive_duration(what: &str, ms: f64) -> PyResult<Duration> {
    let d = duration(what, ms)?;
    if d.as_micros() == 0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be at least 0.001 ms, got {ms}"
        )));
    }
    Ok(d)
}

/// A probability in `[0, 1]`.
pub fn probability(what: &str, p: f64) -> PyResult<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(PyValueError::new_err(format!(
            "{what} must be a probability in [0, 1], got {p}"
        )));
    }
    Ok(p)
}

/// A rate in Mb/s (finite, > 0) as bits per second.
pub fn mbps_to_bps(what: &str, mbps: f64) -> PyResult<u64> {
    if !mbps.is_finite() || mbps <= 0.0 || mbps > 1e9 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a rate in Mb/s in (0, 1e9], got {mbps}"
        )));
    }
    Ok(((mbps * 1e6).round() as u64).max(1))
}

/// A rate in Mb/s (finite, > 0) as bytes per second (the unit of the core's
/// bandwidth allocation).
pub fn mbps_to_bytes(what: &str, mbps: f64) -> PyResult<u64> {
    Ok((mbps_to_bps(what, mbps)? / 8).max(1))
}

/// Bytes per second as Mb/s.
pub fn bytes_to_mbps(bytes_per_s: u64) -> f64 {
    bytes_per_s as f64 * 8.0 / 1e6
}

/// A seed: an int in `0 ..= 2**64 - 1`.
pub fn seed(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "seed must be an int, not {}",
            type_name(v)
        )));
    }
    v.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "seed must be in 0 ..= 2**64 - 1, got {}",
            v.str().map(|s| s.to_string()).unwrap_or_default()
        ))
    })
}

/// An integer count in `lo ..= hi`.
pub fn count(what: &str, v: &Bound<'_, PyAny>, lo: u64, hi: u64) -> PyResult<u64> {
    if !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(v)
        )));
    }
    match v.extract::<i128>() {
        Ok(x) if x >= i128::from(lo) && x <= i128::from(hi) => Ok(x as u64),
        _ => Err(PyValueError::new_err(format!(
            "{what} must be in {lo} ..= {hi}, got {}",
            v.str().map(|s| s.to_string()).unwrap_or_default()
        ))),
    }
}

/// [`count`] of an optional argument, `default` when absent.
pub fn opt_count(
    what: &str,
    v: Option<&Bound<'_, PyAny>>,
    default: u64,
    lo: u64,
    hi: u64,
) -> PyResult<u64> {
    match v {
        None => Ok(default),
        Some(v) => count(what, v, lo, hi),
    }
}

/// Bytes from `bytes`, `bytearray` or `memoryview`-like objects; `str` is
/// refused (encode it first) so that no encoding is guessed.
pub fn payload(v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if v.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "payload must be bytes-like, not str (encode it, e.g. s.encode())",
        ));
    }
    if let Ok(b) = v.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = v.cast::<pyo3::types::PyByteArray>() {
        return Ok(b.to_vec());
    }
    // Anything else that supports the buffer protocol (memoryview, array, numpy).
    let builtins = v.py().import("builtins")?;
    match builtins.getattr("bytes")?.call1((v,)) {
        Ok(b) if !v.is_instance_of::<PyInt>() => {
            Ok(b.cast::<pyo3::types::PyBytes>()?.as_bytes().to_vec())
        }
        _ => Err(PyTypeError::new_err(format!(
            "payload must be bytes-like, not {}",
            type_name(v)
        ))),
    }
}
