//! The language the screens speak: its sentences in logical order (the catalogue: what the
//! terminal prints and what the English faces draw) and, for every language but English, its
//! locale pack (what the pixel screens draw: pre-shaped, in visual order).
//!
//! Owns turning `[display] language` and `locale_dir` into a [`Language`] ([`resolve`]: the
//! choice rules are `locale::choose`'s, the files `locale::source`'s) and the notes said in the
//! log about it. It does not lay text out (`layout/`) nor draw it (`draw.rs`).

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::catalog::{Catalog, CatalogError};
use crate::locale::Pack;
use crate::locale::choose::{LanguageSetting, choose};
use crate::locale::source;

/// A language the screens can speak. Cheap to clone (shared).
#[derive(Clone)]
pub struct Language(Arc<Inner>);

struct Inner {
    tag: String,
    words: Cow<'static, Catalog>,
    pack: Option<Pack>,
}

impl Language {
    /// English: the catalogue compiled in, drawn with the u8g2 faces.
    pub fn english() -> Language {
        static ENGLISH: OnceLock<Language> = OnceLock::new();
        ENGLISH
            .get_or_init(|| {
                Language(Arc::new(Inner {
                    tag: "en".to_string(),
                    words: Cow::Borrowed(Catalog::english()),
                    pack: None,
                }))
            })
            .clone()
    }

    /// The language of `pack`. Its sentences as written must be a complete catalogue (every
    /// key, each with its placeholders): a pack from a file is held to the same rules as
    /// `locales/*.toml`.
    pub fn from_pack(pack: Pack) -> Result<Language, CatalogError> {
        let words = Catalog::from_sentences(|key| pack.text(key))?;
        Ok(Language(Arc::new(Inner {
            tag: pack.tag().to_string(),
            words: Cow::Owned(words),
            pack: Some(pack),
        })))
    }

    /// The BCP 47 tag (`"en"`, `"pt-BR"`, `"zh-Hant"`).
    pub fn tag(&self) -> &str {
        &self.0.tag
    }

    /// The sentences, in logical order.
    pub fn words(&self) -> &Catalog {
        &self.0.words
    }

    /// The pre-shaped pack the pixel screens draw from (`None` for English).
    pub fn pack(&self) -> Option<&Pack> {
        self.0.pack.as_ref()
    }

    /// Written right to left (Arabic, Hebrew): the pixel layout mirrors.
    pub fn rtl(&self) -> bool {
        self.pack().is_some_and(Pack::rtl)
    }

    /// Whether the 128×64 OLED's one-bit size is in the pack (English always is): where it is
    /// not, the script is unreadable at that size and the OLED shows English.
    pub fn has_mono_size(&self) -> bool {
        self.pack().is_none_or(|p| p.tiers().any(|t| t.mono))
    }
}

impl PartialEq for Language {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.tag() == other.tag()
                && self.pack().map(|p| p.bytes_len()) == other.pack().map(|p| p.bytes_len()))
    }
}

impl Eq for Language {}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.tag())
    }
}

impl Default for Language {
    fn default() -> Self {
        Language::english()
    }
}

/// The language for `setting`, from the packs compiled in or installed in `dir`, with what to
/// say in the log (a fallback, a bad pack file). `env` reads an environment variable.
pub fn resolve(
    setting: &LanguageSetting,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Language, Vec<String>) {
    let available = source::available(dir);
    let choice = choose(setting, env, &available);
    let mut notes: Vec<String> = choice.note.into_iter().collect();
    if choice.tag == "en" {
        return (Language::english(), notes);
    }
    // The installed file first (the newer choice of whoever installed it), then the pack
    // compiled in; a pack that cannot be read or whose sentences are not a whole catalogue is
    // reported and the next one tried.
    let tag = choice.tag;
    let candidates = [source::installed(&tag, dir), source::compiled_in(&tag)];
    if candidates.iter().all(Option::is_none) {
        let missing = source::LocaleError::NotFound {
            tag: tag.clone(),
            dir: dir.to_path_buf(),
        };
        notes.push(format!("{missing}; using English"));
        return (Language::english(), notes);
    }
    for candidate in candidates.into_iter().flatten() {
        match candidate
            .map_err(|e| e.to_string())
            .and_then(|p| Language::from_pack(p).map_err(|e| format!("the {tag} pack's {e}")))
        {
            Ok(l) => return (l, notes),
            Err(e) => notes.push(e),
        }
    }
    notes.push("using English".to_string());
    (Language::english(), notes)
}

/// [`resolve`] with the process's environment.
pub fn resolve_from_env(setting: &LanguageSetting, dir: &Path) -> (Language, Vec<String>) {
    resolve(setting, dir, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::catalog::Msg;

    fn packs() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs")
    }

    #[test]
    fn a_tag_becomes_its_packs_language_and_english_needs_none() {
        let none = |_: &str| None;
        let (ar, notes) = resolve(&LanguageSetting::Tag("ar-EG".into()), &packs(), &none);
        assert_eq!(ar.tag(), "ar");
        assert!(ar.rtl() && ar.pack().is_some() && !ar.has_mono_size());
        assert_eq!(notes, ["no ar-EG pack; using ar"]);
        assert!(
            ar.words()
                .text(Msg::PairedTitle)
                .chars()
                .any(|c| c > '\u{600}')
        );
        let (en, notes) = resolve(&LanguageSetting::Auto, &packs(), &none);
        assert_eq!(en, Language::english());
        assert!(notes.is_empty() && en.pack().is_none() && en.has_mono_size());
        let (de, _) = resolve(&LanguageSetting::Auto, &packs(), &|n| {
            (n == "LANG").then(|| "de_AT.UTF-8".to_string())
        });
        assert_eq!(de.tag(), "de");
        assert!(!de.rtl() && de.has_mono_size());
    }

    #[test]
    fn a_pack_file_without_its_sentences_falls_back_to_english() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sv.pack"), b"DVLP but not a pack").unwrap();
        let (l, notes) = resolve(&LanguageSetting::Tag("sv".into()), dir.path(), &|_| None);
        assert_eq!(l.tag(), "en");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("sv.pack"), "{notes:?}");
        assert_eq!(notes[1], "using English");
        // A pack whose sentences lack a placeholder is refused as a catalogue would be.
        let mut bytes = std::fs::read(packs().join("de.pack")).unwrap();
        let at = bytes.windows(6).position(|w| w == b"{code}").unwrap();
        bytes[at + 1..at + 5].copy_from_slice(b"kode");
        std::fs::write(dir.path().join("de.pack"), &bytes).unwrap();
        let (l, notes) = resolve(&LanguageSetting::Tag("de".into()), dir.path(), &|_| None);
        assert!(
            notes[0].starts_with("the de pack's catalogue: "),
            "{notes:?}"
        );
        if source::BUILTIN.contains(&"de") {
            // The compiled-in pack stands in.
            assert_eq!((l.tag(), notes.len()), ("de", 1));
        } else {
            assert_eq!(l.tag(), "en");
        }
    }
}
