//! Which language the screen speaks: `[display] language` (a BCP 47 tag, or `"auto"`), matched
//! against the languages this device has (English always; packs compiled in or installed).
//!
//! `"auto"` reads the environment as gettext does: `LANGUAGE` (a colon-separated list, ignored
//! when the locale is `C`/`POSIX`), then `LC_ALL`, `LC_MESSAGES`, `LANG`; the first entry that
//! names a language the device has wins (a systemd service gets `LANG` from
//! /etc/locale.conf). A tag the device lacks falls back from region to language (`es-MX` → `es`,
//! `zh-TW` → `zh-Hant`, `pt-PT` → `pt-BR`, with a note), and to English when nothing matches.
//! Pure: the environment and the list of languages come in as arguments.

/// `[display] language`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LanguageSetting {
    /// From the environment (the default).
    #[default]
    Auto,
    /// A BCP 47 tag, checked by [`parse_tag`].
    Tag(String),
}

impl LanguageSetting {
    /// Reads the key's value; the error says what is accepted.
    pub fn parse(value: &str) -> Result<LanguageSetting, String> {
        if value == "auto" {
            return Ok(LanguageSetting::Auto);
        }
        parse_tag(value).map(LanguageSetting::Tag).ok_or_else(|| {
            format!("{value:?} is not \"auto\" or a BCP 47 language tag like \"de\" or \"pt-BR\"")
        })
    }
}

/// The language chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `"en"` or the tag of an available pack.
    pub tag: String,
    /// Where the wish came from: `"config"`, the variable's name, or `"default"`.
    pub source: &'static str,
    /// Said in the log when the language shown is not the one asked for.
    pub note: Option<String>,
}

