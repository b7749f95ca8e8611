//! A config file as the sections read it: its TOML tree, where every key stands in the text, and
//! the errors that point there.
//!
//! Sections are read from the tree with serde, after [`Source::section`] has filled in the
//! defaults that depend on other keys. An error from serde or from a library's `validate()` names
//! a dotted key, and [`Source::err`] turns it into `FILE:LINE:COL: key `K`: …` at the line that
//! sets that key (or at the nearest enclosing table that is written, for a key left to its
//! default). Keys that no section reads are caught once, for every section, by
//! [`Source::check_used`].

use super::ConfigError;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::path::{Path, PathBuf};
use toml::{Spanned, Table, Value};

/// A parameter out of range, as both libraries report one: its field (a key in the table the
/// parameters were read from), what was expected and what was given.
pub trait ParamError {
    fn field(&self) -> &str;
    fn message(&self) -> String;
}

impl ParamError for pdekit_solvers::InvalidParam {
    fn field(&self) -> &str {
        &self.field
    }
    fn message(&self) -> String {
        format!("expected {}, got {}", self.expected, self.got)
    }
}

impl ParamError for pdekit_operators::param::InvalidParam {
    fn field(&self) -> &str {
        &self.field
    }
    fn message(&self) -> String {
        format!("expected {}, got {}", self.expected, self.got)
    }
}

pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    /// The folder relative paths resolve against.
    pub dir: PathBuf,
    pub root: Table,
    /// Byte offset of every dotted key (`a.b[2].c`) in the text.
    keys: BTreeMap<String, usize>,
}

/// Any TOML value, remembering where each key is written.
enum Located {
    Leaf,
    Table(Vec<(Spanned<String>, Located)>),
    Array(Vec<Spanned<Located>>),
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Located;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = a.next_element()? {
                    items.push(x);
                }
                Ok(Located::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = a.next_key::<Spanned<String>>()? {
                    entries.push((k, a.next_value()?));
                }
                Ok(Located::Table(entries))
            }
        }
        d.deserialize_any(V)
    }
}

fn index_keys(prefix: &str, at: usize, node: &Located, out: &mut BTreeMap<String, usize>) {
    if !prefix.is_empty() {
        out.insert(prefix.to_string(), at);
    }
    match node {
        Located::Leaf => {}
        Located::Table(entries) => {
            for (k, v) in entries {
                index_keys(&join(prefix, k.get_ref()), k.span().start, v, out);
            }
        }
        Located::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                index_keys(&format!("{prefix}[{i}]"), v.span().start, v.get_ref(), out);
            }
        }
    }
}

