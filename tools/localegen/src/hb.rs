//! The exact check of the shaping: every run the generator shaped with harfrust is shaped again
//! by HarfBuzz itself (`hb-shape` from Debian's libharfbuzz-bin, with the same font, face,
//! direction, script and language) and the glyph ids, clusters, advances and offsets must be
//! equal. A difference is allowed only when `hb-known-differences.txt` lists it (a language
//! tag, a tab, the run's text), and a listed difference that no longer occurs fails too, so the
//! list stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::fonts::ShapedGlyph;
use crate::languages::{FontSpec, Language};
use crate::paragraph::Paragraph;

/// Runs shaped the same way, sent to one hb-shape process.
type GroupKey = (FontSpec, bool, [u8; 4], &'static str);

struct Case {
    lang: &'static str,
    key: String,
    text: String,
    ours: Vec<ShapedGlyph>,
}

pub fn compare(
    langs: &[(&'static Language, &BTreeMap<String, Paragraph>)],
    known_path: &Path,
) -> Result<(), String> {
    let known = read_known(known_path)?;
    let mut groups: BTreeMap<GroupKey, Vec<Case>> = BTreeMap::new();
    for (lang, paragraphs) in langs {
        for (key, p) in *paragraphs {
            for r in &p.runs {
                let tag = r.script.tag().to_be_bytes();
                groups
                    .entry((r.font, r.rtl, tag, r.language))
                    .or_default()
                    .push(Case {
                        lang: lang.tag,
                        key: key.clone(),
                        text: r.text.clone(),
                        ours: r.glyphs.clone(),
                    });
            }
        }
    }
    let version = Command::new("hb-shape")
        .arg("--version")
        .output()
        .map_err(|e| format!("hb-shape: {e} (install Debian's libharfbuzz-bin)"))?;
    let version = String::from_utf8_lossy(&version.stdout);
    println!(
        "comparing with {}",
        version.lines().next().unwrap_or("hb-shape")
    );
    let mut runs = 0;
    let mut differ = BTreeSet::new();
    let mut report = Vec::new();
    for ((font, rtl, script, language), cases) in &groups {
        let mut file = tempfile()?;
        for c in cases {
            writeln!(file.1, "{}", c.text).map_err(|e| e.to_string())?;
        }
        file.1.flush().map_err(|e| e.to_string())?;
        let out = Command::new("hb-shape")
            .arg(format!("--font-file={}", font.path()))
            .arg(format!("--face-index={}", font.face))
            .arg(format!("--direction={}", if *rtl { "rtl" } else { "ltr" }))
            .arg(format!("--script={}", String::from_utf8_lossy(script)))
            .arg(format!("--language={language}"))
            .arg("--utf8-clusters")
            .arg("--no-glyph-names")
            .arg(format!("--text-file={}", file.0))
            .output()
            .map_err(|e| format!("hb-shape: {e}"))?;
        let _ = std::fs::remove_file(&file.0);
        if !out.status.success() {
            return Err(format!(
                "hb-shape failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != cases.len() {
            return Err(format!(
                "hb-shape gave {} lines for {} runs",
                lines.len(),
                cases.len()
            ));
        }
        for (c, line) in cases.iter().zip(lines) {
            runs += 1;
            let theirs = parse(line).map_err(|e| format!("hb-shape output {line:?}: {e}"))?;
            if theirs != c.ours {
                differ.insert((c.lang.to_string(), c.text.clone()));
                if !known.contains(&(c.lang.to_string(), c.text.clone())) {
                    report.push(format!(
                        "{} {}: {:?}\n  harfrust: {}\n  hb-shape: {}",
                        c.lang,
                        c.key,
                        c.text,
                        show(&c.ours),
                        line
                    ));
                }
            }
        }
    }
    let stale: Vec<_> = known.difference(&differ).collect();
    println!(
        "{runs} runs shaped by both; {} differ, all listed as known: {}",
        differ.len(),
        report.is_empty()
    );
    if !report.is_empty() {
        return Err(format!(
            "harfrust and hb-shape differ:\n{}",
            report.join("\n")
        ));
    }
    if !stale.is_empty() {
        return Err(format!(
            "{} lists differences that no longer occur (remove them): {stale:?}",
            known_path.display()
        ));
    }
    Ok(())
}

fn read_known(path: &Path) -> Result<BTreeSet<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect())
}

fn tempfile() -> Result<(String, std::fs::File), String> {
    let path = std::env::temp_dir().join(format!("localegen-hb-{}.txt", std::process::id()));
    let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path.display().to_string(), f))
}

fn show(glyphs: &[ShapedGlyph]) -> String {
    let parts: Vec<String> = glyphs
        .iter()
        .map(|g| {
            let off = if g.x_offset != 0 || g.y_offset != 0 {
                format!("@{},{}", g.x_offset, g.y_offset)
            } else {
                String::new()
            };
            format!("{}={}{}+{}", g.gid, g.cluster, off, g.x_advance)
        })
        .collect();
    format!("[{}]", parts.join("|"))
}

/// `[gid=cluster@x,y+adv|…]`, hb-shape's text format.
fn parse(line: &str) -> Result<Vec<ShapedGlyph>, String> {
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or("no brackets")?;
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split('|')
        .map(|g| {
            let (gid, rest) = g.split_once('=').ok_or("no '='")?;
            let (rest, adv) = rest.split_once('+').ok_or("no '+'")?;
            let (cluster, off) = match rest.split_once('@') {
                Some((c, o)) => (c, Some(o)),
                None => (rest, None),
            };
            let (x_offset, y_offset) = match off {
                Some(o) => {
                    let (x, y) = o.split_once(',').ok_or("no ','")?;
                    (num(x)?, num(y)?)
                }
                None => (0, 0),
            };
            Ok(ShapedGlyph {
                gid: num(gid)? as u32,
                cluster: num(cluster)? as u32,
                x_advance: num(adv)?,
                x_offset,
                y_offset,
            })
        })
        .collect()
}

fn num(s: &str) -> Result<i32, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hb_shape_text() {
        let g = parse("[42=0+520|181=3@-5,10+0]").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            (
                g[1].gid,
                g[1].cluster,
                g[1].x_offset,
                g[1].y_offset,
                g[1].x_advance
            ),
            (181, 3, -5, 10, 0)
        );
    }
}
