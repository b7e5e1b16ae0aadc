//! Reading a locale pack: the pre-shaped sentences of one language and their glyph atlas, as
//! `tools/localegen` writes them (the byte layout is in docs/locales.md).
//!
//! A pack may come from a file, so it is untrusted: [`Pack::parse`] bounds its size and checks
//! every offset, count, level and string once, and refuses the pack with a [`PackError`] that
//! names what was wrong. After that every read still goes through `get` and a bad value draws
//! nothing rather than panicking. Owns the format; laying sentences into lines is `line.rs`,
//! painting them `draw.rs`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// The largest pack accepted (the 20 languages' packs are 30-200 KB).
pub const MAX_PACK_BYTES: usize = 4 << 20;
const MAGIC: &[u8; 4] = b"DVLP";
const VERSION: u16 = 1;
const HEADER: usize = 32;
/// Deeper embeddings than this never come out of the generator (UAX #9 allows 125).
pub const MAX_LEVEL: u8 = 15;

/// Why a pack was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    TooLarge(usize),
    NotAPack,
    Version(u16),
    /// The named part is out of bounds or inconsistent.
    Corrupt(&'static str),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::TooLarge(n) => write!(f, "{n} bytes, more than {MAX_PACK_BYTES}"),
            PackError::NotAPack => f.write_str("not a devauth locale pack"),
            PackError::Version(v) => {
                write!(f, "pack format version {v}, this devauth reads {VERSION}")
            }
            PackError::Corrupt(what) => write!(f, "corrupt pack: {what}"),
        }
    }
}

impl std::error::Error for PackError {}

fn corrupt(what: &'static str) -> PackError {
    PackError::Corrupt(what)
}

pub(super) fn u8_at(d: &[u8], at: usize) -> u8 {
    d.get(at).copied().unwrap_or(0)
}

pub(super) fn u16_at(d: &[u8], at: usize) -> u16 {
    match d.get(at..at + 2) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

pub(super) fn i16_at(d: &[u8], at: usize) -> i16 {
    u16_at(d, at) as i16
}

pub(super) fn u32_at(d: &[u8], at: usize) -> u32 {
    match d.get(at..at + 4) {
        Some(&[a, b, c, e]) => u32::from_le_bytes([a, b, c, e]),
        _ => 0,
    }
}

fn usize_at(d: &[u8], at: usize) -> usize {
    usize::try_from(u32_at(d, at)).unwrap_or(usize::MAX)
}

/// Entry sizes of the tables.
pub(super) const MSG: usize = 16;
pub(super) const WORD: usize = 8;
pub(super) const ITEM: usize = 8;
pub(super) const SLOT: usize = 6;
pub(super) const GPOS: usize = 8;
pub(super) const CMAP: usize = 8;
pub(super) const TIER: usize = 16;
pub(super) const GMET: usize = 10;

/// Byte ranges of the sections inside the pack.
#[derive(Debug, Clone, Default)]
pub(super) struct Sections {
    pub strs: Range<usize>,
    pub msgs: Range<usize>,
    pub words: Range<usize>,
    pub items: Range<usize>,
    pub slots: Range<usize>,
    pub gpos: Range<usize>,
    pub cmap: Range<usize>,
    pub tiers: Range<usize>,
    pub gmet: Range<usize>,
    pub bits: Range<usize>,
    /// Per tier, a bit per message: drawn at that size (a titles-only size covers few).
    pub cover: Range<usize>,
}

/// One language's pack, checked.
#[derive(Debug, Clone)]
pub struct Pack {
    pub(super) data: Cow<'static, [u8]>,
    tag: String,
    rtl: bool,
    pub(super) upem: i32,
    pub(super) glyphs: usize,
    pub(super) s: Sections,
}

/// A glyph size of a pack: the pixels per em its atlas was drawn at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub(super) index: usize,
    pub px: u16,
    /// One bit per pixel (drawn for monochrome panels), else four.
    pub mono: bool,
    /// Ink above and below the baseline of every glyph of the pack at this size.
    pub ascent: u16,
    pub descent: u16,
    /// Only some sentences (the titles) have their glyphs at this size: see [`Pack::covers`].
    pub partial: bool,
    pub(super) metrics: usize,
    pub(super) bits: usize,
}

impl Tier {
    /// Ascent plus descent: the height of a line of this tier's glyphs.
    pub fn line_height(&self) -> u32 {
        u32::from(self.ascent) + u32::from(self.descent)
    }

