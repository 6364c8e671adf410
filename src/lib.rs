//! factorcore: rolling factor exposures, attribution and diversification scores.
//!
//! The kernels are pure Rust (no Python types) and are tested with `cargo test`;
//! the `python` feature adds the thin PyO3 layer that maturin builds into
//! `factorcore._core`.

pub mod brinson;
pub mod clusters;
pub mod diversification;
pub mod error;
pub mod exposures;
pub mod factor_attribution;
pub mod groups;
pub mod interrupt;
pub mod linalg;
pub mod linking;
pub mod memory;
pub mod views;
pub mod window;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
pub use interrupt::Interrupt;
