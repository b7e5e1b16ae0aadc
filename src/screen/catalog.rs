//! The screens' words: the message catalogue (`locales/en.toml`, compiled in), its keys
//! ([`Msg`]), its placeholders ([`Slot`]) and filling them in.
//!
//! Owns reading a catalogue file and checking it (every key there, no unknown key, each sentence
//! with exactly the placeholders its key takes), so a translation is held to the same rules as
//! the English source. It does not lay text out (`layout/`), draw it (`draw.rs`) or decide which
//! language a device uses: English is the only one compiled in here, and the layout asks for
//! sentences by key, never by their English words.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// The English catalogue, the source language, as shipped in `locales/en.toml`.
pub const ENGLISH_SOURCE: &str = include_str!("../../locales/en.toml");

/// The English catalogue without its comment and blank lines: what the binary carries (the
/// comments are for translators and would cost about 3.5 KB).
static ENGLISH_COMPACT: [u8; compact_len(ENGLISH_SOURCE.as_bytes())] =
    compact(ENGLISH_SOURCE.as_bytes());

/// Where each English sentence is in [`ENGLISH_COMPACT`] (between its quotes), in
/// [`Msg::ALL`]'s order, found at compile time: a key missing from `locales/en.toml`, or an
/// escape in an English sentence (write the character itself), fails the build. So the binary
/// carries no catalogue reader for English, only the text.
static ENGLISH_SPANS: [(usize, usize); Msg::COUNT] = spans(&ENGLISH_COMPACT);

const fn spans(src: &[u8]) -> [(usize, usize); Msg::COUNT] {
    let mut out = [(0, 0); Msg::COUNT];
    let mut k = 0;
    while k < Msg::COUNT {
        out[k] = span_of(src, Msg::KEYS[k].as_bytes());
        k += 1;
    }
    out
}

/// Whether the line at `i` is `key` followed by a space or `=`.
const fn is_key_at(src: &[u8], i: usize, key: &[u8]) -> bool {
    if i + key.len() >= src.len() {
        return false;
    }
    let mut j = 0;
    while j < key.len() {
        if src[i + j] != key[j] {
            return false;
        }
        j += 1;
    }
    src[i + key.len()] == b' ' || src[i + key.len()] == b'='
}

// Only ever evaluated at compile time (the initializer of a static): a panic here is a build
// error naming what is wrong with en.toml, never a panic at run time.
#[allow(clippy::panic)]
const fn span_of(src: &[u8], key: &[u8]) -> (usize, usize) {
    let mut i = 0;
    while i < src.len() {
        if is_key_at(src, i, key) {
            let mut j = i + key.len();
            while j < src.len() && (src[j] == b' ' || src[j] == b'=') {
                j += 1;
            }
            if j < src.len() && src[j] == b'"' {
                let start = j + 1;
                let mut end = start;
                while end < src.len() && src[end] != b'"' {
                    if src[end] == b'\\' {
                        panic!("locales/en.toml: no escapes in English sentences");
                    }
                    end += 1;
                }
                if end < src.len() {
                    return (start, end);
                }
            }
            panic!("locales/en.toml: a sentence is not in double quotes");
        }
        while i < src.len() && src[i] != b'\n' {
            i += 1;
        }
        i += 1;
    }
    panic!("locales/en.toml lacks a key of screen::catalog::Msg")
}

/// Whether the line starting at `i` is a comment or blank (only whole lines are dropped: a `#`
/// inside a value stays).
const fn dropped_line(src: &[u8], mut i: usize) -> bool {
    while i < src.len() && (src[i] == b' ' || src[i] == b'\t' || src[i] == b'\r') {
        i += 1;
    }
    i >= src.len() || src[i] == b'#' || src[i] == b'\n'
}

const fn compact_len(src: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < src.len() {
        let keep = !dropped_line(src, i);
        while i < src.len() && src[i] != b'\n' {
            n += keep as usize;
            i += 1;
        }
        n += keep as usize;
        i += 1;
    }
    n
}

const fn compact<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut out = [b'\n'; N];
    let (mut i, mut n) = (0, 0);
    while i < src.len() {
        let keep = !dropped_line(src, i);
        while i < src.len() && src[i] != b'\n' {
            if keep {
                out[n] = src[i];
                n += 1;
            }
            i += 1;
        }
        if keep {
            n += 1;
        }
        i += 1;
    }
    out
}