/// `a.b` + `c` = `a.b.c`.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Every dotted key under `prefix` with its value, tables before what they hold, as
/// [`index_keys`] names them.
fn entries<'v>(prefix: &str, v: &'v Value, out: &mut Vec<(String, &'v Value)>) {
    if !prefix.is_empty() {
        out.push((prefix.to_string(), v));
    }
    let children: Vec<(String, &Value)> = match v {
        Value::Table(t) => t.iter().map(|(k, v)| (join(prefix, k), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{prefix}[{i}]"), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        entries(&key, child, out);
    }
}

impl<'a> Source<'a> {
    pub fn parse(path: &'a Path, text: &'a str) -> Result<Self, ConfigError> {
        let root: Table =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let located: Located =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let mut keys = BTreeMap::new();
        index_keys("", 0, &located, &mut keys);
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            path,
            text,
            dir,
            root,
            keys,
        })
    }

    /// Whether the file writes `key`.
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// The value the file gives `key` (`a.b[2].c`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let mut v: Option<&Value> = None;
        for part in key.split('.') {
            let mut pieces = part.split('[');
            let name = pieces.next()?;
            let mut here = match v {
                None => self.root.get(name)?,
                Some(t) => t.get(name)?,
            };
            for index in pieces {
                here = here.get(index.strip_suffix(']')?.parse::<usize>().ok()?)?;
            }
            v = Some(here);
        }
        v
    }

    /// The keys written directly inside the table `key`, in file order.
    pub fn children(&self, key: &str) -> Vec<&str> {
        let prefix = format!("{key}.");
        let mut found: Vec<(usize, &str)> = self
            .keys
            .iter()
            .filter_map(|(k, &at)| {
                let rest = k.strip_prefix(&prefix)?;
                (!rest.contains(['.', '['])).then_some((at, rest))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, k)| k).collect()
    }

    /// Where `key` is written, or the nearest enclosing key that is (the start of the file if
    /// none is).
    fn offset(&self, key: &str) -> usize {
        let mut k = key;
        loop {
            if let Some(&at) = self.keys.get(k) {
                return at;
            }
            match k.rfind(['.', '[']) {
                Some(i) => k = &k[..i],
                None => return 0,
            }
        }
    }

    /// An error about `key`.
    pub fn err(&self, key: &str, message: impl Display) -> ConfigError {
        ConfigError::at(
            self.path,
            self.text,
            self.offset(key),
            Some(key.to_string()),
            message.to_string(),
        )
    }

    /// An error about `key` shown at where `at` is written (e.g. a missing key at the key that
    /// requires it).
    pub fn err_at(&self, at: &str, key: &str, message: impl Display) -> ConfigError {
        ConfigError::at(
            self.path,
            self.text,
            self.offset(at),
            Some(key.to_string()),
            message.to_string(),
        )
    }

    /// An error at character `column` (1-based) inside the string value of `key`.
    pub fn err_in_string(&self, key: &str, column: usize, message: impl Display) -> ConfigError {
        let at = self.offset(key);
        let line_end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        let quote = self.text[at..line_end]
            .find(['"', '\''])
            .map(|i| at + i + 1);
        let inside = quote.map_or(at, |start| {
            self.text[start..line_end]
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(line_end, |(b, _)| start + b)
        });
        ConfigError::at(
            self.path,
            self.text,
            inside,
            Some(key.to_string()),
            message.to_string(),
        )
    }

    /// `Ok` when `ok`, else an error at `key`: expected `expected`, got `got`.
    pub fn ensure(
        &self,
        ok: bool,
        key: &str,
        expected: &str,
        got: impl Display,
    ) -> Result<(), ConfigError> {
        ok.then_some(())
            .ok_or_else(|| self.err(key, format!("expected {expected}, got {got}")))
    }

    /// A library's `validate()` error about a field of the table `table`.
    pub fn param(&self, table: &str, e: &impl ParamError) -> ConfigError {
        let key = match e.field() {
            "" => table.to_string(),
            field => join(table, field),
        };
        self.err(&key, e.message())
    }

    /// The table `key` read as `T`, with `defaults` filled in for the keys it does not write
    /// (an absent table reads as empty).
    pub fn section<T: DeserializeOwned>(
        &self,
        key: &str,
        defaults: &[(&str, Value)],
    ) -> Result<T, ConfigError> {
        let mut table = match self.get(key) {
            None => Table::new(),
            Some(Value::Table(t)) => t.clone(),
            Some(other) => {
                return Err(self.err(key, format!("expected a table, got {}", other.type_str())))
            }
        };
        for (k, v) in defaults {
            if !table.contains_key(*k) {
                table.insert(k.to_string(), v.clone());
            }
        }
        self.read(key, Value::Table(table))
    }

    /// `value` (the table at `key`, perhaps with defaults filled in) read as `T`.
    pub fn read<T: DeserializeOwned>(&self, key: &str, value: Value) -> Result<T, ConfigError> {
        self.read_with(key, value, Value::try_into)
    }

    /// `value` read by `read` (a deserializer that needs more than the type, e.g. a family's
    /// name), with its errors located like [`Source::read`]'s.
    pub fn read_with<T>(
        &self,
        key: &str,
        value: Value,
        read: impl FnOnce(Value) -> Result<T, toml::de::Error>,
    ) -> Result<T, ConfigError> {
        read(value.clone()).map_err(|e| self.serde_error(key, &value, &e.to_string()))
    }

    /// Locates a serde error: by the key path toml adds (`in `a.b``), else by the value the
    /// message quotes (errors inside flattened and tagged tables carry no path), else at the
    /// table.
    fn serde_error(&self, key: &str, value: &Value, text: &str) -> ConfigError {
        let text = text.trim();
        let (message, path) = match text.split_once("\nin `") {
            Some((m, p)) => (m.trim(), Some(p.trim_end_matches('`'))),
            None => (text, None),
        };
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let table = path.map_or(key.to_string(), |p| join(key, p));
            return self.err(&join(&table, field), format!("missing field `{field}`"));
        }
        let located = match path {
            Some(p) => join(key, p),
            None => quoted_value(message)
                .and_then(|wanted| find_value(key, value, &wanted))
                .unwrap_or_else(|| key.to_string()),
        };
        self.err(&located, message)
    }

    /// `value` resolved against the config's folder, with `.` and `..` removed lexically.
    pub fn path(&self, value: &str) -> PathBuf {
        use std::path::Component;
        let joined = self.dir.join(value);
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    let popped = matches!(out.components().next_back(), Some(Component::Normal(_)))
                        && out.pop();
                    if !popped {
                        out.push("..");
                    }
                }
                other => out.push(other),
            }
        }
        if out.as_os_str().is_empty() {
            out.push(".");
        }
        out
    }

    /// Every key the file writes must be one the plan uses (`plan` is the plan as TOML): a key no
    /// section reads is a typo or does not apply to the rest of the config. `hints` says, for a
    /// key name that only some settings use, which ones.
    pub fn check_used(&self, plan: &Value, hints: &[(&str, &str)]) -> Result<(), ConfigError> {
        let mut all = Vec::new();
        entries("", plan, &mut all);
        let ordered: Vec<String> = all.into_iter().map(|(k, _)| k).collect();
        let used: std::collections::HashSet<&str> = ordered.iter().map(String::as_str).collect();
        let stray = self
            .keys
            .iter()
            .filter(|(k, _)| !used.contains(k.as_str()))
            .min_by_key(|(_, &at)| at);
        let Some((key, _)) = stray else {
            return Ok(());
        };
        let (parent, name) = match key.rfind('.') {
            Some(i) => (&key[..i], &key[i + 1..]),
            None => ("", key.as_str()),
        };
        if let Some((_, hint)) = hints.iter().find(|(k, _)| *k == name) {
            return Err(self.err(key, format!("only applies to {hint}")));
        }
        let mut siblings: Vec<String> = Vec::new();
        for k in &ordered {
            let rest = match parent.is_empty() {
                true => Some(k.as_str()),
                false => k.strip_prefix(parent).and_then(|r| r.strip_prefix('.')),
            };
            let name = rest
                .filter(|r| !r.contains(['.', '[']))
                .map(|r| format!("`{r}`"));
            if let Some(name) = name.filter(|n| !siblings.contains(n)) {
                siblings.push(name);
            }
        }
        let expected = if siblings.is_empty() {
            String::new()
        } else {
            format!(", expected one of {}", siblings.join(", "))
        };
        // A near miss is a typo; anything else may be a key of a setting this config lacks.
        let closest = siblings
            .iter()
            .map(|s| (strsim::jaro_winkler(name, s.trim_matches('`')), s))
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let why = match closest {
            Some((_, s)) => format!(" (did you mean {s}?)"),
            None => " (misspelt, or it does not apply to the rest of this config)".into(),
        };
        Err(self.err(key, format!("unknown field `{name}`{why}{expected}")))
    }
}

