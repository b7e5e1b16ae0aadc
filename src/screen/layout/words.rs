//! The screens' sentences in the profile's language, as column pieces.
//!
//! English is filled in and wrapped in the u8g2 faces (`text.rs`). A language with a locale
//! pack draws the pack's pre-shaped lines instead: the pack wraps a sentence at its own break
//! opportunities and orders each line (UAX #9) around its placeholders, whose values are
//! measured here. A value from outside (a name, the device name) is drawn in the pack's own
//! letters when the pack has them all (a Hebrew name in Hebrew), else in a u8g2 face that has
//! them, as large as the face the English would use (a Latin, Greek or Cyrillic name); where
//! neither draws it the caller leaves the sentence out (never `?`). Numbers are drawn in the
//! pack's digits. Codes and URLs are blocks of their own (`Step`), drawn by the caller.

use super::column::{Piece, para};
use super::face_for;
use super::text::Face;
use crate::locale::{Line, Pack, Piece as LinePiece, SlotValue, Tier};
use crate::screen::catalog::{Catalog, Msg, Part, Slot, unescape};
use crate::screen::language::Language;

use super::Role;
use super::shaped::{ShapedLine, Value};

/// A part of a steps sentence, in reading order.
pub(super) enum Step {
    Words(Piece),
    Url,
    Code,
}

/// The sentences of one language on one kind of panel.
#[derive(Clone, Copy)]
pub(super) struct Words<'a> {
    pub lang: &'a Language,
    /// One bit per pixel: the packs' 1-bit size.
    pub mono: bool,
}

/// The values of one sentence's placeholders, measured for one tier of the pack.
struct Values<'a> {
    pack: &'a Pack,
    tier: Tier,
    scale: u32,
    bold: bool,
    ascent: u32,
    descent: u32,
    values: Vec<(Value, SlotValue)>,
}

impl Values<'_> {
    /// Lines made by `wrap` for a width in the pack's pixels, their boxes (ink included)
    /// within `w` screen pixels: wrapped to the room, then narrower by what the widest box's
    /// overhang took (a glyph reaching past its advance, emboldening).
    fn fitted<T>(
        &self,
        w: u32,
        wrap: impl Fn(u32) -> Option<Vec<T>>,
        widest: impl Fn(&[T]) -> u32,
    ) -> Option<Vec<T>> {
        let room = w / self.scale;
        let lines = wrap(room)?;
        match widest(&lines).checked_sub(room) {
            Some(over) if over > 0 => wrap(room.saturating_sub(over)),
            _ => Some(lines),
        }
    }

    /// The widest box of `lines`, unscaled.
    fn widest(&self, lines: &[Line]) -> u32 {
        lines
            .iter()
            .map(|l| self.shaped(l.clone()).box_width())
            .max()
            .unwrap_or(0)
    }

    fn slot(&self, name: &str) -> Option<SlotValue> {
        self.values
            .iter()
            .find(|(v, _)| v.slot == name)
            .map(|(_, s)| *s)
    }

    fn shaped(&self, line: Line) -> ShapedLine {
        let (mut left, mut right) = self.pack.line_ink(&self.tier, &line, self.bold);
        // Values in the pack's own letters overhang as the sentence's glyphs do.
        for piece in &line.pieces {
            let LinePiece::Slot { x, name, .. } = piece else {
                continue;
            };
            let plain = self
                .values
                .iter()
                .find(|(v, _)| &v.slot == name && v.font.is_none());
            if let Some((v, _)) = plain {
                let (l, r) = self.pack.plain_ink(&self.tier, &v.text);
                let x = i32::try_from(*x).unwrap_or(0);
                left = left.min(x + l);
                right = right.max(x + r);
            }
        }
        let width = i32::try_from(line.width).unwrap_or(i32::MAX);
        ShapedLine {
            left: u32::try_from(-left).unwrap_or(0),
            right: u32::try_from(right - width).unwrap_or(0),
            line,
            tier: self.tier,
            ascent: self.ascent,
            height: self.ascent + self.descent,
            scale: self.scale,
            bold: self.bold,
            values: self.values.iter().map(|(v, _)| v.clone()).collect(),
        }
    }

    fn piece(&self, lines: Vec<Line>, role: Role) -> Piece {
        Piece::Shaped {
            lines: lines.into_iter().map(|l| self.shaped(l)).collect(),
            role,
        }
    }
}