/// The largest catalogue file read (the English one is about 6 KB).
pub const MAX_CATALOGUE_BYTES: usize = 64 * 1024;

/// A value filled into a sentence where its `{name}` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// `{url}`: the verification URL as typed (no `https://`).
    Url,
    /// `{code}`: the user code exactly as sent.
    Code,
    /// `{minutes}`: the time left as `m:ss` (or `h:mm:ss`).
    Minutes,
    /// `{seconds}`: a whole number of seconds.
    Seconds,
    /// `{account}`: e-mail or user name.
    Account,
    /// `{name}`: the person's name (the ID token's `name` claim).
    Name,
    /// `{device}`: `[display] device_name`.
    Device,
    /// `{profile}`: the account profile being added.
    Profile,
}

impl Slot {
    pub const ALL: [Slot; 8] = [
        Slot::Url,
        Slot::Code,
        Slot::Minutes,
        Slot::Seconds,
        Slot::Account,
        Slot::Name,
        Slot::Device,
        Slot::Profile,
    ];

    /// The name written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Url => "url",
            Slot::Code => "code",
            Slot::Minutes => "minutes",
            Slot::Seconds => "seconds",
            Slot::Account => "account",
            Slot::Name => "name",
            Slot::Device => "device",
            Slot::Profile => "profile",
        }
    }

    fn from_name(name: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.name() == name)
    }
}

macro_rules! messages {
    ($($variant:ident = $key:literal [$($slot:ident),*];)*) => {
        /// A sentence of the catalogue, by key. The key is the name in the catalogue file.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Msg {
            $($variant,)*
        }

        impl Msg {
            pub const ALL: &'static [Msg] = &[$(Msg::$variant,)*];
            /// The keys, in [`Msg::ALL`]'s order.
            pub const KEYS: &'static [&'static str] = &[$($key,)*];
            pub const COUNT: usize = Msg::KEYS.len();

            /// The key in the catalogue file.
            pub fn key(self) -> &'static str {
                match self {
                    $(Msg::$variant => $key,)*
                }
            }

            /// The placeholders the sentence takes (each exactly once).
            pub fn slots(self) -> &'static [Slot] {
                match self {
                    $(Msg::$variant => &[$(Slot::$slot),*],)*
                }
            }
        }
    };
}

messages! {
    CodeTitle = "code_title" [];
    CodeTitleRenewed = "code_title_renewed" [];
    CodeAdding = "code_adding" [Profile];
    CodeSteps = "code_steps" [Url, Code];
    CodeStepsShort = "code_steps_short" [Url, Code];
    SigninSteps = "signin_steps" [Url];
    CodeExpires = "code_expires" [Minutes];
    CodeExpiresNew = "code_expires_new" [Minutes];
    CodeNew = "code_new" [];
    CodeExpired = "code_expired" [];
    WarningDevice = "warning_device" [Device];
    Warning = "warning" [];
    RetryingTitle = "retrying_title" [];
    RetryingBody = "retrying_body" [];
    RetryingCode = "retrying_code" [];
    RetryingIn = "retrying_in" [Seconds];
    RetryingInCode = "retrying_in_code" [Seconds, Minutes];
    ClockTitle = "clock_title" [];
    ClockBody = "clock_body" [];
    PairedTitle = "paired_title" [];
    PairedWelcome = "paired_welcome" [Name];
    PairedAccount = "paired_account" [Account];
    PairedBody = "paired_body" [];
    PairedUnlink = "paired_unlink" [];
    DeniedTitle = "denied_title" [];
    DeniedBody = "denied_body" [];
    StoppedTitle = "stopped_title" [];
    StoppedBody = "stopped_body" [];
    ErrorTitle = "error_title" [];
    ErrorNetwork = "error_network" [];
    ErrorService = "error_service" [];
    ErrorStorage = "error_storage" [];
    ErrorSetup = "error_setup" [];
    ErrorOther = "error_other" [];
    TerminalScan = "terminal_scan" [];
    TerminalCode = "terminal_code" [Code];
    TerminalNoQr = "terminal_no_qr" [];
}

/// A piece of a sentence: words, or a placeholder to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Slot(Slot),
}

