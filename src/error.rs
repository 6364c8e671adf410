//! The one error type of the core. The bindings map each variant to a documented
//! Python exception; kernels never panic on bad input, they return one of these.

/// Why a kernel refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Shapes or parameters that cannot describe a valid problem.
    #[error("{0}")]
    InvalidInput(String),
    /// A +inf or -inf in the data (NaN means missing, infinity is always an error).
    #[error("{input} contains an infinite value at row {row}, column {column}")]
    NonFinite {
        input: &'static str,
        row: usize,
        column: usize,
    },
    /// A finite value too large or too small (but not zero) to compute with: its
    /// square, summed over a window, would overflow or underflow (see [`in_range`]).
    #[error("{input} has a value too large or too small to compute with at row {row}, column {column}: nonzero values must lie between 1e-150 and 1e150 in size; rescale the data")]
    OutOfRange {
        input: &'static str,
        row: usize,
        column: usize,
    },
    /// A problem with one row of a long input (`row` indexes that input); the bindings
    /// let the Python layer name the row's date and keys.
    #[error("row {row}: {problem}")]
    AtRow { row: usize, problem: String },
    /// The call was asked to stop (see [`crate::interrupt::Interrupt`]); the bindings
    /// raise the KeyboardInterrupt that asked for it.
    #[error("interrupted")]
    Interrupted,
    /// An output too large for the memory the process may still allocate.
    #[error("could not allocate {} for {what}", bytes_text(*.bytes))]
    OutOfMemory {
        what: &'static str,
        /// `None` when the size does not even fit in a `usize`.
        bytes: Option<usize>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Sizes of the nonzero data values the kernels compute with: sums of up to 2^32 of
/// their squares and cross-products neither overflow nor fall into subnormals.
pub const SMALLEST_VALUE: f64 = 1e-150;
pub const LARGEST_VALUE: f64 = 1e150;

/// Whether `v` is zero, NaN (missing) or of a size the kernels compute with;
/// infinities are out of range too. Branch-free, so that scans vectorise.
#[inline(always)]
pub fn in_range(v: f64) -> bool {
    let size = v.abs();
    (size <= LARGEST_VALUE) & ((size >= SMALLEST_VALUE) | (size == 0.0)) | v.is_nan()
}

/// The error for `v` at (`row`, `column`) of `input` when it is not [`in_range`].
#[inline(always)]
pub fn range_error(v: f64, input: &'static str, row: usize, column: usize) -> Option<Error> {
    if v.is_infinite() {
        Some(Error::NonFinite { input, row, column })
    } else if !in_range(v) {
        Some(Error::OutOfRange { input, row, column })
    } else {
        None
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn zero_nan_and_sizes_from_1e_150_to_1e150_are_in_range() {
        for v in [0.0, -0.0, f64::NAN, 1e-150, -1e150, 0.01, 1e100] {
            assert!(in_range(v), "{v:e}");
        }
        for v in [
            f64::INFINITY,
            -f64::INFINITY,
            1.1e150,
            -1e300,
            9e-151,
            5e-324,
        ] {
            assert!(!in_range(v), "{v:e}");
        }
        assert!(matches!(
            range_error(1e-200, "x", 1, 2),
            Some(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            range_error(f64::INFINITY, "x", 1, 2),
            Some(Error::NonFinite { .. })
        ));
        assert_eq!(range_error(0.5, "x", 1, 2), None);
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

pub(crate) fn at_row(row: usize, problem: impl Into<String>) -> Error {
    Error::AtRow {
        row,
        problem: problem.into(),
    }
}

/// `len` copies of `value`, or [`Error::OutOfMemory`] naming `what` and the size when
/// the allocation fails (the global allocator would abort the process instead).
pub(crate) fn try_filled<T: Clone>(len: usize, value: T, what: &'static str) -> Result<Vec<T>> {
    let out_of_memory = || Error::OutOfMemory {
        what,
        bytes: len.checked_mul(std::mem::size_of::<T>()),
    };
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| out_of_memory())?;
    values.resize(len, value);
    Ok(values)
}

/// A byte count the way people read it: "5.96 GiB".
pub fn bytes_text(bytes: Option<usize>) -> String {
    let Some(bytes) = bytes else {
        return "more than 2^64 bytes".to_string();
    };
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < units.len() {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{size:.2} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes_text(Some(512)), "512 bytes");
        assert_eq!(bytes_text(Some(3 << 30)), "3.00 GiB");
        assert_eq!(bytes_text(Some(6_400_000_000)), "5.96 GiB");
        assert_eq!(bytes_text(None), "more than 2^64 bytes");
    }

    #[test]
    fn an_allocation_that_cannot_succeed_is_an_error_not_an_abort() {
        let err = try_filled(usize::MAX / 8, 0.0f64, "a test buffer").unwrap_err();
        assert_eq!(
            err,
            Error::OutOfMemory {
                what: "a test buffer",
                bytes: Some(usize::MAX / 8 * 8)
            }
        );
        let err = try_filled(usize::MAX, 0.0f64, "a test buffer").unwrap_err();
        assert!(err.to_string().contains("more than 2^64 bytes"), "{err}");
        assert_eq!(try_filled(3, 1u32, "three").unwrap(), vec![1, 1, 1]);
    }
}
