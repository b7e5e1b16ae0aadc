//! Writing a locale pack: the binary format read by devauth's `src/locale/pack.rs`
//! (docs/locales.md has the layout). Everything is little endian and in a fixed order, so the
//! same catalogue and fonts always give the same bytes (CI regenerates and compares).

use std::collections::BTreeMap;

use crate::catalogue::Catalogue;
use crate::fonts::{Bitmap, Fonts, Raster, nominal, shape};
use crate::languages::{FontSpec, Language, SlotKind};
use crate::paragraph::{Item, Paragraph};

pub const MAGIC: &[u8; 4] = b"DVLP";
pub const VERSION: u16 = 1;
const HEADER: usize = 32;
const UNITS_PER_EM: u16 = 1000;

/// One size the glyphs are drawn at.
#[derive(Debug, Clone, Copy)]
pub struct Tier {
    /// Pixels per em.
    pub px: u16,
    /// One bit per pixel (monochrome panels), else four.
    pub mono: bool,
    /// Only the titles are drawn at this size (the 1080p title face), so only their glyphs are.
    pub titles: bool,
}

const fn tier(px: u16) -> Tier {
    Tier {
        px,
        mono: false,
        titles: false,
    }
}

/// The sizes every pack carries; the device picks the one its layout asks for. They match the
/// screens' u8g2 faces by cap height (Noto's is 0.714 em): Regular11 → 15, 14 → 20, 20 → 28,
/// 30 → 42, Bold42 → 58 (titles only); the 128×64 OLED's 6×10 face → 11 at one bit.
pub const TIERS: &[Tier] = &[
    Tier {
        px: 11,
        mono: true,
        titles: false,
    },
    tier(15),
    tier(20),
    tier(28),
    tier(42),
    Tier {
        px: 58,
        mono: false,
        titles: true,
    },
];

/// Scripts whose letters are drawn one glyph each, so a name in them needs no shaper.
fn unshaped_script(c: char) -> bool {
    use harfrust::Script;
    let s = harfrust::unicode::script(c as u32);
    [
        Script::LATIN,
        Script::GREEK,
        Script::CYRILLIC,
        Script::HEBREW,
        Script::HAN,
        Script::HIRAGANA,
        Script::KATAKANA,
        Script::HANGUL,
    ]
    .contains(&s)
        // The prolonged sound mark ー and the like: letters of no one script.
        || s == Script::COMMON
}

/// Sentences the screens draw as titles (`code_title`, `paired_welcome`, …).
pub fn is_title(key: &str) -> bool {
    key.ends_with("_title") || key.contains("_title_") || key == "paired_welcome"
}

/// Characters every pack can draw unshaped, for the numbers and times the device fills in.
const PLAIN: &str = "0123456789:.,-/ %";

/// Sizes of a pack's parts, for docs/size.md.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    pub total: usize,
    pub text: usize,
    pub runs: usize,
    /// Per tier: metrics + bitmaps.
    pub tiers: Vec<(u16, bool, usize)>,
    pub glyphs: usize,
}

#[derive(Default)]
struct Writer {
    strings: Vec<u8>,
}

impl Writer {
    fn string(&mut self, s: &str) -> Result<(u32, u16), String> {
        let off = u32::try_from(self.strings.len()).map_err(|_| "strings too long")?;
        let len = u16::try_from(s.len()).map_err(|_| format!("string too long: {s:?}"))?;
        self.strings.extend_from_slice(s.as_bytes());
        Ok((off, len))
    }
}

fn u16_of(v: usize, what: &str) -> Result<u16, String> {
    u16::try_from(v).map_err(|_| format!("too many {what} for the pack format ({v})"))
}

fn i16_of(v: i32, what: &str) -> Result<i16, String> {
    i16::try_from(v).map_err(|_| format!("{what} out of range ({v})"))
}

