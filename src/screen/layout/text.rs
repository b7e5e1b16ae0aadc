//! Text measuring and breaking: balanced word wrap, URL and user-code splitting, the countdown
//! clock.
//!
//! This is where every line of the pixel screens is measured ([`Face::width`]) and broken
//! ([`wrap`], [`wrap_url`], [`split_code`]); `column.rs` places the lines and `draw.rs` draws
//! them. Nothing here cuts text short: a paragraph too long for its room is left out whole by
//! the caller, and the URL and the code are never shortened.

use crate::screen::fonts::FontId;

/// A face at an integer pixel scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Face {
    pub font: FontId,
    pub scale: u32,
}

impl Face {
    pub const fn new(font: FontId, scale: u32) -> Face {
        Face { font, scale }
    }

    pub fn width(self, text: &str) -> u32 {
        self.font.width(text) * self.scale
    }

    /// Ascent plus descent: the box of one line.
    pub fn height(self) -> u32 {
        self.font.height() * self.scale
    }

    pub fn covers(self, text: &str) -> bool {
        self.font.covers(text)
    }
}

/// Greedy word wrap to `max` px, then balanced: the narrowest width that needs no more lines
/// is used, so a paragraph's last line is never a lone short word ("go to" under a long line).
/// A word wider than `max` is cut where it overflows (only e-mail addresses and names are that
/// long); the caller sees every line and decides whether they fit.
pub fn wrap(text: &str, face: Face, max: u32) -> Vec<String> {
    let words = measure_words(text, face);
    let greedy = wrap_measured(&words, face, max);
    if greedy.len() < 2 {
        return greedy;
    }
    // Binary search the narrowest width with the same number of lines (never narrower than
    // the widest word, which would be cut).
    let widest = words.iter().map(|w| w.1).max().unwrap_or(0).min(max);
    let (mut lo, mut hi) = (widest.max(1), max);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if wrap_measured(&words, face, mid).len() <= greedy.len() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    wrap_measured(&words, face, hi)
}

/// The words of `text` with their widths. A face's advances add up (no kerning), so a line's
/// width is its words' plus the spaces': each word is measured once, not once per try.
fn measure_words(text: &str, face: Face) -> Vec<(&str, u32)> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| (w, face.width(w)))
        .collect()
}

fn wrap_measured(words: &[(&str, u32)], face: Face, max: u32) -> Vec<String> {
    let space = face.width(" ");
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_w = 0;
    for &(word, w) in words {
        if line.is_empty() && w <= max {
            line.push_str(word);
            line_w = w;
            continue;
        }
        if !line.is_empty() && line_w + space + w <= max {
            line.push(' ');
            line.push_str(word);
            line_w += space + w;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        line_w = w;
        if w <= max {
            line.push_str(word);
            continue;
        }
        // The word alone is too wide: cut it where it overflows.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if face.width(&piece) > max {
                piece.pop();
                if !piece.is_empty() {
                    out.push(std::mem::take(&mut piece));
                }
                piece.push(c);
            }
        }
        line_w = face.width(&piece);
        line = piece;
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// A URL as a person types it: without `https://` and a trailing slash.
pub fn url_text(uri: &str) -> String {
    let shown = uri.strip_prefix("https://").unwrap_or(uri);
    let shown = shown.strip_suffix('/').unwrap_or(shown);
    shown.to_string()
}

/// Splits a URL into lines of at most `max` px, preferring breaks before `/`, `?` and `&`.
/// Every character is kept: the lines joined are the URL.
pub fn wrap_url(url: &str, face: Face, max: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = url;
    while !rest.is_empty() {
        if face.width(rest) <= max {
            out.push(rest.to_string());
            break;
        }
        // The longest prefix that fits, then back off to a separator when there is one.
        let mut fit = 0;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if face.width(rest.get(..end).unwrap_or(rest)) > max {
                break;
            }
            fit = end;
        }
        if fit == 0 {
            // Not even one character fits: the caller sees a line wider than `max`.
            out.push(rest.to_string());
            break;
        }
        let cut = rest
            .get(..fit)
            .and_then(|head| head.rfind(['/', '?', '&']))
            .filter(|&i| i > 0)
            .unwrap_or(fit);
        let (head, tail) = rest.split_at(cut);
        out.push(head.to_string());
        rest = tail;
    }
    out
}

/// The user code on as few lines as fit `max` px, exactly as sent: whole, else split after its
/// hyphens or at its spaces (the hyphen stays at the end of its line: "WDJB-" / "MJHT"), else in
/// equal chunks. Joined (with a space where a space was broken) the lines are the code.
pub fn split_code(code: &str, face: Face, max: u32) -> Vec<String> {
    if face.width(code) <= max {
        return vec![code.to_string()];
    }
    let groups: Vec<&str> = code.split_inclusive(['-', ' ']).collect();
    if groups.len() > 1 {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for g in groups {
            let candidate = format!("{line}{g}");
            if !line.is_empty() && face.width(candidate.trim_end()) > max {
                lines.push(line.trim_end().to_string());
                line = g.to_string();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line.trim_end().to_string());
        }
        if lines.iter().all(|l| face.width(l) <= max) {
            return lines;
        }
    }
    let chars: Vec<char> = code.chars().collect();
    let per_line = (max / face.width("W").max(1)).max(1) as usize;
    chars
        .chunks(per_line)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// `12:34`, or `1:02:03` from an hour up.
pub fn clock_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}
