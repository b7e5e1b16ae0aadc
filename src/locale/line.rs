//! Lines from a pre-shaped sentence: greedy wrapping at the break opportunities the generator
//! found (UAX #14, Thai by dictionary), then each line put in visual order by UAX #9's rule L2
//! on the levels the generator resolved, placeholders included as the isolates they are.
//!
//! Pure arithmetic on the checked pack: no allocation per glyph, no drawing (`draw.rs`).
//! Widths are kept in 1/upem pixels ("fine" units: a font unit times the size in px) so a
//! long line rounds once, not once per glyph.

use std::ops::Range;

use super::pack::{ITEM, MSG, Pack, SLOT, Tier, WORD, i16_at, u8_at, u16_at, u32_at};

/// What the caller fills a placeholder with, measured in the caller's face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotValue {
    /// Pixels.
    pub width: u32,
    /// The value runs right to left (a Hebrew name): only names decide this; codes, URLs
    /// and numbers always run left to right.
    pub rtl: bool,
}

/// One part of a line, left to right as the viewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A pre-shaped run of the pack (`item`), its left edge `x` fine units from the line's left.
    Run { x: i32, item: u16 },
    /// A placeholder for the caller to draw, `x` px from the line's left.
    Slot {
        x: u32,
        width: u32,
        name: String,
        rtl: bool,
    },
}

/// A piece of a sentence cut at its block placeholders ([`Pack::parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lines(Vec<Line>),
    /// The placeholder drawn as a block here.
    Block(String),
}

/// A line of a sentence, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Pixels, the trailing space left out.
    pub width: u32,
    pub pieces: Vec<Piece>,
}

/// A word's parts with their levels, in logical order, for L2.
#[derive(Debug, Clone)]
struct Unit {
    level: u8,
    /// Fine units.
    width: i64,
    piece: Option<Piece>,
}

impl Pack {
    fn word_range(&self, message: usize) -> (usize, usize) {
        let at = self.s.msgs.start + message * MSG;
        let d = self.bytes();
        (
            usize::from(u16_at(d, at + 12)),
            usize::from(u16_at(d, at + 14)),
        )
    }

    pub(super) fn slot_name(&self, index: usize) -> &str {
        let at = self.s.slots.start + index * SLOT;
        let d = self.bytes();
        self.string(
            usize::try_from(u32_at(d, at)).unwrap_or(usize::MAX),
            usize::from(u16_at(d, at + 4)),
        )
    }

    /// A run item's advance in font units.
    pub(super) fn run_advance(&self, item: usize) -> i64 {
        let d = self.bytes();
        let at = self.s.items.start + item * ITEM;
        let (first, n) = (
            usize::from(u16_at(d, at + 2)),
            usize::from(u16_at(d, at + 4)),
        );
        (first..first + n)
            .map(|g| i64::from(i16_at(d, self.s.gpos.start + g * 8 + 2)))
            .sum()
    }

