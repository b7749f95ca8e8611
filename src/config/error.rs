use std::fmt;
use std::path::{Path, PathBuf};

/// A config that cannot be used. Displayed as `FILE:LINE:COL: key `K`: message`, followed by the
/// offending line and a caret, the way compilers show errors.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    Io { path: PathBuf, message: String },
    Invalid(Box<Located>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key, e.g. `generate.darcy.resolution`, when known.
    pub key: Option<String>,
    pub message: String,
    pub snippet: String,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "cannot read config {}: {message}", path.display())
            }
            ConfigError::Invalid(l) => {
                write!(f, "{}:{}:{}: ", l.path.display(), l.line, l.column)?;
                if let Some(key) = &l.key {
                    write!(f, "key `{key}`: ")?;
                }
                write!(f, "{}", l.message)?;
                if !l.snippet.is_empty() {
                    let gutter = l.line.to_string().len();
                    write!(
                        f,
                        "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                        "",
                        l.line,
                        l.snippet,
                        "",
                        "^",
                        col = l.column
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigError {
    /// An error at byte offset `at` of `text`.
    pub fn at(path: &Path, text: &str, at: usize, key: Option<String>, message: String) -> Self {
        let at = at.min(text.len());
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        let snippet = text[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let key = key.or_else(|| key_at(text, line_start));
        ConfigError::Invalid(Box::new(Located {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message,
            snippet,
        }))
    }

    pub fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let at = err.span().map_or(0, |s| s.start);
        let message = err.message().trim().to_string();
        let key = missing_key(text, at, &message);
        Self::at(path, text, at, key, message)
    }

    pub fn located(&self) -> Option<&Located> {
        match self {
            ConfigError::Invalid(l) => Some(l),
            ConfigError::Io { .. } => None,
        }
    }
}

/// For "missing field `k`", the dotted key of the table the span points at, plus `k`.
fn missing_key(text: &str, at: usize, message: &str) -> Option<String> {
    let field = message.strip_prefix("missing field `")?.split('`').next()?;
    let line = text[at.min(text.len())..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim();
    let table = if line.starts_with('[') {
        Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        )
    } else {
        table_at(text, at)
    };
    Some(match table {
        Some(t) => format!("{t}.{field}"),
        None => field.to_string(),
    })
}

/// The dotted key defined on the line starting at `line_start`, with its table prefix.
fn key_at(text: &str, line_start: usize) -> Option<String> {
    let line = text[line_start..].lines().next()?;
    let (name, _) = line.split_once('=')?;
    let name = name.trim().trim_matches('"');
    if name.is_empty() {
        return None;
    }
    Some(match table_at(text, line_start) {
        Some(table) => format!("{table}.{name}"),
        None => name.to_string(),
    })
}

/// The `[table]` header in force at byte offset `at`.
fn table_at(text: &str, at: usize) -> Option<String> {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
}
