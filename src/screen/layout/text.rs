//! Text measuring and breaking: word wrap, URL and user-code splitting, the countdown clock.

use crate::screen::fonts::{FontId, drawable};

pub(super) fn width(font: FontId, scale: u32, text: &str) -> u32 {
    font.width(text) * scale
}

pub(super) fn line_height(font: FontId, scale: u32) -> u32 {
    font.height() * scale
}

/// Greedy word wrap to `max` px; words longer than a line are cut anywhere. At most `lines`
/// lines; a cut last line ends in "...".
pub(super) fn wrap(text: &str, font: FontId, scale: u32, max: u32, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if width(font, scale, &candidate) <= max {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        // The word alone: cut it where it overflows.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if width(font, scale, &piece) > max {
                piece.pop();
                if !piece.is_empty() {
                    out.push(std::mem::take(&mut piece));
                }
                piece.push(c);
            }
        }
        line = piece;
    }
    if !line.is_empty() {
        out.push(line);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            ellipsize(last, font, scale, max);
        }
    }
    out
}

/// Cuts `line` until `line + "..."` fits `max`.
pub(super) fn ellipsize(line: &mut String, font: FontId, scale: u32, max: u32) {
    while !line.is_empty() && width(font, scale, &format!("{line}...")) > max {
        line.pop();
    }
    line.push_str("...");
}

/// A URL as a person types it: without `https://` and a trailing slash.
pub(super) fn url_text(uri: &str) -> String {
    let shown = uri.strip_prefix("https://").unwrap_or(uri);
    let shown = shown.strip_suffix('/').unwrap_or(shown);
    drawable(shown)
}

/// Splits a URL into lines of at most `max` px, preferring breaks before `/`, `?` and `&`.
pub(super) fn wrap_url(url: &str, font: FontId, scale: u32, max: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = url;
    while !rest.is_empty() {
        if width(font, scale, rest) <= max {
            out.push(rest.to_string());
            break;
        }
        // The longest prefix that fits, then back off to a separator when there is one.
        let mut fit = 0;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if width(font, scale, rest.get(..end).unwrap_or(rest)) > max {
                break;
            }
            fit = end;
        }
        if fit == 0 {
            // Not even one character fits: give up rather than loop.
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

/// The user code on as few lines as fit `max` px: whole, else split at dashes or spaces, else
/// in equal chunks.
pub(super) fn split_code(code: &str, font: FontId, scale: u32, max: u32) -> Vec<String> {
    if width(font, scale, code) <= max {
        return vec![code.to_string()];
    }
    // Split at dashes and spaces; a line-ending dash is kept when it fits, dropped when not
    // (the break shows the grouping anyway).
    let fit_line = |l: &str| -> String {
        let l = l.trim_end();
        if width(font, scale, l) <= max {
            l.to_string()
        } else {
            l.trim_end_matches('-').to_string()
        }
    };
    let groups: Vec<&str> = code.split_inclusive(['-', ' ']).collect();
    if groups.len() > 1 {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for g in groups {
            let candidate = format!("{line}{g}");
            let bare = candidate.trim_end().trim_end_matches('-');
            if !line.is_empty() && width(font, scale, bare) > max {
                lines.push(fit_line(&line));
                line = g.to_string();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(fit_line(&line));
        }
        if lines.iter().all(|l| width(font, scale, l) <= max) {
            return lines;
        }
    }
    let chars: Vec<char> = code.chars().collect();
    let per_line = (max / (width(font, scale, "W").max(1))).max(1) as usize;
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
