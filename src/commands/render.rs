//! `devauth render`: draws the pairing screen of a board (or any size) with sample data into a
//! PNG, with no network and no config needed, for previews, docs and remote support.
//!
//! Owns the sample data of each state and the command itself. Drawing is the screen modules';
//! the board profile lookup is the config's ([`crate::config::find_board`]).

use std::path::Path;
use std::time::Duration;

#[cfg(feature = "png")]
use embedded_graphics::prelude::Size;

use crate::cli::{RenderArgs, RenderState};
use crate::config::DisplayConfig;
use crate::locale::choose::LanguageSetting;
use crate::screen::canvas::Rotation;
use crate::screen::{CodeScreen, View};

/// The sample code screen: a typical device-flow answer.
pub fn sample_code() -> CodeScreen {
    CodeScreen {
        verification_uri: "https://example.com/device".to_string(),
        qr_payload: "https://example.com/device?user_code=WDJB-MJHT".to_string(),
        user_code: "WDJB-MJHT".to_string(),
        message: None,
        remaining: Duration::from_secs(760),
        lifetime: Duration::from_secs(900),
        renewed: false,
        profile: None,
    }
}

/// The view `devauth render --state STATE` draws.
pub fn sample_view(state: RenderState) -> View {
    match state {
        RenderState::Code => View::WaitingForUser(sample_code()),
        RenderState::Renewed => View::WaitingForUser(CodeScreen {
            user_code: "KPRT-7XQ2".to_string(),
            qr_payload: "https://example.com/device?user_code=KPRT-7XQ2".to_string(),
            remaining: Duration::from_secs(900),
            renewed: true,
            ..sample_code()
        }),
        RenderState::Clock => View::WaitingForClock,
        RenderState::Retrying => View::Retrying {
            reason: "could not reach example.com (connection timed out)".to_string(),
            in_secs: 12,
            code: Some(CodeScreen {
                remaining: Duration::from_secs(611),
                ..sample_code()
            }),
        },
        RenderState::Paired => View::Paired {
            account: Some("josé.müller@example.de".to_string()),
            name: Some("José Müller".to_string()),
        },
        RenderState::Denied => View::Denied,
        RenderState::Error => View::Error {
            problem: crate::screen::Problem::Service,
        },
    }
}

/// `devauth render`: the display settings from `--board`, `--size` or the config, then
/// `--size`/`--rotate` over them, then the PNG.
pub fn command(config: Option<&Path>, args: &RenderArgs) -> Result<(), crate::error::Error> {
    let config_path = crate::config::config_path(config);
    let mut display = match (&args.board, args.size) {
        // Boards next to a config only when there is one: render needs none, and an error must
        // not name a default config that does not exist.
        (Some(board), _) => {
            let named = config.is_some()
                || std::env::var_os(crate::config::CONFIG_PATH_ENV).is_some_and(|v| !v.is_empty());
            let beside = (named || config_path.exists()).then_some(config_path.as_path());
            crate::config::board_display(board, beside)?
        }
        (None, Some(_)) => DisplayConfig::default(),
        (None, None) => crate::config::Config::load(&config_path)?.display,
    };
    if args.board.is_some() || args.size.is_some() {
        // A board or a size needs no config; the language and the packs' place are still the
        // config's when there is a readable one.
        if let Ok(c) = crate::config::Config::load(&config_path) {
            display.language = c.display.language;
            display.locale_dir = c.display.locale_dir;
        }
    }
    if let Some((w, h)) = args.size {
        display.width = Some(w);
        display.height = Some(h);
    }
    if let Some(deg) = args.rotate {
        display.rotation = Rotation::from_degrees(deg).unwrap_or_default();
    }
    if let Some(tag) = &args.language {
        display.language = LanguageSetting::parse(tag)
            .map_err(|e| crate::cli::UsageError(format!("--language: {e}")))?;
    }
    display.resolve_language();
    run(&display, args.state, &args.out)
}

#[cfg(feature = "png")]
pub fn run(
    display: &DisplayConfig,
    state: RenderState,
    out: &Path,
) -> Result<(), crate::error::Error> {
    use crate::screen::Screen;
    let size = display.size().ok_or_else(|| {
        crate::error::Error::Display(crate::error::DisplayError::Unsupported(
            "render: no size: give --board NAME or --size WxH".to_string(),
        ))
    })?;
    let view = sample_view(state);
    let profile = display.profile();
    let fits = |s: Size| crate::screen::layout::fits(&view, display.rotation.logical(s), &profile);
    if !fits(size) {
        return Err(too_small(size, &fits));
    }
    let mut screen = crate::screen::png::PngScreen::new(out, size, display.rotation, profile);
    screen.show(&view)?;
    Ok(())
}

/// A size too small for the code: the error names the smallest of the same shape that works.
#[cfg(feature = "png")]
fn too_small(size: Size, fits: &dyn Fn(Size) -> bool) -> crate::error::Error {
    let (w, h) = (size.width.max(1), size.height.max(1));
    let smallest = (1..=8192u32)
        .map(|nw| {
            Size::new(
                nw.max(w),
                (u64::from(nw.max(w)) * u64::from(h) / u64::from(w)) as u32,
            )
        })
        .filter(|s| s.width > w || s.height > h)
        .filter(|s| s.width <= 8192 && s.height <= 8192)
        .find(|s| fits(*s));
    let advice = match smallest {
        Some(s) => format!(
            "the smallest of this shape that works is {}x{}",
            s.width, s.height
        ),
        None => "no size of this shape works".to_string(),
    };
    crate::error::Error::Usage(crate::cli::UsageError(format!(
        "render: {w}x{h} is too small to show the code whole; {advice}"
    )))
}

#[cfg(not(feature = "png"))]
pub fn run(
    _display: &DisplayConfig,
    _state: RenderState,
    _out: &Path,
) -> Result<(), crate::error::Error> {
    Err(crate::error::Error::Display(
        crate::error::DisplayError::Unsupported(
            "render: this devauth was built without the png feature".to_string(),
        ),
    ))
}
