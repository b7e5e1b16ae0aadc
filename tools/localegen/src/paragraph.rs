//! One sentence made ready for the device: bidi levels (UAX #9, unicode-bidi), line-break
//! opportunities (UAX #14 and ICU's Thai dictionary, icu_segmenter), font and script runs, each
//! run shaped (harfrust), then cut into words the device wraps into lines.
//!
//! Placeholders become isolates: `{code}`, `{url}` and numbers an LRI…PDI (they stay left to
//! right in Arabic and Hebrew, so "019-450-730" never reads "730-450-019"), names an FSI…PDI
//! whose direction the device decides from the name itself. Each slot keeps the levels of its
//! isolate initiator, its PDI and its content either way, so the device orders a line exactly as
//! UAX #9's rule L2 would with the real text in place.

use harfrust::Script;
use icu_segmenter::LineSegmenterBorrowed;
use unicode_bidi::{BidiInfo, Level};

use crate::catalogue::{Piece, pieces};
use crate::fonts::{Fonts, ShapedGlyph, has_char, shape};
use crate::languages::{FontSpec, Language, SlotKind, slot_kind};

/// A glyph placed by the shaper, in font units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyph {
    pub font: FontSpec,
    pub gid: u32,
    pub x_advance: i32,
    pub x_offset: i32,
    pub y_offset: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub kind: SlotKind,
    /// Level of the isolate initiator and of its PDI (as resolved among their neighbours).
    pub open: u8,
    pub close: u8,
    /// Level of the content when it runs left to right, and when it runs right to left.
    pub ltr: u8,
    pub rtl: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Glyphs in visual order (right to left runs come out of the shaper reversed).
    Run {
        level: u8,
        glyphs: Vec<Glyph>,
    },
    Slot(Slot),
}

/// A space after a word: dropped at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub advance: i32,
    pub level: u8,
}

/// What cannot be broken: the items between two break opportunities, in logical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub items: Vec<Item>,
    pub space: Option<Space>,
}

/// One call of the shaper, kept so it can be compared with `hb-shape`.
#[derive(Debug, Clone)]
pub struct ShapingRun {
    pub font: FontSpec,
    pub text: String,
    pub rtl: bool,
    pub script: Script,
    pub language: &'static str,
    pub glyphs: Vec<ShapedGlyph>,
}

#[derive(Debug, Clone)]
pub struct Paragraph {
    pub words: Vec<Word>,
    pub runs: Vec<ShapingRun>,
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Char(char),
    Slot(usize),
}

const LRI: char = '\u{2066}';
const RLI: char = '\u{2067}';
const PDI: char = '\u{2069}';

/// Byte offsets of each unit in a string built from the units.
struct Layout {
    text: String,
    /// Per unit: the offset of its character, or of a slot's initiator, content and PDI.
    at: Vec<[usize; 3]>,
}

fn lay_out(units: &[Unit], slot_text: impl Fn(usize) -> String) -> Layout {
    let mut text = String::new();
    let mut at = Vec::with_capacity(units.len());
    for u in units {
        match *u {
            Unit::Char(c) => {
                let i = text.len();
                text.push(c);
                at.push([i, i, i]);
            }
            Unit::Slot(s) => {
                let t = slot_text(s);
                let mut chars = t.chars();
                let mut offs = [0; 3];
                for o in &mut offs {
                    *o = text.len();
                    if let Some(c) = chars.next() {
                        text.push(c);
                    }
                }
                at.push(offs);
            }
        }
    }
    Layout { text, at }
}

