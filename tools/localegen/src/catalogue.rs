//! A message catalogue: `locales/<tag>.toml`, keys (tables flattened with dots) to sentences
//! with `{name}` placeholders. Owns reading a catalogue and splitting a sentence at its
//! placeholders; it does not shape or lay anything out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One language's sentences, by key.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub tag: String,
    pub messages: BTreeMap<String, String>,
}

/// A sentence, split at its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Slot(String),
}

impl Catalogue {
    pub fn load(path: &Path) -> Result<Catalogue, String> {
        let tag = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no language tag in the file name", path.display()))?
            .to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut messages = BTreeMap::new();
        flatten("", &value, &mut messages).map_err(|e| format!("{}: {e}", path.display()))?;
        for (key, sentence) in &messages {
            pieces(sentence).map_err(|e| format!("{}: {key}: {e}", path.display()))?;
        }
        Ok(Catalogue { tag, messages })
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("{key}: not a string or a table")),
        }
    }
    Ok(())
}

/// `sentence` split at `{name}` placeholders (names are `[a-z_]+`); `{{` and `}}` are literal
/// braces. Any other brace, a line break or a control character is an error: the screen has no
/// way to draw them.
pub fn pieces(sentence: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = sentence.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.clone().next() == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.clone().next() == Some('}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(n @ ('a'..='z' | '_')) => name.push(n),
                        _ => {
                            return Err(format!(
                                "unclosed or malformed placeholder in {sentence:?}"
                            ));
                        }
                    }
                }
                if name.is_empty() {
                    return Err(format!("empty placeholder in {sentence:?}"));
                }
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Slot(name));
            }
            '}' => return Err(format!("stray '}}' in {sentence:?}")),
            c if c.is_control() => return Err(format!("control character {c:?} in {sentence:?}")),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    if out.is_empty() {
        return Err("empty sentence".to_string());
    }
    Ok(out)
}

/// The placeholder names of `sentence`.
pub fn placeholders(sentence: &str) -> BTreeSet<String> {
    pieces(sentence)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(s) => Some(s),
            Piece::Text(_) => None,
        })
        .collect()
}

/// What is missing or different in `other` against the English source: every key, and the same
/// placeholders in each sentence.
pub fn compare(source: &Catalogue, other: &Catalogue) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, sentence) in &source.messages {
        match other.messages.get(key) {
            None => problems.push(format!("{}: missing {key}", other.tag)),
            Some(t) if placeholders(t) != placeholders(sentence) => problems.push(format!(
                "{}: {key}: placeholders {:?}, English has {:?}",
                other.tag,
                placeholders(t),
                placeholders(sentence)
            )),
            Some(_) => {}
        }
    }
    for key in other.messages.keys() {
        if !source.messages.contains_key(key) {
            problems.push(format!(
                "{}: {key} is not in the English catalogue",
                other.tag
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_placeholders() {
        assert_eq!(
            pieces("Go to {url} now").unwrap(),
            vec![
                Piece::Text("Go to ".into()),
                Piece::Slot("url".into()),
                Piece::Text(" now".into())
            ]
        );
        assert!(pieces("a {b").is_err());
        assert!(pieces("a } b").is_err());
        assert!(pieces("a\nb").is_err());
        assert!(pieces("{}").is_err());
        assert_eq!(pieces("{{x}}").unwrap(), vec![Piece::Text("{x}".into())]);
    }
}