/// Values for the placeholders of one sentence.
pub type Args<'a> = &'a [(Slot, &'a str)];

/// What is wrong with a catalogue file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    TooLarge(usize),
    /// Not TOML, or not a table of strings.
    Syntax(String),
    Missing(&'static str),
    Unknown(String),
    Placeholders {
        key: &'static str,
        detail: String,
    },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::TooLarge(n) => write!(
                f,
                "catalogue: {n} bytes, more than {MAX_CATALOGUE_BYTES} bytes"
            ),
            CatalogError::Syntax(e) => write!(f, "catalogue: {e}"),
            CatalogError::Missing(k) => write!(f, "catalogue: no sentence for {k:?}"),
            CatalogError::Unknown(k) => write!(f, "catalogue: unknown key {k:?}"),
            CatalogError::Placeholders { key, detail } => {
                write!(f, "catalogue: {key}: {detail}")
            }
        }
    }
}

impl std::error::Error for CatalogError {}

/// Every sentence of one language, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// In [`Msg::ALL`]'s order.
    texts: Vec<String>,
}

impl Catalog {
    /// Reads a catalogue file: a TOML table of `key = "sentence"`. Every key of [`Msg`] must be
    /// there, no other, and each sentence must hold exactly its key's placeholders, once each.
    pub fn parse(source: &str) -> Result<Catalog, CatalogError> {
        if source.len() > MAX_CATALOGUE_BYTES {
            return Err(CatalogError::TooLarge(source.len()));
        }
        let mut table = read_lines(source)?;
        let mut texts = Vec::with_capacity(Msg::ALL.len());
        for &m in Msg::ALL {
            let text = table
                .remove(m.key())
                .ok_or(CatalogError::Missing(m.key()))?;
            check_slots(m, &text)?;
            texts.push(text);
        }
        if let Some(k) = table.into_keys().next() {
            return Err(CatalogError::Unknown(k));
        }
        Ok(Catalog { texts })
    }

    /// A catalogue from sentences looked up by key (a locale pack's, as its translator wrote
    /// them), held to [`Catalog::parse`]'s rules: every key there, each sentence with exactly
    /// its key's placeholders.
    pub fn from_sentences<'a>(
        sentence: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Catalog, CatalogError> {
        let mut texts = Vec::with_capacity(Msg::COUNT);
        for &m in Msg::ALL {
            let text = sentence(m.key()).ok_or(CatalogError::Missing(m.key()))?;
            check_slots(m, text)?;
            texts.push(text.to_string());
        }
        Ok(Catalog { texts })
    }

    /// The English catalogue compiled into devauth: its sentences were found at compile time
    /// ([`ENGLISH_SPANS`]); a test holds the file to [`Catalog::parse`]'s rules.
    pub fn english() -> &'static Catalog {
        static ENGLISH: OnceLock<Catalog> = OnceLock::new();
        ENGLISH.get_or_init(|| Catalog {
            texts: ENGLISH_SPANS
                .iter()
                .map(|&(a, b)| {
                    ENGLISH_COMPACT
                        .get(a..b)
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .unwrap_or("")
                        .to_string()
                })
                .collect(),
        })
    }

    /// The sentence as written, placeholders included.
    pub fn raw(&self, m: Msg) -> &str {
        let i = Msg::ALL.iter().position(|x| *x == m).unwrap_or(0);
        self.texts.get(i).map_or("", String::as_str)
    }

    /// The sentence cut at its placeholders, `{{`/`}}` kept as written (see [`unescape`]).
    pub fn parts(&self, m: Msg) -> Vec<Part<'_>> {
        split(self.raw(m))
    }

    /// The sentence with its placeholders filled from `args` (a missing one is left empty).
    pub fn fill(&self, m: Msg, args: Args) -> String {
        let mut out = String::new();
        for part in self.parts(m) {
            match part {
                Part::Text(t) => out.push_str(&unescape(t)),
                Part::Slot(s) => {
                    if let Some((_, v)) = args.iter().find(|(k, _)| *k == s) {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }

    /// A sentence without placeholders.
    pub fn text(&self, m: Msg) -> String {
        self.fill(m, &[])
    }
}

/// The `key = "sentence"` lines of a catalogue file. The format is TOML restricted to what a
/// catalogue needs (a hand-written reader: the general TOML reader costs kilobytes of code per
/// target type): one key per line, a bare key, a basic string with TOML's escapes (`\"`, `\\`,
/// `\n`, `\t`, `\uXXXX`, `\UXXXXXXXX`), comment lines and blank lines.
fn read_lines(source: &str) -> Result<BTreeMap<String, String>, CatalogError> {
    let mut table = BTreeMap::new();
    for (n, line) in source.lines().enumerate() {
        let bad = |why: &str| CatalogError::Syntax(format!("line {}: {why}", n + 1));
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = line
            .split_once('=')
            .ok_or_else(|| bad("not key = \"sentence\""))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad("a key is letters, digits, _ and -"));
        }
        let rest = rest.trim_start();
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| bad("the sentence is not in double quotes"))?;
        let mut value = String::new();
        let mut chars = body.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => {
                    let escaped = match chars.next() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some(u @ ('u' | 'U')) => {
                            let len = if u == 'u' { 4 } else { 8 };
                            let hex: String = chars.by_ref().take(len).collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == len)
                                .and_then(char::from_u32)
                                .ok_or_else(|| bad("a bad \\u escape"))?
                        }
                        _ => return Err(bad("an unknown escape")),
                    };
                    value.push(escaped);
                }
                c if c.is_control() => return Err(bad("a control character in the sentence")),
                c => value.push(c),
            }
        }
        let after = chars.as_str().trim_start();
        if !closed || !(after.is_empty() || after.starts_with('#')) {
            return Err(bad("the sentence does not end in a double quote"));
        }
        if table.insert(key.to_string(), value).is_some() {
            return Err(bad("the key is there twice"));
        }
    }
    Ok(table)
}