/// `tag` in its canonical case (`zh-hant-tw` → `zh-Hant-TW`), or `None` when it is not a
/// well-formed language tag (a 2-3 letter language, then subtags of 1-8 letters or digits).
pub fn parse_tag(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > 35 {
        return None;
    }
    let mut out = Vec::new();
    for (i, sub) in tag.split(['-', '_']).enumerate() {
        let subtag_ok =
            !sub.is_empty() && sub.len() <= 8 && sub.chars().all(|c| c.is_ascii_alphanumeric());
        // The language itself: two or three letters.
        let language_ok =
            i > 0 || (2..=3).contains(&sub.len()) && sub.chars().all(|c| c.is_ascii_alphabetic());
        if !subtag_ok || !language_ok {
            return None;
        }
        out.push(match (i, sub.len()) {
            (0, _) => sub.to_ascii_lowercase(),
            (_, 4) if sub.chars().all(|c| c.is_ascii_alphabetic()) => {
                let lower = sub.to_ascii_lowercase();
                let mut c = lower.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
            (_, 2) => sub.to_ascii_uppercase(),
            _ => sub.to_ascii_lowercase(),
        });
    }
    Some(out.join("-"))
}

/// A POSIX locale name (`pt_BR.UTF-8@euro`) as a language tag (`pt-BR`); `C` and `POSIX` are
/// English. `None` for anything else.
pub fn from_posix(locale: &str) -> Option<String> {
    let base = locale.split(['.', '@']).next().unwrap_or("");
    match base {
        "C" | "POSIX" => Some("en".to_string()),
        "" => None,
        b => parse_tag(b),
    }
}

/// The best of `available` (tags in canonical case; English need not be listed) for `wanted`,
/// with a note when it is not the same language and region. `None` when nothing fits.
pub fn best_match(wanted: &str, available: &[String]) -> Option<(String, Option<String>)> {
    let wanted = parse_tag(wanted)?;
    let has = |t: &str| t == "en" || available.iter().any(|a| a == t);
    if has(&wanted) {
        return Some((wanted, None));
    }
    let mut parts = wanted.split('-');
    let lang = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let script = rest.iter().find(|s| s.len() == 4).copied();
    let region = rest
        .iter()
        .find(|s| s.len() == 2 || s.len() == 3 && s.chars().all(|c| c.is_ascii_digit()))
        .copied();
    let lang = match lang {
        "iw" => "he", // the old code for Hebrew
        l => l,
    };
    // Chinese is chosen by script; the region says which where no script is given.
    let candidate = match (lang, script, region) {
        ("zh", Some(s), _) => format!("zh-{s}"),
        ("zh", None, Some("TW" | "HK" | "MO")) => "zh-Hant".to_string(),
        ("zh", None, _) => "zh-Hans".to_string(),
        (l, _, _) => l.to_string(),
    };
    if has(&candidate) {
        let note = (candidate != wanted && region.is_some() && lang != "zh")
            .then(|| format!("no {wanted} pack; using {candidate}"));
        return Some((candidate, note));
    }
    // Another region of the same language, when it is the only one (pt-PT → pt-BR).
    let prefix = format!("{lang}-");
    if let Some(other) = available.iter().filter(|a| a.starts_with(&prefix)).min() {
        return Some((
            other.to_string(),
            Some(format!(
                "no {wanted} pack; using {other}, the only {lang} one"
            )),
        ));
    }
    None
}

/// The language to show. `env` reads an environment variable.
pub fn choose(
    setting: &LanguageSetting,
    env: &dyn Fn(&str) -> Option<String>,
    available: &[String],
) -> Choice {
    let english = |source, note| Choice {
        tag: "en".to_string(),
        source,
        note,
    };
    match setting {
        LanguageSetting::Tag(t) => match best_match(t, available) {
            Some((tag, note)) => Choice {
                tag,
                source: "config",
                note,
            },
            None => english("config", Some(format!("no pack for {t}; using English"))),
        },
        LanguageSetting::Auto => {
            let get = |name: &str| env(name).filter(|v| !v.is_empty());
            // The locale in effect (POSIX: LC_ALL over LC_MESSAGES over LANG).
            let locale = ["LC_ALL", "LC_MESSAGES", "LANG"].into_iter().find_map(get);
            let c_locale = locale
                .as_deref()
                .is_some_and(|l| matches!(l, "C" | "POSIX") || l.starts_with("C."));
            let mut wishes: Vec<(&'static str, String)> = Vec::new();
            if !c_locale {
                if let Some(list) = get("LANGUAGE") {
                    wishes.extend(
                        list.split(':')
                            .filter(|s| !s.is_empty())
                            .map(|s| ("LANGUAGE", s.to_string())),
                    );
                }
            }
            for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
                if let Some(v) = get(name) {
                    wishes.push((name, v));
                }
            }
            let mut skipped = Vec::new();
            for (source, wish) in wishes {
                let Some(tag) = from_posix(&wish) else {
                    continue;
                };
                if let Some((tag, note)) = best_match(&tag, available) {
                    let note = match (note, skipped.is_empty()) {
                        (n, true) => n,
                        (n, false) => Some(format!(
                            "no pack for {}{}",
                            skipped.join(", "),
                            n.map(|n| format!("; {n}")).unwrap_or_default()
                        )),
                    };
                    return Choice { tag, source, note };
                }
                skipped.push(tag);
            }
            let note = (!skipped.is_empty())
                .then(|| format!("no pack for {}; using English", skipped.join(", ")));
            english("default", note)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs() -> Vec<String> {
        ["ar", "de", "es", "pt-BR", "zh-Hans", "zh-Hant", "he"]
            .map(String::from)
            .to_vec()
    }

    fn auto(vars: &[(&str, &str)]) -> Choice {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        choose(
            &LanguageSetting::Auto,
            &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &packs(),
        )
    }

    #[test]
    fn tags_are_checked_and_put_in_canonical_case() {
        assert_eq!(parse_tag("pt-br").as_deref(), Some("pt-BR"));
        assert_eq!(parse_tag("ZH-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(parse_tag("es-419").as_deref(), Some("es-419"));
        assert_eq!(parse_tag("de_DE").as_deref(), Some("de-DE"));
        for bad in [
            "",
            "e",
            "english",
            "de--DE",
            "1a",
            "de DE",
            "x-ü",
            "de-toolongsubtag",
        ] {
            assert_eq!(parse_tag(bad), None, "{bad}");
        }
        assert_eq!(LanguageSetting::parse("auto"), Ok(LanguageSetting::Auto));
        assert_eq!(
            LanguageSetting::parse("AR"),
            Ok(LanguageSetting::Tag("ar".into()))
        );
        assert!(
            LanguageSetting::parse("Arabic!")
                .unwrap_err()
                .contains("BCP 47")
        );
    }

    #[test]
    fn posix_locales_become_tags() {
        assert_eq!(from_posix("pt_BR.UTF-8").as_deref(), Some("pt-BR"));
        assert_eq!(from_posix("de_DE.UTF-8@euro").as_deref(), Some("de-DE"));
        assert_eq!(from_posix("C.UTF-8").as_deref(), Some("en"));
        assert_eq!(from_posix("POSIX").as_deref(), Some("en"));
        assert_eq!(from_posix(".UTF-8"), None);
    }

    #[test]
    fn region_falls_back_to_language_then_english() {
        let m = |t| best_match(t, &packs());
        assert_eq!(
            m("de-AT"),
            Some(("de".into(), Some("no de-AT pack; using de".into())))
        );
        assert_eq!(m("es"), Some(("es".into(), None)));
        assert_eq!(m("zh-TW"), Some(("zh-Hant".into(), None)));
        assert_eq!(m("zh-HK"), Some(("zh-Hant".into(), None)));
        assert_eq!(m("zh-CN"), Some(("zh-Hans".into(), None)));
        assert_eq!(m("zh"), Some(("zh-Hans".into(), None)));
        assert_eq!(m("zh-Hant-HK"), Some(("zh-Hant".into(), None)));
        assert_eq!(m("iw-IL").map(|c| c.0), Some("he".into()));
        let (tag, note) = m("pt-PT").unwrap();
        assert_eq!(tag, "pt-BR");
        assert!(note.unwrap().contains("using pt-BR, the only pt one"));
        assert_eq!(m("pt").map(|c| c.0), Some("pt-BR".into()));
        assert_eq!(
            m("en-GB"),
            Some(("en".into(), Some("no en-GB pack; using en".into())))
        );
        assert_eq!(m("sv-SE"), None);
        assert_eq!(m("not a tag"), None);
    }

    #[test]
    fn auto_follows_gettexts_order() {
        assert_eq!(auto(&[]).tag, "en");
        assert_eq!(auto(&[("LANG", "de_DE.UTF-8")]).tag, "de");
        let c = auto(&[("LANG", "de_DE.UTF-8"), ("LC_MESSAGES", "es_ES.UTF-8")]);
        assert_eq!((c.tag.as_str(), c.source), ("es", "LC_MESSAGES"));
        let c = auto(&[("LC_ALL", "ar_EG.UTF-8"), ("LC_MESSAGES", "es_ES.UTF-8")]);
        assert_eq!((c.tag.as_str(), c.source), ("ar", "LC_ALL"));
        // LANGUAGE first, in its order, skipping what the device lacks.
        let c = auto(&[("LANGUAGE", "sv:he:de"), ("LANG", "de_DE.UTF-8")]);
        assert_eq!((c.tag.as_str(), c.source), ("he", "LANGUAGE"));
        assert_eq!(c.note.as_deref(), Some("no pack for sv"));
        // LANGUAGE is ignored under the C locale, which means English.
        let c = auto(&[("LANGUAGE", "de"), ("LANG", "C.UTF-8")]);
        assert_eq!(c.tag, "en");
        // Nothing the device has: English, said in the note.
        let c = auto(&[("LANG", "sv_SE.UTF-8")]);
        assert_eq!((c.tag.as_str(), c.source), ("en", "default"));
        assert_eq!(c.note.as_deref(), Some("no pack for sv-SE; using English"));
        // Empty variables count as unset.
        assert_eq!(auto(&[("LC_ALL", ""), ("LANG", "es_MX.UTF-8")]).tag, "es");
    }

    #[test]
    fn a_configured_tag_wins_over_the_environment() {
        let env = |_: &str| Some("de_DE.UTF-8".to_string());
        let c = choose(&LanguageSetting::Tag("ar".into()), &env, &packs());
        assert_eq!((c.tag.as_str(), c.source, c.note), ("ar", "config", None));
        let c = choose(&LanguageSetting::Tag("ja".into()), &env, &packs());
        assert_eq!(c.tag, "en");
        assert_eq!(c.note.as_deref(), Some("no pack for ja; using English"));
    }
}