pub fn write(
    tiers: &[Tier],
    lang: &Language,
    catalogue: &Catalogue,
    paragraphs: &BTreeMap<String, Paragraph>,
    fonts: &mut Fonts,
) -> Result<(Vec<u8>, Sizes), String> {
    for spec in lang.fonts {
        let upem = fonts.get(*spec)?.units_per_em();
        if upem != UNITS_PER_EM {
            return Err(format!(
                "{}: {upem} units per em, the pack format assumes {UNITS_PER_EM}",
                spec.path()
            ));
        }
    }
    // Every glyph used, numbered in a fixed order.
    let mut glyph_set: BTreeMap<(FontSpec, u32), u16> = BTreeMap::new();
    for p in paragraphs.values() {
        for w in &p.words {
            for item in &w.items {
                if let Item::Run { glyphs, .. } = item {
                    for g in glyphs {
                        glyph_set.insert((g.font, g.gid), 0);
                    }
                }
            }
        }
    }
    // Characters drawn unshaped: the digits and signs of numbers, and every letter of the
    // catalogue in a script that needs no shaping, so a name written in it (a Hebrew or a
    // Japanese name) can be drawn when the pack happens to have all its letters.
    let mut chars: Vec<char> = PLAIN.chars().collect();
    let mut letters: Vec<char> = catalogue
        .messages
        .values()
        .flat_map(|t| crate::catalogue::pieces(t).unwrap_or_default())
        .filter_map(|p| match p {
            crate::catalogue::Piece::Text(t) => Some(t),
            crate::catalogue::Piece::Slot(_) => None,
        })
        .flat_map(|t| t.chars().collect::<Vec<_>>())
        .filter(|c| c.is_alphabetic() && unshaped_script(*c))
        .collect();
    letters.sort_unstable();
    letters.dedup();
    chars.extend(letters.into_iter().filter(|c| !PLAIN.contains(*c)));
    let mut plain: Vec<(char, FontSpec, u32, i32)> = Vec::new();
    for c in chars {
        for spec in lang.fonts {
            let font = fonts.get(*spec)?;
            if nominal(font, c).is_some() {
                let script = harfrust::unicode::script(c as u32);
                let script = if script == harfrust::Script::COMMON {
                    harfrust::Script::LATIN
                } else {
                    script
                };
                let shaped = shape(font, &c.to_string(), false, script, lang.shaping)?;
                if let [g] = shaped.as_slice() {
                    plain.push((c, *spec, g.gid, g.x_advance));
                    glyph_set.insert((*spec, g.gid), 0);
                }
                break;
            }
        }
    }
    plain.sort_by_key(|p| p.0);
    for (i, v) in glyph_set.values_mut().enumerate() {
        *v = u16_of(i, "glyphs")?;
    }
    let glyph_index = |font: FontSpec, gid: u32| glyph_set.get(&(font, gid)).copied().unwrap_or(0);

    let mut w = Writer::default();
    let mut msgs = Vec::new();
    let mut words = Vec::new();
    let mut items = Vec::new();
    let mut gpos = Vec::new();
    let mut slot_names: Vec<String> = Vec::new();
    let (mut n_words, mut n_items, mut n_gpos) = (0usize, 0usize, 0usize);
    for (key, p) in paragraphs {
        let text = catalogue
            .messages
            .get(key)
            .ok_or("paragraph without a sentence")?;
        let (ko, kl) = w.string(key)?;
        let (to, tl) = w.string(text)?;
        put32(&mut msgs, ko);
        put16(&mut msgs, kl);
        put32(&mut msgs, to);
        put16(&mut msgs, tl);
        put16(&mut msgs, u16_of(n_words, "words")?);
        put16(&mut msgs, u16_of(p.words.len(), "words in a sentence")?);
        for word in &p.words {
            put16(&mut words, u16_of(n_items, "items")?);
            put16(&mut words, u16_of(word.items.len(), "items in a word")?);
            let (adv, level, flags) = match word.space {
                Some(s) => (
                    u16::try_from(s.advance).map_err(|_| "space advance")?,
                    s.level,
                    1u8,
                ),
                None => (0, 0, 0),
            };
            put16(&mut words, adv);
            words.push(level);
            words.push(flags);
            n_words += 1;
            for item in &word.items {
                match item {
                    Item::Run { level, glyphs } => {
                        items.push(0);
                        items.push(*level);
                        put16(&mut items, u16_of(n_gpos, "positioned glyphs")?);
                        put16(&mut items, u16_of(glyphs.len(), "glyphs in a run")?);
                        items.push(0);
                        items.push(0);
                        for g in glyphs {
                            put16(&mut gpos, glyph_index(g.font, g.gid));
                            put16(&mut gpos, i16_of(g.x_advance, "advance")? as u16);
                            put16(&mut gpos, i16_of(g.x_offset, "x offset")? as u16);
                            put16(&mut gpos, i16_of(g.y_offset, "y offset")? as u16);
                            n_gpos += 1;
                        }
                    }
                    Item::Slot(s) => {
                        let name = match slot_names.iter().position(|n| *n == s.name) {
                            Some(i) => i,
                            None => {
                                slot_names.push(s.name.clone());
                                slot_names.len() - 1
                            }
                        };
                        items.push(match s.kind {
                            SlotKind::Ltr => 1,
                            SlotKind::Number => 2,
                            SlotKind::Text => 3,
                        });
                        items.push(s.open);
                        put16(&mut items, u16_of(name, "slot names")?);
                        put16(&mut items, u16::from(s.close));
                        items.push(s.ltr);
                        items.push(s.rtl);
                    }
                }
                n_items += 1;
            }
        }
    }
    let mut slots = Vec::new();
    for name in &slot_names {
        let (o, l) = w.string(name)?;
        put32(&mut slots, o);
        put16(&mut slots, l);
    }
    let mut cmap = Vec::new();
    for (c, font, gid, adv) in &plain {
        put32(&mut cmap, *c as u32);
        put16(&mut cmap, glyph_index(*font, *gid));
        put16(&mut cmap, u16::try_from(*adv).map_err(|_| "advance")?);
    }

    // The atlas: every glyph at every tier.
    let mut tier_table = Vec::new();
    let mut gmet = Vec::new();
    let mut bits = Vec::new();
    let mut tcov = Vec::new();
    let mut sizes = Sizes::default();
    for tier in tiers.iter().filter(|t| lang.mono || !t.mono) {
        let mut rasters: BTreeMap<FontSpec, Raster> = BTreeMap::new();
        let metrics_off = gmet.len();
        let bits_off = bits.len();
        let covered = |key: &str| !tier.titles || is_title(key);
        let mut wanted: BTreeMap<(FontSpec, u32), ()> = BTreeMap::new();
        for p in paragraphs
            .iter()
            .filter(|(k, _)| covered(k))
            .map(|(_, p)| p)
        {
            for w in &p.words {
                for item in &w.items {
                    if let Item::Run { glyphs, .. } = item {
                        for g in glyphs {
                            wanted.insert((g.font, g.gid), ());
                        }
                    }
                }
            }
        }
        if !tier.titles {
            for (_, font, gid, _) in &plain {
                wanted.insert((*font, *gid), ());
            }
        }
        let mut cover = vec![0u8; paragraphs.len().div_ceil(8)];
        for (i, key) in paragraphs.keys().enumerate() {
            if covered(key) {
                cover[i / 8] |= 1 << (i % 8);
            }
        }
        tcov.extend_from_slice(&cover);
        let mut bitmaps = Vec::with_capacity(glyph_set.len());
        for (font, gid) in glyph_set.keys() {
            if !wanted.contains_key(&(*font, *gid)) {
                bitmaps.push(Bitmap::empty());
                continue;
            }
            if !rasters.contains_key(font) {
                let f = fonts.get(*font)?;
                rasters.insert(*font, Raster::new(f, f32::from(tier.px), tier.mono));
            }
            let r = rasters.get(font).ok_or("raster")?;
            bitmaps.push(r.glyph(*gid)?);
        }
        for b in &bitmaps {
            let off = u32::try_from(bits.len() - bits_off).map_err(|_| "atlas too big")?;
            put32(&mut gmet, off);
            gmet.push(u8::try_from(b.width).map_err(|_| "glyph too wide")?);
            gmet.push(u8::try_from(b.height).map_err(|_| "glyph too tall")?);
            put16(&mut gmet, i16_of(b.left, "left bearing")? as u16);
            put16(&mut gmet, i16_of(b.top, "glyph top")? as u16);
            pack_bitmap(b, tier.mono, &mut bits);
        }
        let (ascent, descent) = extents(tier, paragraphs, &plain, &glyph_set, &bitmaps);
        put16(&mut tier_table, tier.px);
        tier_table.push(if tier.mono { 1 } else { 4 });
        tier_table.push(u8::from(tier.titles));
        put16(&mut tier_table, ascent);
        put16(&mut tier_table, descent);
        put32(
            &mut tier_table,
            u32::try_from(metrics_off).map_err(|_| "metrics")?,
        );
        put32(
            &mut tier_table,
            u32::try_from(bits_off).map_err(|_| "bits")?,
        );
        sizes.tiers.push((
            tier.px,
            tier.mono,
            gmet.len() - metrics_off + bits.len() - bits_off,
        ));
    }

    let sections: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"STRS", std::mem::take(&mut w.strings)),
        (b"MSGS", msgs),
        (b"WRDS", words),
        (b"ITEM", items),
        (b"SLOT", slots),
        (b"GPOS", gpos),
        (b"CMAP", cmap),
        (b"TIER", tier_table),
        (b"GMET", gmet),
        (b"BITS", bits),
        (b"TCOV", tcov),
    ];
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put16(&mut out, VERSION);
    put16(&mut out, u16::from(lang.rtl));
    let mut tag = [0u8; 12];
    let t = lang.tag.as_bytes();
    tag.get_mut(..t.len())
        .ok_or("tag too long")?
        .copy_from_slice(t);
    out.extend_from_slice(&tag);
    put16(&mut out, UNITS_PER_EM);
    put16(&mut out, u16_of(sections.len(), "sections")?);
    let total_at = out.len();
    put32(&mut out, 0);
    put16(&mut out, u16_of(glyph_set.len(), "glyphs")?);
    put16(&mut out, 0);
    debug_assert_eq!(out.len(), HEADER);
    let mut offset = HEADER + 12 * sections.len();
    for (id, data) in &sections {
        out.extend_from_slice(*id);
        put32(&mut out, u32::try_from(offset).map_err(|_| "pack too big")?);
        put32(
            &mut out,
            u32::try_from(data.len()).map_err(|_| "section too big")?,
        );
        offset += data.len();
    }
    for (id, data) in &sections {
        match *id {
            b"STRS" => sizes.text += data.len(),
            b"MSGS" | b"SLOT" | b"CMAP" => sizes.text += data.len(),
            b"WRDS" | b"ITEM" | b"GPOS" | b"TCOV" => sizes.runs += data.len(),
            _ => {}
        }
        out.extend_from_slice(data);
    }
    let total = u32::try_from(out.len()).map_err(|_| "pack too big")?;
    out[total_at..total_at + 4].copy_from_slice(&total.to_le_bytes());
    sizes.total = out.len();
    sizes.glyphs = glyph_set.len();
    Ok((out, sizes))
}

