//! Where packs come from: compiled in (cargo features `lang-ar`, `lang-de`, …: the files of
//! `locales/packs/` included in the binary) or installed as files, `<dir>/<tag>.pack`
//! (`[display] locale_dir`, default [`DEFAULT_DIR`]), so one binary can serve every market. An
//! installed file is preferred over a compiled-in pack of the same language (it is the newer
//! choice of whoever installed it); one that cannot be read or is not a valid pack is reported
//! and the compiled-in one, if any, is used instead.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::pack::{MAX_PACK_BYTES, Pack, PackError};

/// The default `[display] locale_dir`.
pub const DEFAULT_DIR: &str = "/usr/share/devauth/locales";

macro_rules! builtin_packs {
    ($($feature:literal => $tag:literal,)*) => {
        /// The tags of the packs compiled into this binary.
        pub const BUILTIN: &[&str] = &[$(#[cfg(feature = $feature)] $tag,)*];

        fn builtin(tag: &str) -> Option<&'static [u8]> {
            match tag {
                $(#[cfg(feature = $feature)]
                $tag => Some(include_bytes!(concat!("../../locales/packs/", $tag, ".pack"))),)*
                _ => None,
            }
        }
    };
}

builtin_packs! {
    "lang-ar" => "ar",
    "lang-de" => "de",
    "lang-el" => "el",
    "lang-es" => "es",
    "lang-fr" => "fr",
    "lang-he" => "he",
    "lang-hi" => "hi",
    "lang-it" => "it",
    "lang-ja" => "ja",
    "lang-ko" => "ko",
    "lang-nl" => "nl",
    "lang-pl" => "pl",
    "lang-pt-BR" => "pt-BR",
    "lang-ru" => "ru",
    "lang-th" => "th",
    "lang-tr" => "tr",
    "lang-uk" => "uk",
    "lang-zh-Hans" => "zh-Hans",
    "lang-zh-Hant" => "zh-Hant",
}

/// Why a language's pack could not be had.
#[derive(Debug)]
pub enum LocaleError {
    /// Neither compiled in nor installed.
    NotFound {
        tag: String,
        dir: PathBuf,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Pack {
        path: PathBuf,
        error: PackError,
    },
}

impl fmt::Display for LocaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocaleError::NotFound { tag, dir } => write!(
                f,
                "no {tag} pack: not compiled in (cargo feature lang-{tag}) and no {}",
                dir.join(format!("{tag}.pack")).display()
            ),
            LocaleError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            LocaleError::Pack { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LocaleError {}

fn file_of(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("{tag}.pack"))
}

/// The languages with a pack here: compiled in or installed in `dir` (English, which needs none,
/// is not listed). Canonical tags, sorted.
pub fn available(dir: &Path) -> Vec<String> {
    let mut tags: Vec<String> = BUILTIN.iter().map(|t| t.to_string()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten().take(1000) {
            let name = e.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".pack")) else {
                continue;
            };
            if let Some(tag) = super::choose::parse_tag(stem).filter(|t| t == stem) {
                tags.push(tag);
            }
        }
    }
    tags.sort();
    tags.dedup();
    tags
}

/// Reads and checks `<dir>/<tag>.pack`.
pub fn read_file(path: &Path) -> Result<Pack, LocaleError> {
    let io = |error| LocaleError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut data = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_PACK_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    Pack::parse(Cow::Owned(data)).map_err(|error| LocaleError::Pack {
        path: path.to_path_buf(),
        error,
    })
}

/// The installed pack of `tag` (`<dir>/<tag>.pack`), if there is such a file.
pub fn installed(tag: &str, dir: &Path) -> Option<Result<Pack, LocaleError>> {
    let path = file_of(dir, tag);
    path.exists().then(|| read_file(&path))
}

/// The pack of `tag` compiled into this binary, if any.
pub fn compiled_in(tag: &str) -> Option<Result<Pack, LocaleError>> {
    builtin(tag).map(|data| {
        Pack::from_static(data).map_err(|error| LocaleError::Pack {
            path: PathBuf::from(format!("compiled-in {tag} pack")),
            error,
        })
    })
}

/// The pack of `tag`: the installed file if there is a good one, else the compiled-in pack.
/// The error of a bad installed file is returned alongside a compiled-in pack, for the log.
pub fn load(tag: &str, dir: &Path) -> (Result<Pack, LocaleError>, Option<LocaleError>) {
    match (installed(tag, dir), compiled_in(tag)) {
        (Some(Ok(p)), _) => (Ok(p), None),
        (Some(Err(e)), Some(c)) => (c, Some(e)),
        (Some(Err(e)), None) => (Err(e), None),
        (None, Some(c)) => (c, None),
        (None, None) => (
            Err(LocaleError::NotFound {
                tag: tag.to_string(),
                dir: dir.to_path_buf(),
            }),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs")
    }

    #[test]
    fn every_committed_pack_loads_and_has_every_sentence() {
        let tags = available(&packs_dir());
        assert_eq!(tags.len(), 19, "{tags:?}");
        let english =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/en.toml"))
                .unwrap();
        let keys: Vec<&str> = english
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .filter(|k| !k.starts_with('#'))
            .collect();
        assert!(keys.len() > 30);
        for tag in &tags {
            let (pack, bad) = load(tag, &packs_dir());
            assert!(bad.is_none());
            let pack = pack.unwrap();
            assert_eq!(pack.tag(), tag);
            assert_eq!(pack.rtl(), tag == "ar" || tag == "he", "{tag}");
            for k in &keys {
                assert!(pack.text(k).is_some_and(|t| !t.is_empty()), "{tag}: {k}");
            }
            assert!(pack.tiers().count() >= 4, "{tag}");
        }
    }

    #[test]
    fn a_missing_or_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _) = load("xx", dir.path());
        let e = r.unwrap_err().to_string();
        assert!(e.contains("no xx pack") && e.contains("xx.pack"), "{e}");
        std::fs::write(dir.path().join("de.pack"), b"not a pack").unwrap();
        let (r, bad) = load("de", dir.path());
        if BUILTIN.contains(&"de") {
            // The compiled-in pack stands in; the bad file is reported.
            assert!(r.is_ok());
            assert!(
                bad.unwrap()
                    .to_string()
                    .contains("not a devauth locale pack")
            );
        } else {
            assert!(
                r.unwrap_err()
                    .to_string()
                    .contains("de.pack: not a devauth locale pack")
            );
        }
        assert!(available(dir.path()).contains(&"de".to_string()));
        // Only files named by a canonical tag count.
        std::fs::write(dir.path().join("not a tag.pack"), b"").unwrap();
        std::fs::write(dir.path().join("DE.pack"), b"").unwrap();
        assert!(
            !available(dir.path())
                .iter()
                .any(|t| t == "DE" || t.contains(' '))
        );
    }

    #[test]
    fn a_huge_file_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xx.pack");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_PACK_BYTES as u64 * 2).unwrap();
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
    }
}