    /// The units of word `w` (in logical order) and whether a space follows it (level, fine width).
    fn word_units(
        &self,
        w: usize,
        px: i64,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> (Vec<Unit>, Option<Unit>) {
        let d = self.bytes();
        let at = self.s.words.start + w * WORD;
        let (first, n) = (usize::from(u16_at(d, at)), usize::from(u16_at(d, at + 2)));
        let mut units = Vec::with_capacity(n);
        for i in first..first + n {
            let ia = self.s.items.start + i * ITEM;
            let level = u8_at(d, ia + 1);
            if u8_at(d, ia) == 0 {
                units.push(Unit {
                    level,
                    width: self.run_advance(i) * px,
                    piece: u16::try_from(i).ok().map(|item| Piece::Run { x: 0, item }),
                });
                continue;
            }
            // A placeholder: its isolate's initiator, content and PDI (UAX #9 X5a-c).
            let name = self.slot_name(usize::from(u16_at(d, ia + 2)));
            let value = slot(name).unwrap_or(SlotValue {
                width: 0,
                rtl: false,
            });
            // Codes, URLs and numbers are LRI isolates whatever the caller says.
            let rtl = value.rtl && u8_at(d, ia) == 3;
            let content = if rtl {
                u8_at(d, ia + 7)
            } else {
                u8_at(d, ia + 6)
            };
            units.push(Unit {
                level,
                width: 0,
                piece: None,
            });
            units.push(Unit {
                level: content,
                width: i64::from(value.width) * i64::from(self.upem),
                piece: Some(Piece::Slot {
                    x: 0,
                    width: value.width,
                    name: name.to_string(),
                    rtl,
                }),
            });
            units.push(Unit {
                level: u8::try_from(u16_at(d, ia + 4)).unwrap_or(0),
                width: 0,
                piece: None,
            });
        }
        let space = (u8_at(d, at + 7) & 1 == 1).then(|| Unit {
            level: u8_at(d, at + 6),
            width: i64::from(u16_at(d, at + 4)) * px,
            piece: None,
        });
        (units, space)
    }

    /// The sentence `key` broken into lines of at most `max_width` px at `tier` (a word wider
    /// than that gets a line of its own, wider: the caller checks [`Line::width`] and picks a
    /// smaller tier), each in visual order. `slot` measures each placeholder's value.
    pub fn lines(
        &self,
        key: &str,
        tier: &Tier,
        max_width: u32,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> Option<Vec<Line>> {
        let (first, n) = self.word_range(self.message_index(key)?);
        Some(self.wrap(first..first + n, tier, max_width, slot))
    }

    /// [`Pack::lines`], then as narrow as the same number of lines allows, so the last line is
    /// never a lone short word under long ones (as the screens wrap their English).
    pub fn balanced_lines(
        &self,
        key: &str,
        tier: &Tier,
        max_width: u32,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> Option<Vec<Line>> {
        let (first, n) = self.word_range(self.message_index(key)?);
        Some(self.balanced(first..first + n, tier, max_width, slot))
    }

    /// The sentence `key` cut at the placeholders named in `blocks` (`url`, `code`: the screens
    /// draw them as blocks of their own), the words between as balanced lines; in reading
    /// order (for a right-to-left language too: a block comes after the words before it).
    pub fn parts(
        &self,
        key: &str,
        blocks: &[&str],
        tier: &Tier,
        max_width: u32,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> Option<Vec<Part>> {
        let (first, n) = self.word_range(self.message_index(key)?);
        let d = self.bytes();
        let mut parts = Vec::new();
        let mut start = first;
        for w in first..first + n {
            let at = self.s.words.start + w * WORD;
            let ia = self.s.items.start + usize::from(u16_at(d, at)) * ITEM;
            let block = (u16_at(d, at + 2) == 1 && u8_at(d, ia) != 0)
                .then(|| self.slot_name(usize::from(u16_at(d, ia + 2))))
                .filter(|name| blocks.contains(name));
            if let Some(name) = block {
                if w > start {
                    parts.push(Part::Lines(self.balanced(start..w, tier, max_width, slot)));
                }
                parts.push(Part::Block(name.to_string()));
                start = w + 1;
            }
        }
        if first + n > start {
            parts.push(Part::Lines(self.balanced(
                start..first + n,
                tier,
                max_width,
                slot,
            )));
        }
        Some(parts)
    }

    fn wrap(
        &self,
        words: Range<usize>,
        tier: &Tier,
        max_width: u32,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> Vec<Line> {
        let px = i64::from(tier.px);
        let upem = i64::from(self.upem);
        let max = i64::from(max_width) * upem;
        let mut lines = Vec::new();
        let mut line: Vec<Unit> = Vec::new();
        let mut width = 0i64;
        let mut pending: Option<Unit> = None;
        for w in words {
            let (units, space) = self.word_units(w, px, slot);
            let word_width: i64 = units.iter().map(|u| u.width).sum();
            let gap = pending.as_ref().map_or(0, |s| s.width);
            if !line.is_empty() && width + gap + word_width > max {
                lines.push(self.finish(std::mem::take(&mut line)));
                width = 0;
                pending = None;
            }
            if let Some(s) = pending.take() {
                width += s.width;
                line.push(s);
            }
            width += word_width;
            line.extend(units);
            pending = space;
        }
        if !line.is_empty() {
            lines.push(self.finish(line));
        }
        lines
    }

    fn balanced(
        &self,
        words: Range<usize>,
        tier: &Tier,
        max_width: u32,
        slot: &dyn Fn(&str) -> Option<SlotValue>,
    ) -> Vec<Line> {
        let greedy = self.wrap(words.clone(), tier, max_width, slot);
        if greedy.len() < 2 {
            return greedy;
        }
        let (mut lo, mut hi) = (1u32, max_width);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.wrap(words.clone(), tier, mid, slot).len() <= greedy.len() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.wrap(words, tier, hi, slot)
    }

    /// L2 on one line (trailing whitespace already dropped, as L1 would have put it at the
    /// paragraph level at the line's end), then the pieces' positions.
    fn finish(&self, mut units: Vec<Unit>) -> Line {
        reorder(&mut units);
        let mut x = 0i64;
        let upem = i64::from(self.upem);
        let mut pieces = Vec::new();
        for u in units {
            match u.piece {
                Some(Piece::Run { item, .. }) => pieces.push(Piece::Run {
                    x: i32::try_from(x).unwrap_or(i32::MAX),
                    item,
                }),
                Some(Piece::Slot {
                    width, name, rtl, ..
                }) => pieces.push(Piece::Slot {
                    x: u32::try_from((x + upem / 2) / upem).unwrap_or(0),
                    width,
                    name,
                    rtl,
                }),
                None => {}
            }
            x += u.width;
        }
        Line {
            width: u32::try_from((x + upem - 1) / upem).unwrap_or(u32::MAX),
            pieces,
        }
    }
}

/// UAX #9 L2: from the highest level to the lowest odd one, reverse every run of units at that
/// level or above. Each unit's own glyphs are already in visual order (the shaper reversed the
/// right-to-left ones), so only the units move.
fn reorder<T>(units: &mut [T])
where
    T: Leveled,
{
    let Some(high) = units.iter().map(|u| u.level()).max() else {
        return;
    };
    let low_odd = units.iter().map(|u| u.level() | 1).min().unwrap_or(1);
    let mut k = high;
    while k >= low_odd && k > 0 {
        let mut i = 0;
        while i < units.len() {
            if units.get(i).is_some_and(|u| u.level() >= k) {
                let start = i;
                while units.get(i).is_some_and(|u| u.level() >= k) {
                    i += 1;
                }
                if let Some(run) = units.get_mut(start..i) {
                    run.reverse();
                }
            } else {
                i += 1;
            }
        }
        k -= 1;
    }
}

trait Leveled {
    fn level(&self) -> u8;
}

impl Leveled for Unit {
    fn level(&self) -> u8 {
        self.level
    }
}

impl Leveled for u8 {
    fn level(&self) -> u8 {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reorders labelled levels and returns the labels in visual order.
    fn visual(levels: &[(char, u8)]) -> String {
        #[derive(Clone)]
        struct L(char, u8);
        impl Leveled for L {
            fn level(&self) -> u8 {
                self.1
            }
        }
        let mut v: Vec<L> = levels.iter().map(|&(c, l)| L(c, l)).collect();
        reorder(&mut v);
        v.iter().map(|l| l.0).collect()
    }

    #[test]
    fn l2_reverses_right_to_left_runs_and_keeps_numbers_inside_them() {
        // Arabic word A B, a number slot N at level 2 inside its isolate (markers < >), word C.
        assert_eq!(
            visual(&[('A', 1), ('B', 1), ('<', 1), ('N', 2), ('>', 1), ('C', 1)]),
            "C>N<BA"
        );
        // Left to right paragraph with a Hebrew name at level 1 in the middle.
        assert_eq!(
            visual(&[('a', 0), ('<', 0), ('H', 1), ('>', 0), ('b', 0)]),
            "a<H>b"
        );
        // Two right-to-left runs separated by a left-to-right one.
        assert_eq!(
            visual(&[('x', 1), ('y', 1), ('l', 2), ('m', 2), ('z', 1)]),
            "zlmyx"
        );
        let mut levels = [0u8, 0, 0];
        reorder(&mut levels);
        assert_eq!(levels, [0, 0, 0]);
    }
}