impl Words<'_> {
    fn pack(&self) -> Option<&Pack> {
        self.lang.pack()
    }

    /// The sentences the u8g2 faces draw: the language's own when it has no pack, English
    /// where a pack lacks a size for a sentence (a damaged pack).
    fn fallback(&self) -> &Catalog {
        match self.pack() {
            None => self.lang.words(),
            Some(_) => Catalog::english(),
        }
    }

    /// The pack and the tier that stand in for `face` for sentence `msg`.
    fn tier(&self, msg: Msg, face: Face) -> Option<(&Pack, Tier)> {
        let pack = self.pack()?;
        let tier = pack.tier_for(msg.key(), face.font.pack_px(), self.mono)?;
        Some((pack, tier))
    }

    /// How `text` from outside is drawn in a line of `tier`: the pack's own letters, else a
    /// u8g2 face near `face` (unscaled: the line's scale applies).
    fn value(
        pack: &Pack,
        tier: &Tier,
        slot: &str,
        text: &str,
        face: Face,
    ) -> Option<(Value, SlotValue)> {
        let value = |font, width, rtl| {
            let v = Value {
                slot: slot.to_string(),
                text: text.to_string(),
                font,
            };
            (v, SlotValue { width, rtl })
        };
        if let Some(rtl) = pack.plain_direction(text) {
            if let Some(w) = pack.plain_width(tier, text) {
                return Some(value(None, w, rtl));
            }
        }
        let f = face_for(text, Face::new(face.font, 1))?;
        Some(value(Some(f), f.width(text), false))
    }

    /// Every value of `args` measured for `tier`; `None` when one cannot be drawn.
    fn values<'p>(
        pack: &'p Pack,
        tier: Tier,
        face: Face,
        args: &[(Slot, &str)],
    ) -> Option<Values<'p>> {
        let mut out = Values {
            pack,
            tier,
            scale: face.scale.max(1),
            bold: face.font.is_bold(),
            ascent: u32::from(tier.ascent),
            descent: u32::from(tier.descent),
            values: Vec::with_capacity(args.len()),
        };
        for (slot, text) in args {
            // Numbers: the digits are in every pack (a u8g2 face if a damaged one lacks them).
            let (v, s) = Self::value(pack, &tier, slot.name(), text, face)?;
            if let Some(f) = v.font {
                out.ascent = out.ascent.max(f.font.ascent() * f.scale);
                out.descent = out.descent.max(f.font.descent() * f.scale);
            }
            out.values.push((v, s));
        }
        Some(out)
    }

    /// Whether `text` from outside can be drawn inside sentence `msg` in `face`'s size.
    pub fn can_draw(&self, msg: Msg, text: &str, face: Face) -> bool {
        match self.tier(msg, face) {
            Some((pack, tier)) => Self::value(pack, &tier, "", text, face).is_some(),
            None => face_for(text, face).is_some(),
        }
    }

    /// Sentence `msg` with `args` filled in, as large as `face`, wrapped to `w` px; `None` when a
    /// value has letters nothing here can draw.
    pub fn sentence(
        &self,
        msg: Msg,
        args: &[(Slot, &str)],
        face: Face,
        w: u32,
        role: Role,
    ) -> Option<Piece> {
        if let Some((pack, tier)) = self.tier(msg, face) {
            let values = Self::values(pack, tier, face, args)?;
            let lines = values.fitted(
                w,
                |room| pack.balanced_lines(msg.key(), &tier, room, &|n| values.slot(n)),
                |lines| values.widest(lines),
            )?;
            return Some(values.piece(lines, role));
        }
        let text = self.fallback().fill(msg, args);
        let face = face_for(&text, face)?;
        Some(para(&text, face, w, role))
    }

    /// A steps sentence (`{url}` and `{code}` in it) cut where the URL and the code stand as
    /// blocks; the words between wrapped to `w` px. A browser sign-in has no code block.
    pub fn steps(&self, msg: Msg, face: Face, w: u32, role: Role) -> Vec<Step> {
        let mut out = Vec::new();
        if let Some((pack, tier)) = self.tier(msg, face) {
            if let Some(values) = Self::values(pack, tier, face, &[]) {
                let parts = values.fitted(
                    w,
                    |room| {
                        pack.parts(msg.key(), &["url", "code"], &tier, room, &|n| {
                            values.slot(n)
                        })
                    },
                    |parts| {
                        parts
                            .iter()
                            .map(|p| match p {
                                crate::locale::Part::Lines(l) => values.widest(l),
                                crate::locale::Part::Block(_) => 0,
                            })
                            .max()
                            .unwrap_or(0)
                    },
                );
                for part in parts.unwrap_or_default() {
                    out.push(match part {
                        crate::locale::Part::Lines(lines) => Step::Words(values.piece(lines, role)),
                        crate::locale::Part::Block(b) if b == "url" => Step::Url,
                        crate::locale::Part::Block(_) => Step::Code,
                    });
                }
                return out;
            }
        }
        for part in self.fallback().parts(msg) {
            match part {
                Part::Text(t) => {
                    let t = unescape(t);
                    let t = t.trim();
                    if !t.is_empty() {
                        out.push(Step::Words(para(t, face, w, role)));
                    }
                }
                Part::Slot(Slot::Url) => out.push(Step::Url),
                Part::Slot(Slot::Code) => out.push(Step::Code),
                Part::Slot(_) => {}
            }
        }
        out
    }

    /// Text from outside on its own (the provider's message): in a u8g2 face that has its
    /// letters, else in the pack's own letters (wrapped at spaces, and between the characters
    /// of scripts written without them); `None` when neither draws it.
    pub fn outside(&self, text: &str, face: Face, w: u32, role: Role) -> Option<Piece> {
        if let Some(f) = face_for(text, face) {
            return Some(para(text, f, w, role));
        }
        let (pack, tier) = self.tier(Msg::Warning, face)?;
        let rtl = pack.plain_direction(text)?;
        let values = Self::values(pack, tier, face, &[])?;
        let max = w / values.scale;
        let width = |s: &str| pack.plain_width(&tier, s).unwrap_or(u32::MAX);
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for unit in breakable_units(text) {
            let candidate = format!("{line}{unit}");
            if !line.is_empty() && width(candidate.trim_end()) > max {
                lines.push(line.trim_end().to_string());
                line = unit.trim_start().to_string();
            } else {
                line = candidate;
            }
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
        let shaped = lines
            .into_iter()
            .map(|l| {
                let w = width(&l);
                plain_line(&values, "text", l, None, w, rtl)
            })
            .collect();
        Some(Piece::Shaped {
            lines: shaped,
            role,
        })
    }

    /// Sentence `msg` on one line (the countdown), or `None` without a pack or when a value
    /// cannot be drawn.
    pub fn line(&self, msg: Msg, args: &[(Slot, &str)], face: Face) -> Option<ShapedLine> {
        let (pack, tier) = self.tier(msg, face)?;
        let values = Self::values(pack, tier, face, args)?;
        let mut lines = pack.lines(msg.key(), &tier, u32::MAX / 4, &|n| values.slot(n))?;
        (lines.len() == 1).then(|| values.shaped(lines.remove(0)))
    }

    /// A number alone (the countdown's time when no sentence fits), in the pack's digits.
    pub fn number(&self, text: &str, face: Face) -> Option<ShapedLine> {
        let (pack, tier) = self.tier(Msg::CodeExpires, face)?;
        let values = Self::values(pack, tier, face, &[(Slot::Minutes, text)])?;
        let (v, s) = values.values.first()?.clone();
        Some(plain_line(
            &values, "minutes", v.text, v.font, s.width, false,
        ))
    }

    /// The height of the countdown's line in `face`'s size.
    pub fn ticker_height(&self, face: Face) -> u32 {
        match self.tier(Msg::CodeExpires, face) {
            Some((_, tier)) => tier.line_height() * face.scale.max(1),
            None => face.height(),
        }
    }
}

