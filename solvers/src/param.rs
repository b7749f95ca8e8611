//! The error every `…Params::validate` returns: which parameter is out of range, what was expected
//! and what was given. `field` is the parameter's path inside the params, the same name a config
//! uses for it (e.g. `coefficient.alpha`), so a caller can point at the line that set it.

use std::fmt::Display;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: expected {expected}, got {got}")]
pub struct InvalidParam {
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl InvalidParam {
    pub fn new(field: impl Into<String>, expected: impl Into<String>, got: impl Display) -> Self {
        Self {
            field: field.into(),
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// The same error one level down: `alpha` inside `coefficient` is `coefficient.alpha`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// `Ok` when `ok`, else an [`InvalidParam`] for `field`.
pub fn require(
    ok: bool,
    field: &str,
    expected: &str,
    got: impl Display,
) -> Result<(), InvalidParam> {
    if ok {
        Ok(())
    } else {
        Err(InvalidParam::new(field, expected, got))
    }
}

/// A positive finite number.
pub fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

/// A range `(min, max)` written as one number (a fixed value) or `[min, max]`; serialised as
/// `[min, max]`. For `#[serde(with = "crate::param::range")]`.
#[cfg(feature = "serde")]
pub mod range {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(r: &(f64, f64), s: S) -> Result<S::Ok, S::Error> {
        [r.0, r.1].serialize(s)
    }

    struct Range;

    impl<'de> Visitor<'de> for Range {
        type Value = (f64, f64);

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, or [min, max]")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(f64, f64), E> {
            Ok((v, v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(f64, f64), E> {
            Ok((v as f64, v as f64))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(f64, f64), E> {
            Ok((v as f64, v as f64))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(f64, f64), A::Error> {
            let mut got = Vec::new();
            while let Some(v) = seq.next_element::<f64>()? {
                got.push(v);
            }
            match got[..] {
                [lo, hi] => Ok((lo, hi)),
                _ => Err(de::Error::invalid_length(got.len(), &self)),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, f64), D::Error> {
        d.deserialize_any(Range)
    }
}

/// A value written as a number or as one word that names a special value (`omega = "learned"`,
/// `kappa = "switching"`); [`number_or_word!`] gives it serde with errors that quote what was
/// given.
pub trait NumberOrWord: Sized {
    const WORD: &'static str;
    /// What a config must give, for error messages.
    const EXPECTED: &'static str;
    /// The number, or `None` for the word.
    fn number(&self) -> Option<f64>;
    fn from_number(number: Option<f64>) -> Self;
}

/// Serialize and Deserialize for a [`NumberOrWord`] type.
macro_rules! number_or_word {
    ($t:ty) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use $crate::param::NumberOrWord;
                match self.number() {
                    Some(v) => s.serialize_f64(v),
                    None => s.serialize_str(<$t>::WORD),
                }
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use $crate::param::NumberOrWord;
                $crate::param::read_number_or_word(d, <$t>::WORD, <$t>::EXPECTED)
                    .map(<$t>::from_number)
            }
        }
    };
}
pub(crate) use number_or_word;

#[cfg(feature = "serde")]
pub(crate) fn read_number_or_word<'de, D: serde::Deserializer<'de>>(
    d: D,
    word: &'static str,
    expected: &'static str,
) -> Result<Option<f64>, D::Error> {
    use serde::de::{self, Visitor};
    struct V(&'static str, &'static str);
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.1)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<f64>, E> {
            match v == self.0 {
                true => Ok(None),
                false => Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V(word, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_param_names_its_path_and_both_values() {
        let e = require(false, "alpha", "a positive number", -1.0)
            .unwrap_err()
            .within("coefficient");
        assert_eq!(e.field, "coefficient.alpha");
        assert_eq!(
            e.to_string(),
            "coefficient.alpha: expected a positive number, got -1"
        );
        assert!(require(true, "alpha", "", 1).is_ok());
    }
}