/// `{{` and `}}` as the braces they stand for.
pub fn unescape(text: &str) -> String {
    text.replace("{{", "{").replace("}}", "}")
}

/// Splits at `{name}` placeholders; text between them keeps its `{{`/`}}` escapes. A brace that
/// opens no known placeholder stays text (`parse` refuses such files).
fn split(text: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes.get(i..i + 2) {
            Some(b"{{") | Some(b"}}") => {
                i += 2;
                continue;
            }
            _ => {}
        }
        if bytes.get(i) == Some(&b'{') {
            let slot = text
                .get(i + 1..)
                .and_then(|rest| rest.find('}').map(|end| (rest, end)))
                .and_then(|(rest, end)| {
                    rest.get(..end).and_then(Slot::from_name).map(|s| (s, end))
                });
            if let Some((slot, end)) = slot {
                if let Some(t) = text.get(start..i).filter(|t| !t.is_empty()) {
                    parts.push(Part::Text(t));
                }
                parts.push(Part::Slot(slot));
                i += end + 2;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    if let Some(t) = text.get(start..).filter(|t| !t.is_empty()) {
        parts.push(Part::Text(t));
    }
    parts
}

fn check_slots(m: Msg, text: &str) -> Result<(), CatalogError> {
    let bad = |detail: String| CatalogError::Placeholders {
        key: m.key(),
        detail,
    };
    let mut seen = Vec::new();
    for part in split(text) {
        match part {
            Part::Slot(s) if !m.slots().contains(&s) => {
                return Err(bad(format!("{{{}}} does not belong here", s.name())));
            }
            Part::Slot(s) if seen.contains(&s) => {
                return Err(bad(format!("{{{}}} twice", s.name())));
            }
            Part::Slot(s) => seen.push(s),
            Part::Text(t) => {
                // Left after the escapes: a lone brace is a typo or an unknown placeholder.
                let rest = t.replace("{{", "").replace("}}", "");
                if rest.contains(['{', '}']) {
                    return Err(bad(format!("a brace that is no placeholder in {t:?}")));
                }
            }
        }
    }
    if let Some(s) = m.slots().iter().find(|s| !seen.contains(s)) {
        return Err(bad(format!("{{{}}} is missing", s.name())));
    }
    if text.trim().is_empty() {
        return Err(bad("empty".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_english_catalogue_is_complete_and_checked() {
        let c = Catalog::parse(ENGLISH_SOURCE).unwrap();
        assert_eq!(&c, Catalog::english());
        for &m in Msg::ALL {
            assert!(!c.raw(m).is_empty(), "{m:?}");
            // Words only from the file: no sentence is its own key.
            assert_ne!(c.raw(m), m.key());
        }
        assert_eq!(c.text(Msg::PairedTitle), "Paired");
        assert_eq!(
            c.fill(Msg::PairedWelcome, &[(Slot::Name, "José")]),
            "Welcome, José"
        );
        assert_eq!(
            c.parts(Msg::CodeStepsShort),
            vec![
                Part::Text("Go to "),
                Part::Slot(Slot::Url),
                Part::Text(" and enter "),
                Part::Slot(Slot::Code)
            ]
        );
    }

    /// Every translation in `locales/` has every key, no other, and the same placeholders.
    #[test]
    fn every_catalogue_in_locales_is_complete() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = Catalog::parse(&text) {
                    panic!("{}: {e}", path.display());
                }
                n += 1;
            }
        }
        assert!(n >= 1);
    }

    #[test]
    fn the_compact_english_is_the_same_catalogue_without_comments() {
        assert_eq!(Catalog::english(), &Catalog::parse(ENGLISH_SOURCE).unwrap());
        let compact = std::str::from_utf8(&ENGLISH_COMPACT).unwrap();
        assert!(!compact.contains("\n#") && !compact.starts_with('#'));
        assert!(
            compact.len() * 2 < ENGLISH_SOURCE.len(),
            "{}",
            compact.len()
        );
        assert_eq!(
            Catalog::parse(compact).unwrap(),
            Catalog::parse(ENGLISH_SOURCE).unwrap()
        );
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = Msg::ALL.iter().map(|m| m.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Msg::ALL.len());
    }

    /// A catalogue made from the English one with one sentence replaced.
    fn with(key: &str, sentence: &str) -> String {
        ENGLISH_SOURCE
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} = ")) {
                    format!("{key} = {sentence:?}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn translations_are_held_to_the_same_placeholders() {
        // Reordered placeholders are fine (word order differs between languages).
        let ok = with("code_steps_short", "{code} ← {url} zu");
        let c = Catalog::parse(&ok).unwrap();
        assert_eq!(
            c.fill(
                Msg::CodeStepsShort,
                &[(Slot::Url, "example.com"), (Slot::Code, "AB-CD")]
            ),
            "AB-CD ← example.com zu"
        );
        for (key, sentence, want) in [
            ("code_steps_short", "Go to {url}", "{code} is missing"),
            ("code_expires", "{minutes} {minutes}", "{minutes} twice"),
            ("paired_title", "Hi {name}", "{name} does not belong here"),
            ("paired_title", "Hi {nme}", "a brace that is no placeholder"),
            ("paired_title", "  ", "empty"),
        ] {
            let e = Catalog::parse(&with(key, sentence)).unwrap_err();
            assert!(e.to_string().contains(want), "{key}: {e}");
        }
        let braces = Catalog::parse(&with("paired_title", "{{Paired}}")).unwrap();
        assert_eq!(braces.text(Msg::PairedTitle), "{Paired}");
        let missing = ENGLISH_SOURCE.replace("denied_body =", "# denied_body =");
        assert_eq!(
            Catalog::parse(&missing),
            Err(CatalogError::Missing("denied_body"))
        );
        let extra = format!("{ENGLISH_SOURCE}\nspare = \"x\"\n");
        assert_eq!(
            Catalog::parse(&extra),
            Err(CatalogError::Unknown("spare".into()))
        );
        for bad in [
            "code_title = 3",
            "code_title = 'x'",
            "[table]",
            "code_title = \"x",
            "code_title = \"x\" y",
            "code_title = \"\\q\"",
            "code_title = \"\\u12\"",
        ] {
            assert!(
                matches!(Catalog::parse(bad), Err(CatalogError::Syntax(_))),
                "{bad}"
            );
        }
        let twice = format!("{ENGLISH_SOURCE}\ncode_title = \"again\"\n");
        assert!(
            matches!(Catalog::parse(&twice), Err(CatalogError::Syntax(e)) if e.contains("twice"))
        );
        let escaped = ENGLISH_SOURCE.replace(
            "paired_title = \"Paired\"",
            r#"paired_title = "Pa\u00efred \"x\" \U0001F600" # a comment"#,
        );
        assert_eq!(
            Catalog::parse(&escaped).unwrap().text(Msg::PairedTitle),
            "Païred \"x\" \u{1F600}"
        );
        let huge = "#".repeat(MAX_CATALOGUE_BYTES + 1);
        assert!(matches!(
            Catalog::parse(&huge),
            Err(CatalogError::TooLarge(_))
        ));
    }
}