/// Ink above and below the baseline over every glyph as placed (marks moved by the shaper
/// included), so a line of this pack at this size never draws outside its line box.
fn extents(
    tier: &Tier,
    paragraphs: &BTreeMap<String, Paragraph>,
    plain: &[(char, FontSpec, u32, i32)],
    glyph_set: &BTreeMap<(FontSpec, u32), u16>,
    bitmaps: &[Bitmap],
) -> (u16, u16) {
    let px = i32::from(tier.px);
    let scale = |v: i32| (v * px * 64 / i32::from(UNITS_PER_EM) + 32).div_euclid(64);
    let bitmap = |font: FontSpec, gid: u32| {
        glyph_set
            .get(&(font, gid))
            .and_then(|i| bitmaps.get(usize::from(*i)))
    };
    let (mut up, mut down) = (0i32, 0i32);
    let mut see = |b: &Bitmap, y_off: i32| {
        if b.height > 0 {
            up = up.max(b.top + scale(y_off));
            down = down.max(b.height as i32 - b.top - scale(y_off));
        }
    };
    for p in paragraphs.values() {
        for w in &p.words {
            for item in &w.items {
                if let Item::Run { glyphs, .. } = item {
                    for g in glyphs {
                        if let Some(b) = bitmap(g.font, g.gid) {
                            see(b, g.y_offset);
                        }
                    }
                }
            }
        }
    }
    for (_, font, gid, _) in plain {
        if let Some(b) = bitmap(*font, *gid) {
            see(b, 0);
        }
    }
    (up.max(0) as u16, down.max(0) as u16)
}

fn pack_bitmap(b: &Bitmap, mono: bool, out: &mut Vec<u8>) {
    let w = b.width as usize;
    for row in b.coverage.chunks(w.max(1)).take(b.height as usize) {
        if mono {
            for chunk in row.chunks(8) {
                let mut byte = 0u8;
                for (i, &c) in chunk.iter().enumerate() {
                    if c >= 128 {
                        byte |= 0x80 >> i;
                    }
                }
                out.push(byte);
            }
        } else {
            for pair in row.chunks(2) {
                let nib = |c: u8| (u16::from(c) * 15 + 127) / 255;
                let hi = nib(pair[0]) as u8;
                let lo = pair.get(1).map_or(0, |&c| nib(c) as u8);
                out.push(hi << 4 | lo);
            }
        }
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