pub fn build(
    lang: &Language,
    sentence: &str,
    fonts: &mut Fonts,
    segmenter: &LineSegmenterBorrowed<'static>,
) -> Result<Paragraph, String> {
    let mut units = Vec::new();
    let mut names = Vec::new();
    for p in pieces(sentence)? {
        match p {
            Piece::Text(t) => units.extend(t.chars().map(Unit::Char)),
            Piece::Slot(s) => {
                units.push(Unit::Slot(names.len()));
                names.push(s);
            }
        }
    }
    let para = if lang.rtl { Level::rtl() } else { Level::ltr() };

    // Levels: once with every slot's content left to right, once right to left.
    let ltr = lay_out(&units, |_| format!("{LRI}x{PDI}"));
    let rtl = lay_out(&units, |_| format!("{RLI}\u{5d0}{PDI}"));
    let ltr_info = BidiInfo::new(&ltr.text, Some(para));
    let rtl_info = BidiInfo::new(&rtl.text, Some(para));
    let level = |info: &BidiInfo, i: usize| info.levels.get(i).map_or(0, |l| l.number());
    let char_level: Vec<u8> = ltr.at.iter().map(|a| level(&ltr_info, a[0])).collect();
    let slots: Vec<Slot> = units
        .iter()
        .enumerate()
        .filter_map(|(u, unit)| match unit {
            Unit::Slot(s) => Some((u, *s)),
            Unit::Char(_) => None,
        })
        .map(|(u, s)| Slot {
            name: names[s].clone(),
            kind: slot_kind(&names[s]),
            open: level(&ltr_info, ltr.at[u][0]),
            close: level(&ltr_info, ltr.at[u][2]),
            ltr: level(&ltr_info, ltr.at[u][1]),
            rtl: level(&rtl_info, rtl.at[u][1]),
        })
        .collect();

    // Break opportunities (before unit i), with each slot standing in as a digit or a letter.
    let breaking = lay_out(&units, |s| match slot_kind(&names[s]) {
        SlotKind::Number => "0".to_string(),
        _ => "A".to_string(),
    });
    let break_offsets: Vec<usize> = segmenter.segment_str(&breaking.text).collect();
    let mut breaks: Vec<usize> = breaking
        .at
        .iter()
        .enumerate()
        .filter(|(_, a)| break_offsets.contains(&a[0]))
        .map(|(u, _)| u)
        .collect();
    // The URL and the code may stand as blocks of their own (docs/locales.md): a break is
    // always allowed on both sides of them.
    for (u, unit) in units.iter().enumerate() {
        if let Unit::Slot(s) = unit
            && slot_kind(&names[*s]) == SlotKind::Ltr
        {
            // After the spaces that follow it, so they stay the slot's trailing space.
            let mut after = u + 1;
            while matches!(units.get(after), Some(Unit::Char(' '))) {
                after += 1;
            }
            breaks.extend([u, after]);
        }
    }
    breaks.retain(|&b| b > 0 && b < units.len());
    breaks.sort_unstable();
    breaks.dedup();

    // Script and font of each character.
    let mut scripts = vec![Script::COMMON; units.len()];
    let mut last = None;
    for (u, unit) in units.iter().enumerate() {
        if let Unit::Char(c) = unit {
            let s = harfrust::unicode::script(*c as u32);
            if s != Script::COMMON && s != Script::INHERITED {
                last = Some(s);
            }
            scripts[u] = last.unwrap_or(Script::COMMON);
        }
    }
    // Leading neutrals take the script that follows them.
    let first_real = scripts
        .iter()
        .copied()
        .find(|s| *s != Script::COMMON)
        .unwrap_or(Script::LATIN);
    for s in &mut scripts {
        if *s == Script::COMMON {
            *s = first_real;
        } else {
            break;
        }
    }
    let mut font_of: Vec<Option<FontSpec>> = vec![None; units.len()];
    let mut prev: Option<FontSpec> = None;
    for (u, unit) in units.iter().enumerate() {
        let Unit::Char(c) = *unit else {
            prev = None;
            continue;
        };
        let inherits = harfrust::unicode::script(c as u32) == Script::INHERITED || c == ' ';
        let chosen = match prev {
            Some(p) if inherits && has_char(fonts.get(p)?, c) => p,
            _ => {
                let mut found = None;
                for spec in lang.fonts {
                    if has_char(fonts.get(*spec)?, c) {
                        found = Some(*spec);
                        break;
                    }
                }
                found
                    .ok_or_else(|| format!("{}: no font has U+{:04X} ({c})", lang.tag, c as u32))?
            }
        };
        font_of[u] = Some(chosen);
        prev = Some(chosen);
    }

    // Shaping runs: same level, font and script, between slots.
    let mut runs = Vec::new();
    // Per unit: (run, its glyphs' indices) for characters.
    let mut run_of: Vec<Option<usize>> = vec![None; units.len()];
    let mut glyph_unit: Vec<Vec<usize>> = Vec::new();
    let mut u = 0;
    while u < units.len() {
        let Unit::Char(_) = units[u] else {
            u += 1;
            continue;
        };
        let key = (char_level[u], font_of[u], scripts[u]);
        let start = u;
        let mut text = String::new();
        let mut offsets = Vec::new();
        while u < units.len() {
            match units[u] {
                Unit::Char(c) if (char_level[u], font_of[u], scripts[u]) == key => {
                    offsets.push(text.len());
                    text.push(c);
                    run_of[u] = Some(runs.len());
                    u += 1;
                }
                _ => break,
            }
        }
        let font_spec = key.1.ok_or("no font")?;
        let rtl = key.0 % 2 == 1;
        let glyphs = shape(fonts.get(font_spec)?, &text, rtl, key.2, lang.shaping)?;
        let units_of: Vec<usize> = glyphs
            .iter()
            .map(|g| {
                start
                    + offsets
                        .iter()
                        .position(|&o| o == g.cluster as usize)
                        .unwrap_or(0)
            })
            .collect();
        // A break inside a cluster (a ligature across it) is not a break.
        breaks.retain(|&b| b <= start || b >= u || units_of.contains(&b));
        glyph_unit.push(units_of);
        runs.push(ShapingRun {
            font: font_spec,
            text,
            rtl,
            script: key.2,
            language: lang.shaping,
            glyphs,
        });
    }

    // Words.
    let mut words: Vec<Word> = Vec::new();
    let mut bounds = vec![0];
    bounds.extend(breaks.iter().copied());
    bounds.push(units.len());
    bounds.dedup();
    let glyphs_in = |r: usize, from: usize, to: usize| -> Vec<Glyph> {
        runs[r]
            .glyphs
            .iter()
            .zip(&glyph_unit[r])
            .filter(|(_, u)| (from..to).contains(*u))
            .map(|(g, _)| Glyph {
                font: runs[r].font,
                gid: g.gid,
                x_advance: g.x_advance,
                x_offset: g.x_offset,
                y_offset: g.y_offset,
            })
            .collect()
    };
    for w in bounds.windows(2) {
        let (s, e) = (w[0], w[1]);
        let mut core_end = e;
        while core_end > s && matches!(units[core_end - 1], Unit::Char(' ')) {
            core_end -= 1;
        }
        let space = (core_end < e).then(|| {
            let mut advance = 0;
            for (u, run) in run_of.iter().enumerate().take(e).skip(core_end) {
                if let Some(r) = *run {
                    advance += glyphs_in(r, u, u + 1)
                        .iter()
                        .map(|g| g.x_advance)
                        .sum::<i32>();
                }
            }
            Space {
                advance,
                level: char_level[core_end],
            }
        });
        let mut items = Vec::new();
        let mut u = s;
        let mut slot_index = units[..s]
            .iter()
            .filter(|x| matches!(x, Unit::Slot(_)))
            .count();
        while u < core_end {
            match units[u] {
                Unit::Slot(_) => {
                    items.push(Item::Slot(slots[slot_index].clone()));
                    slot_index += 1;
                    u += 1;
                }
                Unit::Char(_) => {
                    let r = run_of[u].ok_or("character outside any run")?;
                    let mut end = u;
                    while end < core_end && run_of[end] == Some(r) {
                        end += 1;
                    }
                    items.push(Item::Run {
                        level: char_level[u],
                        glyphs: glyphs_in(r, u, end),
                    });
                    u = end;
                }
            }
        }
        match (items.is_empty(), words.last_mut()) {
            // Spaces alone (a double space): more space after the word before.
            (true, Some(last)) => {
                if let (Some(sp), Some(prev)) = (space, last.space.as_mut()) {
                    prev.advance += sp.advance;
                }
            }
            (true, None) => {}
            (false, _) => words.push(Word { items, space }),
        }
    }
    Ok(Paragraph { words, runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::languages::find;
    use icu_segmenter::LineSegmenter;

    /// The words of `sentence` in `tag`, each as its items' levels and, for runs, whether the
    /// glyphs go left to right (ascending clusters).
    fn build_in(tag: &str, sentence: &str) -> Paragraph {
        let lang = find(tag).unwrap();
        let seg = LineSegmenter::new_dictionary(lang.breaking.options());
        build(lang, sentence, &mut Fonts::default(), &seg).unwrap()
    }

    /// The runs from the first digit to the last (a number may take two fonts: Noto Sans
    /// Arabic's digits, Noto Sans's hyphen), as one text, and whether all run left to right
    /// with their glyphs in reading order.
    fn number(p: &Paragraph) -> (String, bool) {
        let runs: Vec<&ShapingRun> = p
            .runs
            .iter()
            .skip_while(|r| !r.text.starts_with(|c: char| c.is_ascii_digit()))
            .take_while(|r| r.text.chars().all(|c| c.is_ascii_digit() || c == '-'))
            .collect();
        let text = runs.iter().map(|r| r.text.as_str()).collect();
        let ltr = runs
            .iter()
            .all(|r| !r.rtl && r.glyphs.windows(2).all(|w| w[0].cluster <= w[1].cluster));
        (text, ltr)
    }

    #[test]
    fn numbers_written_into_arabic_and_hebrew_sentences_follow_uax9() {
        // The direction traps of docs/locales.md, as UAX #9 (and FriBidi) resolve them. In
        // Arabic, digits after Arabic letters are Arabic numbers, and a hyphen between Arabic
        // numbers is a neutral that goes right to left: "019-450-730" reads "730-450-019".
        let ar = build_in("ar", "الرمز 019-450-730 صالح");
        assert_eq!(number(&ar), ("019-450-730".to_string(), false));
        let hyphens: Vec<bool> = ar
            .runs
            .iter()
            .filter(|r| r.text == "-")
            .map(|r| r.rtl)
            .collect();
        assert_eq!(hyphens, [true, true]);
        // In Hebrew the same hyphen joins European numbers: "123-456" keeps its order.
        let he = build_in("he", "קוד 123-456 בתוקף");
        assert_eq!(number(&he), ("123-456".to_string(), true));
        // That is why every code, URL and number devauth fills in is an isolate (below).
    }

    #[test]
    fn a_space_between_numbers_is_the_trap_an_isolate_avoids() {
        // UAX #9 (and FriBidi): in a right-to-left paragraph the space between "123" and "456"
        // resolves right to left, so the two numbers swap places: "456 123".
        let he = build_in("he", "קוד 123 456 בתוקף");
        let levels: Vec<u8> = he
            .words
            .iter()
            .flat_map(|w| w.items.iter())
            .map(|i| match i {
                Item::Run { level, .. } => *level,
                Item::Slot(s) => s.open,
            })
            .collect();
        assert_eq!(levels, [1, 2, 2, 1], "{levels:?}");
        let gap = he.words[1].space.unwrap();
        assert_eq!(
            gap.level, 1,
            "the space between the numbers is right to left"
        );
        // The same code as a placeholder is one isolate: its content is one left-to-right run,
        // whatever it holds.
        let slot = build_in("he", "קוד {code} בתוקף");
        let Item::Slot(s) = &slot.words[1].items[0] else {
            panic!("no slot");
        };
        assert_eq!((s.open, s.ltr, s.close), (1, 2, 1));
    }

    #[test]
    fn letter_codes_and_urls_in_right_to_left_sentences_are_isolated() {
        for (tag, sentence) in [
            ("ar", "انتقل إلى {url} وأدخل {code}"),
            ("he", "יש להיכנס אל {url} ולהזין את {code}"),
        ] {
            let p = build_in(tag, sentence);
            let slots: Vec<&Slot> = p
                .words
                .iter()
                .flat_map(|w| w.items.iter())
                .filter_map(|i| match i {
                    Item::Slot(s) => Some(s),
                    Item::Run { .. } => None,
                })
                .collect();
            assert_eq!(slots.len(), 2);
            for s in slots {
                assert_eq!(s.kind, SlotKind::Ltr);
                assert_eq!(s.ltr % 2, 0, "{tag} {}: content left to right", s.name);
                assert!(s.ltr > s.open);
                // A break is allowed on both sides: the screens draw them as blocks.
            }
            assert!(
                p.words
                    .iter()
                    .any(|w| matches!(w.items.as_slice(), [Item::Slot(s)] if s.name == "url"))
            );
        }
    }

    #[test]
    fn devanagari_reph_and_conjuncts_are_shaped() {
        // "दर्ज": the reph (र्) becomes a mark on ज, so fewer glyphs than characters; "क्ष" one
        // conjunct glyph.
        let p = build_in("hi", "दर्ज क्ष");
        let word: Vec<u32> = p.runs[0].glyphs.iter().map(|g| g.gid).collect();
        assert!(word.len() < "दर्ज क्ष".chars().count() - 2, "{word:?}");
    }

    #[test]
    fn thai_breaks_between_words_without_spaces() {
        let p = build_in("th", "รหัสหมดอายุแล้ว");
        assert!(p.words.len() >= 3, "{} words", p.words.len());
    }
}
