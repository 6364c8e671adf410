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
    /// A problem with one row of a long input (`row` indexes that input); the bindings
    /// let the Python layer name the row's date and keys.
    #[error("row {row}: {problem}")]
    AtRow { row: usize, problem: String },
    /// The call was asked to stop (see [`crate::interrupt::Interrupt`]); the bindings
    /// raise the KeyboardInterrupt that asked for it.
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

pub(crate) fn at_row(row: usize, problem: impl Into<String>) -> Error {
    Error::AtRow {
        row,
        problem: problem.into(),
    }
}
