//! The error a spec's or params' `validate` returns: the parameter's key (its name in a config
//! table, e.g. `modes` or `domain_padding`), what was expected and what was given.

use std::fmt::Display;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: expected {expected}, got {got}")]
pub struct InvalidParam {
    pub field: String,
    pub expected: String,
    pub got: String,
}

/// `Ok` when `ok`, else an [`InvalidParam`] for `field`.
pub fn require(
    ok: bool,
    field: &str,
    expected: &str,
    got: impl Display,
) -> Result<(), InvalidParam> {
    match ok {
        true => Ok(()),
        false => Err(InvalidParam {
            field: field.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }),
    }
}

/// 1 to 3 positive counts, one per grid axis (`modes`, `sensors`).
pub fn per_axis(field: &str, counts: &[usize]) -> Result<(), InvalidParam> {
    require(
        (1..=3).contains(&counts.len()) && !counts.contains(&0),
        field,
        "1 to 3 positive integers, one per grid axis",
        format!("{counts:?}"),
    )
}
