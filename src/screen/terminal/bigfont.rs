//! A built-in 5×7 block font for showing the user code large on a text terminal, drawn with
//! Unicode half blocks (▀ ▄ █) so one text cell holds two font pixels and pixels come out
//! roughly square: each glyph is 5 columns by 4 rows.
//!
//! Owns the glyph bitmaps and their rendering to text rows. It does not sanitise: callers pass
//! text that has already been cleaned of control characters (the terminal backend does), though
//! the fallback still refuses to emit a control character raw.
//!
//! The glyphs follow RFC 8628 §6.1's point that user codes are typed by a person: 0 is slashed,
//! O is round, 1 has a flag and a foot, I has full-width serifs and L none, so the easily confused
//! pairs differ at a glance.

use super::half_block;

/// Height of one rendered line of big text, in terminal rows.
pub const HEIGHT: usize = 4;
/// Width of one glyph, in terminal columns.
pub const GLYPH_WIDTH: usize = 5;
/// Between two glyphs: one blank column.
const GAP: &str = " ";
/// Pixel rows of the bitmaps (the 8th pixel row of the last text row is blank).
const PIXEL_ROWS: usize = 7;
/// The text row a character without a glyph is printed on (level with the dash).
const FALLBACK_ROW: usize = 1;

type Bitmap = [&'static str; PIXEL_ROWS];

/// `#` is ink, anything else is background.
#[rustfmt::skip]
const GLYPHS: &[(char, Bitmap)] = &[
    ('A', [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('B', ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."]),
    ('C', [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."]),
    ('D', ["###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."]),
    ('E', ["#####", "#....", "#....", "####.", "#....", "#....", "#####"]),
    ('F', ["#####", "#....", "#....", "####.", "#....", "#....", "#...."]),
    ('G', [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"]),
    ('H', ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('I', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"]),
    ('J', ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."]),
    ('K', ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"]),
    ('L', ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]),
    ('M', ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"]),
    ('N', ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"]),
    ('O', [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('P', ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."]),
    ('Q', [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"]),
    ('R', ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"]),
    ('S', [".####", "#....", "#....", ".###.", "....#", "....#", "####."]),
    ('T', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]),
    ('U', ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('V', ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."]),
    ('W', ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."]),
    ('X', ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"]),
    ('Y', ["#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."]),
    ('Z', ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"]),
    // Slashed zero: never mistaken for O.
    ('0', [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]),
    // Flag and foot: never mistaken for I (serifs both ends) or L.
    ('1', ["..#..", ".##..", "#.#..", "..#..", "..#..", "..#..", "#####"]),
    ('2', [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"]),
    ('3', ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."]),
    ('4', ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."]),
    ('5', ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."]),
    ('6', ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."]),
    ('7', ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]),
    ('8', [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."]),
    ('9', [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."]),
    ('-', [".....", ".....", ".....", "#####", ".....", ".....", "....."]),
];

fn bitmap(c: char) -> Option<&'static Bitmap> {
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .map(|(_, bitmap)| bitmap)
}

fn ink(bitmap: &Bitmap, x: usize, y: usize) -> bool {
    bitmap
        .get(y)
        .and_then(|row| row.as_bytes().get(x))
        .is_some_and(|&b| b == b'#')
}

/// The `HEIGHT` rows of one glyph, each exactly `GLYPH_WIDTH` cells wide when the character has
/// a glyph. A character without one is printed plainly on the middle row, centred.
fn glyph_rows(c: char) -> [String; HEIGHT] {
    let mut rows: [String; HEIGHT] = Default::default();
    match bitmap(c) {
        Some(bitmap) => {
            for (ty, row) in rows.iter_mut().enumerate() {
                for x in 0..GLYPH_WIDTH {
                    row.push(half_block(
                        ink(bitmap, x, 2 * ty),
                        ink(bitmap, x, 2 * ty + 1),
                    ));
                }
            }
        }
        None => {
            // Defensive: the caller sanitises, but a control character must never reach the
            // terminal raw, whatever the caller did.
            let shown = if c.is_control() { '\u{FFFD}' } else { c };
            let left = GLYPH_WIDTH / 2;
            for (ty, row) in rows.iter_mut().enumerate() {
                if ty == FALLBACK_ROW {
                    row.push_str(&" ".repeat(left));
                    row.push(shown);
                    row.push_str(&" ".repeat(GLYPH_WIDTH - left - 1));
                } else {
                    row.push_str(&" ".repeat(GLYPH_WIDTH));
                }
            }
        }
    }
    rows
}

/// Renders `text` as one line of big glyphs: `HEIGHT` rows, trailing spaces trimmed.
pub fn render(text: &str) -> Vec<String> {
    let mut rows = vec![String::new(); HEIGHT];
    for (i, c) in text.chars().enumerate() {
        let glyph = glyph_rows(c);
        for (row, part) in rows.iter_mut().zip(glyph.iter()) {
            if i > 0 {
                row.push_str(GAP);
            }
            row.push_str(part);
        }
    }
    for row in &mut rows {
        let kept = row.trim_end().len();
        row.truncate(kept);
    }
    rows
}

/// Renders `text` big, breaking it into several big lines (separated by an empty row) so that
/// none is wider than `max_cols` columns. Breaks go after a dash or space when one is near the
/// end of the line, so "ABCD-EFGH" splits as "ABCD-" / "EFGH" rather than mid-group.
pub fn render_wrapped(text: &str, max_cols: usize) -> Vec<String> {
    let per_line = (max_cols.saturating_sub(GLYPH_WIDTH) / (GLYPH_WIDTH + GAP.len()) + 1).max(1);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut rest: &[char] = &chars;
    while !rest.is_empty() {
        let mut take = per_line.min(rest.len());
        if take < rest.len() {
            // Prefer a break after a separator in the second half of the line.
            if let Some(pos) = rest
                .get(..take)
                .and_then(|head| head.iter().rposition(|c| *c == '-' || *c == ' '))
            {
                if pos + 1 > take / 2 {
                    take = pos + 1;
                }
            }
        }
        let (line, tail) = rest.split_at(take);
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(render(&line.iter().collect::<String>()));
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";

    #[test]
    fn every_bitmap_is_5_by_7_of_ink_and_background() {
        for (c, bitmap) in GLYPHS {
            for row in bitmap {
                assert_eq!(row.len(), GLYPH_WIDTH, "glyph {c:?} row {row:?}");
                assert!(row.chars().all(|p| p == '#' || p == '.'), "glyph {c:?}");
            }
        }
    }

    #[test]
    fn the_font_covers_the_alphabet_digits_and_dash() {
        for c in ALPHABET.chars() {
            assert!(bitmap(c).is_some(), "no glyph for {c:?}");
        }
        assert_eq!(
            GLYPHS.len(),
            ALPHABET.chars().count(),
            "a glyph is listed twice"
        );
    }

    #[test]
    fn every_glyph_renders_distinctly_with_equal_size() {
        let renders: Vec<(char, Vec<String>)> = ALPHABET
            .chars()
            .map(|c| (c, render(&c.to_string())))
            .collect();
        for (c, rows) in &renders {
            assert_eq!(rows.len(), HEIGHT, "glyph {c:?}");
            // Untrimmed, every glyph is exactly GLYPH_WIDTH cells on every row.
            for row in glyph_rows(*c) {
                assert_eq!(row.chars().count(), GLYPH_WIDTH, "glyph {c:?}");
            }
        }
        for (i, (a, ra)) in renders.iter().enumerate() {
            for (b, rb) in renders.iter().skip(i + 1) {
                assert_ne!(ra, rb, "{a:?} and {b:?} render the same");
            }
        }
    }

    /// Number of differing pixels between two glyphs.
    fn distance(a: char, b: char) -> usize {
        let (Some(ga), Some(gb)) = (bitmap(a), bitmap(b)) else {
            panic!("missing glyph");
        };
        (0..PIXEL_ROWS)
            .flat_map(|y| (0..GLYPH_WIDTH).map(move |x| (x, y)))
            .filter(|&(x, y)| ink(ga, x, y) != ink(gb, x, y))
            .count()
    }

    #[test]
    fn confusable_pairs_differ_clearly() {
        // Not just "different": at least a few pixels apart so they differ at a distance.
        for (a, b) in [
            ('0', 'O'),
            ('0', 'D'),
            ('1', 'I'),
            ('1', 'L'),
            ('I', 'L'),
            ('1', '7'),
            ('5', 'S'),
            ('2', 'Z'),
            ('8', 'B'),
        ] {
            let d = distance(a, b);
            assert!(d >= 3, "{a:?} vs {b:?} differ in only {d} pixels");
        }
    }

    #[test]
    fn glyph_drawing_uses_half_blocks() {
        assert_eq!(render("-"), vec!["", "▄▄▄▄▄", "", ""]);
        assert_eq!(
            render("L"),
            vec!["█".to_string(), "█".into(), "█".into(), "▀▀▀▀▀".into()]
        );
    }

    #[test]
    fn unknown_characters_are_printed_plainly_and_control_characters_never() {
        let rows = render("a\u{1b}b");
        assert_eq!(rows.len(), HEIGHT);
        assert_eq!(
            rows.get(FALLBACK_ROW).map(String::as_str),
            Some("  a     \u{FFFD}     b")
        );
        assert!(rows.iter().all(|r| !r.contains('\u{1b}')));
    }

    #[test]
    fn long_codes_wrap_after_a_dash_within_the_width() {
        let rows = render_wrapped("ABCDEFGH-JKLMNOPQ", 78);
        // Two big lines separated by one empty row.
        assert_eq!(rows.len(), 2 * HEIGHT + 1);
        assert!(rows.iter().all(|r| r.chars().count() <= 78));
        let first: Vec<String> = rows.iter().take(HEIGHT).cloned().collect();
        assert_eq!(first, render("ABCDEFGH-"));
        // A short one stays on one line.
        assert_eq!(render_wrapped("WDJB-MJHT", 78), render("WDJB-MJHT"));
        // A silly width still makes progress.
        assert_eq!(render_wrapped("AB", 0).len(), 2 * HEIGHT + 1);
    }
}