    /// How far synthetic bold widens each glyph, in pixels: a twenty-fourth of the size, as
    /// FreeType emboldens (at least one pixel).
    pub fn bold_px(&self) -> u32 {
        (u32::from(self.px) / 24).max(1)
    }
}

/// Where a glyph's bitmap is and how it sits on the pen position.
#[derive(Debug, Clone, Copy)]
pub(super) struct GlyphBox {
    pub offset: usize,
    pub width: u32,
    pub height: u32,
    pub left: i32,
    pub top: i32,
}

impl Pack {
    /// A pack compiled into the binary.
    pub fn from_static(data: &'static [u8]) -> Result<Pack, PackError> {
        Pack::parse(Cow::Borrowed(data))
    }

    /// Checks everything the drawing code relies on; nothing is trusted after this but what
    /// was checked.
    pub fn parse(data: Cow<'static, [u8]>) -> Result<Pack, PackError> {
        let d: &[u8] = &data;
        if d.len() > MAX_PACK_BYTES {
            return Err(PackError::TooLarge(d.len()));
        }
        if d.len() < HEADER || d.get(..4) != Some(MAGIC.as_slice()) {
            return Err(PackError::NotAPack);
        }
        let version = u16_at(d, 4);
        if version != VERSION {
            return Err(PackError::Version(version));
        }
        if usize_at(d, 24) != d.len() {
            return Err(corrupt("length"));
        }
        let tag_bytes = d.get(8..20).ok_or(corrupt("tag"))?;
        let tag_len = tag_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(tag_bytes.len());
        let tag = tag_bytes.get(..tag_len).ok_or(corrupt("tag"))?;
        if tag.is_empty() || !tag.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
            return Err(corrupt("tag"));
        }
        let tag = String::from_utf8_lossy(tag).into_owned();
        let upem = i32::from(u16_at(d, 20));
        if !(16..=16384).contains(&upem) {
            return Err(corrupt("units per em"));
        }
        let count = usize::from(u16_at(d, 22));
        let mut s = Sections::default();
        let mut seen = 0u16;
        for i in 0..count {
            let at = HEADER + 12 * i;
            let id = d.get(at..at + 4).ok_or(corrupt("section table"))?;
            let off = usize_at(d, at + 4);
            let len = usize_at(d, at + 8);
            let end = off.checked_add(len).ok_or(corrupt("section bounds"))?;
            if off < HEADER + 12 * count || end > d.len() {
                return Err(corrupt("section bounds"));
            }
            let (slot, bit) = match id {
                b"STRS" => (&mut s.strs, 0),
                b"MSGS" => (&mut s.msgs, 1),
                b"WRDS" => (&mut s.words, 2),
                b"ITEM" => (&mut s.items, 3),
                b"SLOT" => (&mut s.slots, 4),
                b"GPOS" => (&mut s.gpos, 5),
                b"CMAP" => (&mut s.cmap, 6),
                b"TIER" => (&mut s.tiers, 7),
                b"GMET" => (&mut s.gmet, 8),
                b"BITS" => (&mut s.bits, 9),
                b"TCOV" => (&mut s.cover, 10),
                _ => continue,
            };
            *slot = off..end;
            seen |= 1 << bit;
        }
        if seen != 0x7ff {
            return Err(corrupt("a section is missing"));
        }
        let pack = Pack {
            tag,
            rtl: u16_at(d, 6) & 1 == 1,
            upem,
            glyphs: usize::from(u16_at(d, 28)),
            s,
            data: Cow::Borrowed(&[]),
        };
        pack.check(d)?;
        Ok(Pack { data, ..pack })
    }

    fn check(&self, d: &[u8]) -> Result<(), PackError> {
        let s = &self.s;
        let table = |r: &Range<usize>, size: usize, what: &'static str| {
            if r.len() % size == 0 {
                Ok(r.len() / size)
            } else {
                Err(corrupt(what))
            }
        };
        let n_msgs = table(&s.msgs, MSG, "messages")?;
        let n_words = table(&s.words, WORD, "words")?;
        let n_items = table(&s.items, ITEM, "items")?;
        let n_slots = table(&s.slots, SLOT, "slot names")?;
        let n_gpos = table(&s.gpos, GPOS, "glyph positions")?;
        let n_cmap = table(&s.cmap, CMAP, "character map")?;
        let n_tiers = table(&s.tiers, TIER, "tiers")?;
        let strs = d.get(s.strs.clone()).ok_or(corrupt("strings"))?;
        let string_ok = |off: usize, len: usize| {
            off.checked_add(len)
                .and_then(|end| strs.get(off..end))
                .is_some_and(|b| std::str::from_utf8(b).is_ok())
        };
        let range_ok =
            |first: usize, n: usize, total: usize| first.checked_add(n).is_some_and(|e| e <= total);
        for i in 0..n_msgs {
            let at = s.msgs.start + i * MSG;
            if !string_ok(usize_at(d, at), usize::from(u16_at(d, at + 4)))
                || !string_ok(usize_at(d, at + 6), usize::from(u16_at(d, at + 10)))
            {
                return Err(corrupt("message string"));
            }
            if !range_ok(
                usize::from(u16_at(d, at + 12)),
                usize::from(u16_at(d, at + 14)),
                n_words,
            ) {
                return Err(corrupt("message words"));
            }
        }
        for i in 0..n_words {
            let at = s.words.start + i * WORD;
            if !range_ok(
                usize::from(u16_at(d, at)),
                usize::from(u16_at(d, at + 2)),
                n_items,
            ) || u8_at(d, at + 6) > MAX_LEVEL
            {
                return Err(corrupt("word"));
            }
        }
        for i in 0..n_items {
            let at = s.items.start + i * ITEM;
            let levels_ok = [at + 1, at + 6, at + 7]
                .iter()
                .all(|&a| u8_at(d, a) <= MAX_LEVEL)
                && u16_at(d, at + 4) <= u16::from(MAX_LEVEL);
            let ok = match u8_at(d, at) {
                0 => {
                    u8_at(d, at + 1) <= MAX_LEVEL
                        && range_ok(
                            usize::from(u16_at(d, at + 2)),
                            usize::from(u16_at(d, at + 4)),
                            n_gpos,
                        )
                }
                1..=3 => levels_ok && usize::from(u16_at(d, at + 2)) < n_slots,
                _ => false,
            };
            if !ok {
                return Err(corrupt("item"));
            }
        }
        for i in 0..n_slots {
            let at = s.slots.start + i * SLOT;
            if !string_ok(usize_at(d, at), usize::from(u16_at(d, at + 4))) {
                return Err(corrupt("slot name"));
            }
        }
        for i in 0..n_gpos {
            if usize::from(u16_at(d, s.gpos.start + i * GPOS)) >= self.glyphs {
                return Err(corrupt("glyph index"));
            }
        }
        for i in 0..n_cmap {
            if usize::from(u16_at(d, s.cmap.start + i * CMAP + 4)) >= self.glyphs {
                return Err(corrupt("character map glyph"));
            }
        }
        if n_tiers == 0 {
            return Err(corrupt("no tier"));
        }
        if s.cover.len() != n_tiers * n_msgs.div_ceil(8) {
            return Err(corrupt("tier coverage"));
        }
        for t in 0..n_tiers {
            let tier = self.tier_at(d, t);
            if !matches!(u8_at(d, s.tiers.start + t * TIER + 2), 1 | 4) || tier.px == 0 {
                return Err(corrupt("tier"));
            }
            let metrics_end = self
                .glyphs
                .checked_mul(GMET)
                .and_then(|n| n.checked_add(tier.metrics));
            if metrics_end.is_none_or(|e| e > s.gmet.len()) || tier.bits > s.bits.len() {
                return Err(corrupt("tier tables"));
            }
            for g in 0..self.glyphs {
                let b = self.glyph_box(d, &tier, g);
                let size = row_bytes(b.width, tier.mono).saturating_mul(b.height as usize);
                let end = tier
                    .bits
                    .checked_add(b.offset)
                    .and_then(|o| o.checked_add(size));
                if end.is_none_or(|e| e > s.bits.len()) {
                    return Err(corrupt("glyph bitmap"));
                }
            }
        }
        Ok(())
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Right-to-left paragraphs (Arabic, Hebrew): lines are aligned right and the layout mirrors.
    pub fn rtl(&self) -> bool {
        self.rtl
    }

    /// The pack's size in bytes.
    pub fn bytes_len(&self) -> usize {
        self.data.len()
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.data
    }

    fn tier_at(&self, d: &[u8], t: usize) -> Tier {
        let at = self.s.tiers.start + t * TIER;
        Tier {
            index: t,
            px: u16_at(d, at),
            mono: u8_at(d, at + 2) == 1,
            ascent: u16_at(d, at + 4),
            descent: u16_at(d, at + 6),
            partial: u8_at(d, at + 3) & 1 == 1,
            metrics: usize_at(d, at + 8),
            bits: usize_at(d, at + 12),
        }
    }

    /// The sizes this pack carries, smallest first as written.
    pub fn tiers(&self) -> impl Iterator<Item = Tier> + '_ {
        (0..self.s.tiers.len() / TIER).map(|t| self.tier_at(self.bytes(), t))
    }

    /// The tier drawn at exactly `px` pixels per em.
    pub fn tier(&self, px: u16) -> Option<Tier> {
        self.tiers().find(|t| t.px == px)
    }

    /// Whether sentence `key` has its glyphs at `tier`.
    pub fn covers(&self, key: &str, tier: &Tier) -> bool {
        let Some(m) = self.message_index(key) else {
            return false;
        };
        let n = (self.s.msgs.len() / MSG).div_ceil(8);
        let at = self.s.cover.start + tier.index * n + m / 8;
        u8_at(self.bytes(), at) & (1 << (m % 8)) != 0
    }

    /// The largest tier at most `px` pixels per em that draws `key` (and `mono` when the panel
    /// has one bit per pixel), else the smallest that draws it.
    pub fn tier_for(&self, key: &str, px: u16, mono: bool) -> Option<Tier> {
        let fits = |t: &Tier| t.mono == mono && self.covers(key, t);
        self.tiers()
            .filter(|t| fits(t) && t.px <= px)
            .max_by_key(|t| t.px)
            .or_else(|| self.tiers().filter(fits).min_by_key(|t| t.px))
    }

    pub(super) fn glyph_box(&self, d: &[u8], tier: &Tier, glyph: usize) -> GlyphBox {
        let at = self.s.gmet.start + tier.metrics + glyph * GMET;
        GlyphBox {
            offset: usize_at(d, at),
            width: u32::from(u8_at(d, at + 4)),
            height: u32::from(u8_at(d, at + 5)),
            left: i32::from(i16_at(d, at + 6)),
            top: i32::from(i16_at(d, at + 8)),
        }
    }

    pub(super) fn string(&self, off: usize, len: usize) -> &str {
        let d = self.bytes();
        off.checked_add(len)
            .and_then(|end| d.get(self.s.strs.start + off..self.s.strs.start + end))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The index of message `key`.
    pub(super) fn message_index(&self, key: &str) -> Option<usize> {
        let d = self.bytes();
        (0..self.s.msgs.len() / MSG).find(|&i| {
            let at = self.s.msgs.start + i * MSG;
            self.string(usize_at(d, at), usize::from(u16_at(d, at + 4))) == key
        })
    }

    /// The sentence of `key` as the translator wrote it (placeholders in braces), for screens
    /// that print text rather than draw it.
    pub fn text(&self, key: &str) -> Option<&str> {
        let at = self.s.msgs.start + self.message_index(key)? * MSG;
        let d = self.bytes();
        Some(self.string(usize_at(d, at + 6), usize::from(u16_at(d, at + 10))))
    }

    /// Every key of the pack, in the pack's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        let d = self.bytes();
        (0..self.s.msgs.len() / MSG).map(move |i| {
            let at = self.s.msgs.start + i * MSG;
            self.string(usize_at(d, at), usize::from(u16_at(d, at + 4)))
        })
    }

    /// Every character of the pack's character map.
    #[cfg(test)]
    pub(super) fn plain_chars(&self) -> Vec<char> {
        let d = self.bytes();
        (0..self.s.cmap.len() / CMAP)
            .filter_map(|i| char::from_u32(u32_at(d, self.s.cmap.start + i * CMAP)))
            .collect()
    }

    /// The glyph and advance (font units) of `c` drawn on its own, for numbers the device fills in.
    pub(super) fn plain_glyph(&self, c: char) -> Option<(usize, i32)> {
        let d = self.bytes();
        (0..self.s.cmap.len() / CMAP).find_map(|i| {
            let at = self.s.cmap.start + i * CMAP;
            (u32_at(d, at) == u32::from(c))
                .then(|| (usize::from(u16_at(d, at + 4)), i32::from(u16_at(d, at + 6))))
        })
    }
}

/// Bytes of one bitmap row.
pub(super) fn row_bytes(width: u32, mono: bool) -> usize {
    let w = width as usize;
    if mono { w.div_ceil(8) } else { w.div_ceil(2) }
}