/// A line holding one value and nothing of the pack's sentences.
fn plain_line(
    values: &Values,
    slot: &str,
    text: String,
    font: Option<Face>,
    width: u32,
    rtl: bool,
) -> ShapedLine {
    let mut shaped = values.shaped(Line {
        width,
        pieces: vec![LinePiece::Slot {
            x: 0,
            width,
            name: slot.to_string(),
            rtl,
        }],
    });
    if font.is_none() {
        let (left, right) = values.pack.plain_ink(&values.tier, &text);
        shaped.left = u32::try_from(-left).unwrap_or(0);
        shaped.right = u32::try_from(i64::from(right) - i64::from(width)).unwrap_or(0);
    }
    shaped.values = vec![Value {
        slot: slot.to_string(),
        text,
        font,
    }];
    shaped
}

/// Characters of scripts written without spaces between words (Han, kana, Thai): a line may
/// break before any of them.
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0E7F}'
        | '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF00}'..='\u{FFEF}')
}

/// `text` cut where a line may break: before a space-separated word (with its space), and
/// before each character of a script written without spaces.
fn breakable_units(text: &str) -> Vec<&str> {
    let mut units = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let cut = i > start
            && match prev {
                Some(p) => c != ' ' && (p == ' ' || unspaced(c) || unspaced(p)),
                None => false,
            };
        if cut {
            if let Some(u) = text.get(start..i) {
                units.push(u);
            }
            start = i;
        }
        prev = Some(c);
    }
    if let Some(u) = text.get(start..).filter(|u| !u.is_empty()) {
        units.push(u);
    }
    units
}

/// The countdown slot, its text as large as `face`.
pub(super) fn ticker(words: Words, face: Face, bar: bool) -> Piece {
    Piece::Ticker {
        face,
        text_h: words.ticker_height(face),
        bar,
        language: words.lang.clone(),
        mono: words.mono,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_breaks_at_spaces_and_between_ideographs() {
        assert_eq!(breakable_units("ab cd  e"), ["ab ", "cd  ", "e"]);
        assert_eq!(breakable_units("请在 abc"), ["请", "在 ", "abc"]);
        assert_eq!(breakable_units(""), Vec::<&str>::new());
    }
}
