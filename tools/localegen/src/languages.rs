//! The languages the generator knows: each one's paragraph direction, its Noto font stack (from
//! Debian's fonts-noto-core and fonts-noto-cjk, OFL-1.1), the language tag the shaper is given
//! and how its lines may be broken. Also which placeholders are always left to right.

use icu_segmenter::options::{LineBreakOptions, LineBreakStrictness, LineBreakWordOption};

/// Where Debian installs the fonts (fonts-noto-core, fonts-noto-cjk).
pub const NOTO_CORE: &str = "/usr/share/fonts/truetype/noto";
pub const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto";

/// A font file and the face inside it (collections hold several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FontSpec {
    pub dir: &'static str,
    pub file: &'static str,
    pub face: u32,
}

impl FontSpec {
    pub fn path(&self) -> String {
        format!("{}/{}", self.dir, self.file)
    }
}

const fn core(file: &'static str) -> FontSpec {
    FontSpec {
        dir: NOTO_CORE,
        file,
        face: 0,
    }
}

const fn cjk(face: u32) -> FontSpec {
    FontSpec {
        dir: NOTO_CJK,
        file: "NotoSansCJK-Regular.ttc",
        face,
    }
}

const SANS: FontSpec = core("NotoSans-Regular.ttf");
const ARABIC: FontSpec = core("NotoSansArabic-Regular.ttf");
const HEBREW: FontSpec = core("NotoSansHebrew-Regular.ttf");
const DEVANAGARI: FontSpec = core("NotoSansDevanagari-Regular.ttf");
const THAI: FontSpec = core("NotoSansThai-Regular.ttf");
// Faces of NotoSansCJK-Regular.ttc: 0 JP, 1 KR, 2 SC, 3 TC (fc-query).
const CJK_JP: FontSpec = cjk(0);
const CJK_KR: FontSpec = cjk(1);
const CJK_SC: FontSpec = cjk(2);
const CJK_TC: FontSpec = cjk(3);

/// How lines of a language may be broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaking {
    /// UAX #14 (spaces, hyphens, punctuation; Thai by ICU's dictionary).
    Standard,
    /// UAX #14 with strict kinsoku: between ideographs and kana, never before small kana,
    /// the prolonged sound mark or closing punctuation.
    Cjk,
    /// Korean: at spaces only (keep-all), as Korean is set.
    KeepAll,
}

impl Breaking {
    pub fn options(self) -> LineBreakOptions<'static> {
        let mut o = LineBreakOptions::default();
        match self {
            Breaking::Standard => {}
            Breaking::Cjk => o.strictness = Some(LineBreakStrictness::Strict),
            Breaking::KeepAll => o.word_option = Some(LineBreakWordOption::KeepAll),
        }
        o
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Language {
    /// BCP 47, as the catalogue file is named.
    pub tag: &'static str,
    pub rtl: bool,
    /// Tried in order for every character: the first face that has it draws it.
    pub fonts: &'static [FontSpec],
    /// The language given to the shaper (OpenType `locl` forms).
    pub shaping: &'static str,
    pub breaking: Breaking,
    /// Drawn on 1-bit panels at the smallest size (the 128×64 OLED). Arabic, Devanagari and
    /// Han (Chinese, Japanese) lose their dots, matras and strokes at 11 px in one bit per pixel
    /// (looked at in docs/locales.md): those packs carry no 1-bit size, and devauth shows
    /// English there instead.
    pub mono: bool,
}

const fn lang(tag: &'static str, fonts: &'static [FontSpec]) -> Language {
    Language {
        tag,
        rtl: false,
        fonts,
        shaping: tag,
        breaking: Breaking::Standard,
        mono: true,
    }
}

pub const LANGUAGES: &[Language] = &[
    lang("en", &[SANS]),
    lang("es", &[SANS]),
    lang("pt-BR", &[SANS]),
    lang("fr", &[SANS]),
    lang("de", &[SANS]),
    lang("it", &[SANS]),
    lang("nl", &[SANS]),
    lang("pl", &[SANS]),
    lang("tr", &[SANS]),
    lang("ru", &[SANS]),
    lang("uk", &[SANS]),
    lang("el", &[SANS]),
    Language {
        rtl: true,
        mono: false,
        ..lang("ar", &[ARABIC, SANS])
    },
    Language {
        rtl: true,
        ..lang("he", &[HEBREW, SANS])
    },
    Language {
        mono: false,
        ..lang("hi", &[DEVANAGARI, SANS])
    },
    lang("th", &[THAI, SANS]),
    Language {
        mono: false,
        shaping: "zh-Hans",
        breaking: Breaking::Cjk,
        ..lang("zh-Hans", &[CJK_SC, SANS])
    },
    Language {
        mono: false,
        shaping: "zh-Hant",
        breaking: Breaking::Cjk,
        ..lang("zh-Hant", &[CJK_TC, SANS])
    },
    Language {
        mono: false,
        breaking: Breaking::Cjk,
        ..lang("ja", &[CJK_JP, SANS])
    },
    Language {
        breaking: Breaking::KeepAll,
        ..lang("ko", &[CJK_KR, SANS])
    },
];

pub fn find(tag: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.tag == tag)
}

/// How a placeholder's content runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// Codes, URLs: left to right in every language (an LRI…PDI isolate), breaks like a word.
    Ltr,
    /// Numbers and times: left to right too, and they break like numbers.
    Number,
    /// Names and other text from outside: its own direction (an FSI…PDI isolate), decided on
    /// the device by its first strong character.
    Text,
}

pub fn slot_kind(name: &str) -> SlotKind {
    match name {
        "url" | "code" => SlotKind::Ltr,
        "minutes" | "seconds" | "time" | "count" => SlotKind::Number,
        _ => SlotKind::Text,
    }
}
