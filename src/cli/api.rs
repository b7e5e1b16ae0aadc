//! `devauth api`'s arguments: the method, headers and where the body comes from, checked here
//! (no file is read). Validation only, like the rest of `cli`.

use super::UsageError;
use std::path::PathBuf;

/// `devauth api`'s arguments, checked (no file read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiArgs {
    /// Uppercase standard method.
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub data: Option<DataSource>,
    pub url: String,
}

/// Where `--data` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    Stdin,
    File(PathBuf),
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(super) fn api_method(m: &str) -> Result<String, UsageError> {
    let upper = m.to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(UsageError(format!(
            "--method: `{}` is not one of {}",
            m.chars().take(32).collect::<String>(),
            METHODS.join(", ")
        )))
    }
}

/// `Name: value`: a token name (RFC 9110 §5.1), a value without control characters.
pub(super) fn api_header(h: &str) -> Result<(String, String), UsageError> {
    let bad = |why: &str| UsageError(format!("--header: {why} (expected `Name: value`)"));
    let (name, value) = h.split_once(':').ok_or_else(|| bad("no `:`"))?;
    let name = name.trim();
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(tchar) {
        return Err(bad("the name is not a valid header name"));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(bad("devauth sets Authorization itself"));
    }
    let value = value.trim();
    if value.len() > 8192 || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            "the value has control characters or is longer than 8 KiB",
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

pub(super) fn api_data(d: &str) -> Result<DataSource, UsageError> {
    if d == "-" {
        return Ok(DataSource::Stdin);
    }
    match d.strip_prefix('@') {
        Some(path) if !path.is_empty() => Ok(DataSource::File(PathBuf::from(path))),
        _ => Err(UsageError(
            "--data takes @FILE or - (stdin); a body on the command line would show in `ps`".into(),
        )),
    }
}
