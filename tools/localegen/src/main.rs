//! `devauth-localegen`: turns the message catalogues in `locales/` into the pre-shaped locale
//! packs in `locales/packs/` that devauth draws (docs/locales.md).
//!
//!     localegen build        write every pack
//!     localegen check        fail when a committed pack differs from what the catalogues and
//!                            fonts give now (CI)
//!     localegen hb-compare   shape every run with HarfBuzz's hb-shape too and fail on any
//!                            difference not listed in tools/localegen/hb-known-differences.txt
//!     localegen sizes        print each pack's size per tier (docs/size.md)
//!     localegen dump TAG KEY print one sentence's words, levels and glyphs
//!
//! Options: --locales DIR (default: the repository's locales/), --packs DIR (default
//! locales/packs), --only TAG[,TAG…], --tiers PX[m],… (other sizes, `m` for 1-bit: the fuzz
//! seeds are built with `--tiers 11m,15`).

mod catalogue;
mod fonts;
mod hb;
mod languages;
mod pack;
mod paragraph;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use catalogue::Catalogue;
use fonts::Fonts;
use icu_segmenter::LineSegmenter;
use languages::Language;
use paragraph::Paragraph;

struct Options {
    command: String,
    locales: PathBuf,
    packs: PathBuf,
    only: Option<Vec<String>>,
    /// Sizes other than [`pack::TIERS`] (small packs for the fuzzer's seeds).
    tiers: Vec<pack::Tier>,
    rest: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("usage: localegen build|check|hb-compare|sizes|dump")?;
    let mut o = Options {
        command,
        locales: root.join("locales"),
        packs: PathBuf::new(),
        only: None,
        tiers: pack::TIERS.to_vec(),
        rest: Vec::new(),
    };
    let mut packs = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--locales" => o.locales = args.next().ok_or("--locales DIR")?.into(),
            "--packs" => packs = Some(PathBuf::from(args.next().ok_or("--packs DIR")?)),
            "--only" => {
                o.only = Some(
                    args.next()
                        .ok_or("--only TAGS")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            "--tiers" => {
                // e.g. "11m,15,58t": pixels per em, "m" for one bit per pixel, "t" for titles only.
                o.tiers = args
                    .next()
                    .ok_or("--tiers PX[m],…")?
                    .split(',')
                    .map(|t| {
                        let mono = t.ends_with('m');
                        let titles = t.ends_with('t');
                        t.trim_end_matches(['m', 't'])
                            .parse()
                            .map(|px| pack::Tier { px, mono, titles })
                            .map_err(|_| format!("bad tier {t:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => o.rest.push(a),
        }
    }
    o.packs = packs.unwrap_or_else(|| o.locales.join("packs"));
    Ok(o)
}

/// A language's catalogue shaped, sentence by sentence.
struct Shaped {
    lang: &'static Language,
    catalogue: Catalogue,
    paragraphs: BTreeMap<String, Paragraph>,
}

fn load_all(o: &Options) -> Result<Vec<Shaped>, String> {
    let source = Catalogue::load(&o.locales.join("en.toml"))?;
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut fonts = Fonts::default();
    for lang in languages::LANGUAGES {
        if o.only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|t| t == lang.tag))
        {
            continue;
        }
        let path = o.locales.join(format!("{}.toml", lang.tag));
        if !path.exists() {
            problems.push(format!("{}: no catalogue", path.display()));
            continue;
        }
        let catalogue = Catalogue::load(&path)?;
        problems.extend(catalogue::compare(&source, &catalogue));
        let segmenter = LineSegmenter::new_dictionary(lang.breaking.options());
        let mut paragraphs = BTreeMap::new();
        for (key, sentence) in &catalogue.messages {
            let p = paragraph::build(lang, sentence, &mut fonts, &segmenter)
                .map_err(|e| format!("{}: {key}: {e}", lang.tag))?;
            paragraphs.insert(key.clone(), p);
        }
        out.push(Shaped {
            lang,
            catalogue,
            paragraphs,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

fn run() -> Result<(), String> {
    let o = parse_args()?;
    let mut fonts = Fonts::default();
    match o.command.as_str() {
        "build" | "check" | "sizes" => {
            let check = o.command == "check";
            let mut stale = Vec::new();
            if o.command == "build" {
                std::fs::create_dir_all(&o.packs)
                    .map_err(|e| format!("{}: {e}", o.packs.display()))?;
            }
            for s in load_all(&o)? {
                // English is drawn with the faces compiled into devauth; it gets no pack.
                if s.lang.tag == "en" && o.command != "sizes" {
                    continue;
                }
                let (bytes, sizes) =
                    pack::write(&o.tiers, s.lang, &s.catalogue, &s.paragraphs, &mut fonts)?;
                let path = o.packs.join(format!("{}.pack", s.lang.tag));
                match o.command.as_str() {
                    "check" => {
                        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                            stale.push(path.display().to_string());
                        }
                    }
                    "build" => {
                        std::fs::write(&path, &bytes)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        println!(
                            "{}: {} bytes, {} glyphs",
                            path.display(),
                            bytes.len(),
                            sizes.glyphs
                        );
                    }
                    _ => {
                        let tiers: Vec<String> = sizes
                            .tiers
                            .iter()
                            .map(|(px, mono, b)| {
                                format!("{px}px{} {b}", if *mono { " 1-bit" } else { "" })
                            })
                            .collect();
                        println!(
                            "{}\t{}\tglyphs {}\ttext {}\truns {}\t{}",
                            s.lang.tag,
                            sizes.total,
                            sizes.glyphs,
                            sizes.text,
                            sizes.runs,
                            tiers.join("\t")
                        );
                    }
                }
            }
            if check && !stale.is_empty() {
                return Err(format!(
                    "these packs are not what the catalogues and fonts give now; run \
                     `cargo run --manifest-path tools/localegen/Cargo.toml -- build` and commit:\n{}",
                    stale.join("\n")
                ));
            }
            if check {
                println!("every pack is current");
            }
            Ok(())
        }
        "hb-compare" => {
            let known = Path::new(env!("CARGO_MANIFEST_DIR")).join("hb-known-differences.txt");
            hb::compare(
                &load_all(&o)?
                    .iter()
                    .map(|s| (s.lang, &s.paragraphs))
                    .collect::<Vec<_>>(),
                &known,
            )
        }
        "dump" => {
            let [tag, key] = o.rest.as_slice() else {
                return Err("usage: localegen dump TAG KEY".into());
            };
            let lang = languages::find(tag).ok_or("unknown language")?;
            let cat = Catalogue::load(&o.locales.join(format!("{tag}.toml")))?;
            let sentence = cat.messages.get(key).ok_or("no such key")?;
            let seg = LineSegmenter::new_dictionary(lang.breaking.options());
            let p = paragraph::build(lang, sentence, &mut fonts, &seg)?;
            for r in &p.runs {
                println!(
                    "run {:?} rtl={} {:?}: {:?}",
                    r.text, r.rtl, r.script, r.glyphs
                );
            }
            for w in &p.words {
                println!("{w:?}");
            }
            Ok(())
        }
        c => Err(format!("unknown command {c}")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("localegen: {e}");
            ExitCode::FAILURE
        }
    }
}