/// The value a serde message quotes: `invalid type: string "x", …` or `unknown variant `x``.
fn quoted_value(message: &str) -> Option<Value> {
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        return Some(Value::String(rest.split('`').next()?.to_string()));
    }
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    if let Some(s) = rest.strip_prefix("string \"") {
        return Some(Value::String(s.split('"').next()?.to_string()));
    }
    let (kind, rest) = rest.split_once(" `")?;
    let literal = rest.split('`').next()?;
    match kind {
        "integer" => literal.parse().ok().map(Value::Integer),
        "floating point" => literal.parse().ok().map(Value::Float),
        "boolean" => literal.parse().ok().map(Value::Boolean),
        _ => None,
    }
}

/// The first key under `key` whose value is `wanted`.
fn find_value(key: &str, value: &Value, wanted: &Value) -> Option<String> {
    let mut all = Vec::new();
    entries(key, value, &mut all);
    all.into_iter().find(|(_, v)| *v == wanted).map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source<'_> {
        Source::parse(Path::new("c.toml"), text).unwrap()
    }

    #[test]
    fn keys_are_located_at_their_line_and_missing_ones_at_their_table() {
        let s = source("[a]\nx = 1\n\n[a.b]\ny = [1, 2]\n[[c]]\nz = 1\n[[c]]\nz = 2\n");
        let line = |k: &str| match s.err(k, "m") {
            ConfigError::Invalid(l) => l.line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line("a.x"), 2);
        assert_eq!(line("a.b.y"), 5);
        assert_eq!(line("a.b.y[1]"), 5);
        assert_eq!(line("a.b.w"), 4);
        assert_eq!(line("c[1].z"), 9);
        assert_eq!(line("nothing.at.all"), 1);
        assert_eq!(s.children("a"), vec!["x", "b"]);
        assert_eq!(s.get("c[1].z"), Some(&Value::Integer(2)));
        assert_eq!(s.get("a.b.y[0]"), Some(&Value::Integer(1)));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: usize,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind")]
    #[allow(dead_code)]
    enum Tagged {
        One { n: usize },
    }

    #[test]
    fn serde_errors_name_the_key_even_inside_tagged_tables() {
        let s = source("[t]\ninner = { n = \"x\" }\n[u]\nkind = \"One\"\nn = -3\n");
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            inner: Inner,
        }
        let e = s.section::<T>("t", &[]).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:11: key `t.inner.n`"), "{e}");
        let e = s.section::<Tagged>("u", &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("c.toml:5:1: key `u.n`: invalid value: integer `-3`"),
            "{e}"
        );
        let e = s.section::<T>("u", &[]).unwrap_err().to_string();
        assert!(e.contains("key `u.inner`: missing field `inner`"), "{e}");
    }

    #[test]
    fn a_key_no_plan_uses_is_an_error_listing_the_keys_that_are() {
        let s = source("[a]\nx = 1\nxx = 2\n");
        let plan: Value = toml::from_str("[a]\nx = 1\ny = 2\n").unwrap();
        let e = s.check_used(&plan, &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("c.toml:3:1: key `a.xx`: unknown field `xx`")
                && e.contains("expected one of `x`, `y`"),
            "{e}"
        );
        let near: Value = toml::from_str("[a]\nresolution = 1\ncentring = 2\n").unwrap();
        let e = source("[a]\nresolutoin = 1\n").check_used(&near, &[]);
        assert!(
            e.unwrap_err().to_string().contains(
                "unknown field `resolutoin` (did you mean `resolution`?), expected one of `resolution`, `centring`"
            )
        );
        let plan: Value = toml::from_str("[a]\nx = 1\nxx = 5\nz = [1]\n").unwrap();
        assert!(s.check_used(&plan, &[]).is_ok());
        let e = s.check_used(&toml::from_str("[a]\nx = 1\n").unwrap(), &[("xx", "b = 2")]);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("key `a.xx`: only applies to b = 2"));
    }
}
