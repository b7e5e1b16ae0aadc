//! Text for the terminal: server text made safe to print, and lines measured and wrapped in
//! columns (East Asian wide characters take two, combining marks and our isolates none).

/// Whether `c` must not reach the terminal: controls (C0, DEL, C1) and characters that reorder
/// or hide text (bidi embeddings/overrides/isolates and marks, zero-width and invisible
/// formatting characters, BOM).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{00AD}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Server text made safe to print on one line: whitespace controls become a space, anything
/// else unsafe becomes U+FFFD (visible, so tampering shows), and at most `max` characters are
/// kept (then "…").
pub(super) fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(match c {
            '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            c if is_unsafe(c) => '\u{FFFD}',
            c => c,
        });
    }
    out
}

/// Word-wraps one line of text at `width` columns. A word wider than that stays whole, unless
/// it is written in wide characters (Chinese, Japanese): those may break between any two
/// (a terminal wraps a Thai or Korean word by itself, at worst in the middle).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        let n = visible_width(word);
        if len > 0 && len + 1 + n > width {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        for c in word.chars() {
            let w = char_width(c);
            // Never before a closing mark of a line (、。」…), nor before a combining mark.
            let closing = w == 0 || "、。，．」』）〉》】！？：；ー・…".contains(c);
            if w == 2 && len + w > width && len > 0 && !closing {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            line.push(c);
            len += w;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Columns a character takes on a terminal: two for East Asian wide ones, none for combining
/// marks and format characters (our isolates), else one. Covers the scripts of the packs; an
/// unknown character counts one.
fn char_width(c: char) -> usize {
    let zero = matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0591}'..='\u{05C7}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0670}'
        | '\u{0900}'..='\u{0902}'
        | '\u{093A}'..='\u{094F}'
        | '\u{0951}'..='\u{0957}'
        | '\u{0962}'..='\u{0963}'
        | '\u{0E31}'
        | '\u{0E34}'..='\u{0E3A}'
        | '\u{0E47}'..='\u{0E4E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FE00}'..='\u{FE0F}');
    let wide = matches!(c,
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{303E}'
        | '\u{3041}'..='\u{33FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{A000}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{20000}'..='\u{3FFFD}');
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

/// Columns `line` takes: characters outside our own `ESC [ … letter` sequences, each as wide
/// as [`char_width`] says.
pub(super) fn visible_width(line: &str) -> usize {
    let mut width = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Skip to the final byte of the CSI sequence.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            width += char_width(c);
        }
    }
    width
}
