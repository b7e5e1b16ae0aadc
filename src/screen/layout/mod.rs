//! Where everything goes on a pixel screen: a pure function from a [`View`], a display size and a
//! [`Profile`] to a [`Layout`] (text lines, the QR symbol, fills, and the countdown slot).
//!
//! Owns the arrangement rules: the size tiers (128×64 OLED, small SPI panels, 720p and 1080p
//! TVs; 4K draws the 1080p layout at 2× zoom), landscape (text left, QR right) versus portrait or
//! square (stacked), the title-safe margin, which parts are dropped when space runs out (the URL,
//! the user code and the countdown never are: RFC 8628 §3.3), and the countdown slot. It does not
//! draw (`draw.rs`), does not know pixel formats or devices (the backends), and reads no clock:
//! the time left comes in the view.
//!
//! Words come from the message catalogue (`screen::catalog`), by key; text from outside (names,
//! the account, the device name, the provider's message) is sanitised
//! ([`crate::screen::fonts::sanitize`]) and drawn in a face that has its letters, or left out
//! (listed in [`Layout::omitted`], never drawn as `?`). When space runs out, parts are left out
//! whole in a fixed order (docs/display.md), never cut short with "...".
//!
//! A layout never depends on the time left, except for the OLED page (see [`page_of`]), so a
//! backend can keep it for the life of a code and redraw only the [`Ticker`] each second: that
//! rectangle holds the countdown text and the progress bar, and overlaps nothing else, so a
//! countdown tick cannot touch the QR.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

mod code;
mod column;
mod shaped;
#[cfg(test)]
mod tests;
mod text;
mod tick;
mod words;

use super::View;
use super::catalog::{Msg, Slot};
use super::fonts::{FontId, sanitize};
use super::language::Language;
use super::qr::Fitted;
use code::{code_screen, oled_alternates};
use column::{Piece, column_height, column_width, place, spaced, to_i32};
pub use shaped::{ShapedLine, Value};
pub use text::{Face, clock_text};
pub use tick::tick;
use words::Words;

/// What a board or config says about the display beyond its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Margin kept free on every side, in percent of the width/height (TV overscan: 5).
    pub safe_percent: u32,
    /// One bit per pixel (SSD1306): no colours, no anti-aliasing.
    pub mono: bool,
    /// `[display] theme`.
    pub theme: Theme,
    /// `[display] text_scale` in percent (100..=300): larger faces for the words, for viewers
    /// with low vision.
    pub text_percent: u32,
    /// `[display] device_name`, named in the warning against code phishing.
    pub device_name: Option<String>,
    /// The language of the words (English by default; `screen::language::resolve`).
    pub language: Language,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            safe_percent: 0,
            mono: false,
            theme: Theme::Dark,
            text_percent: 100,
            device_name: None,
            language: Language::english(),
        }
    }
}

/// `[display] theme`: the colours of the pixel screens (`draw.rs` maps roles to colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Light text on a dark blue-grey ground: calm in a dim room (the default).
    #[default]
    Dark,
    /// Dark text on white, for bright rooms and panels that look washed out dark.
    Light,
    /// White and yellow on black, nothing muted: the most contrast for low vision.
    HighContrast,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Dark, Theme::Light, Theme::HighContrast];

    pub fn name(self) -> &'static str {
        match self {
            Theme::Dark => "dark",
            Theme::Light => "light",
            Theme::HighContrast => "high-contrast",
        }
    }
}

/// The colour role of a drawn part; `draw.rs` maps roles to colours per display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Background,
    Text,
    Muted,
    /// The user code.
    Code,
    /// The verification URL.
    Link,
    /// Light modules and quiet zone of the QR.
    QrLight,
    QrDark,
    BarTrack,
    BarFill,
    Good,
    Bad,
    Warn,
}

/// One line of text, top-left anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub origin: Point,
    /// Already [`drawable`].
    pub text: String,
    pub font: FontId,
    /// Integer pixel scale of the face.
    pub scale: u32,
    pub role: Role,
}

impl Text {
    /// The box the line may draw in: advance width × (ascent + descent), scaled.
    pub fn rect(&self) -> Rectangle {
        Rectangle::new(
            self.origin,
            Size::new(
                self.font.width(&self.text) * self.scale,
                self.font.height() * self.scale,
            ),
        )
    }
}

/// A drawn part that does not change while the layout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Fill {
        rect: Rectangle,
        role: Role,
    },
    Text(Text),
    /// A line of the language's pack, top-left at `origin`.
    Shaped {
        origin: Point,
        shaped: ShapedLine,
        role: Role,
    },
    /// The QR symbol with its quiet zone, top-left at `origin`.
    Qr {
        origin: Point,
        code: Fitted,
    },
}

impl Item {
    pub fn rect(&self) -> Rectangle {
        match self {
            Item::Fill { rect, .. } => *rect,
            Item::Text(t) => t.rect(),
            Item::Shaped { origin, shaped, .. } => Rectangle::new(*origin, shaped.size()),
            Item::Qr { origin, code } => {
                Rectangle::new(*origin, Size::new(code.side(), code.side()))
            }
        }
    }
}

/// Horizontal alignment of the countdown text inside its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    /// A right-to-left language's column (the mirror of `Left`).
    Right,
}

/// The region redrawn on every countdown tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker {
    /// Everything a tick may touch; cleared to the background first.
    pub rect: Rectangle,
    /// Top-left of the text line; the text is aligned inside `rect`'s width.
    pub text_y: i32,
    pub font: FontId,
    pub scale: u32,
    pub align: Align,
    /// The progress bar (track), when there is a lifetime to show.
    pub bar: Option<Rectangle>,
    /// The language the countdown is written in.
    pub language: Language,
    /// The panel has one bit per pixel (the packs' 1-bit size).
    pub mono: bool,
    /// The bar empties towards the left (right-to-left languages: it mirrors).
    pub rtl: bool,
}

/// The dynamic content of the [`Ticker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The text as read (logical order, placeholders filled in).
    pub text: String,
    /// How a language with a pack draws it; `None`: `text` in the ticker's u8g2 face.
    pub shaped: Option<ShapedLine>,
    pub role: Role,
    /// Bar fill in 1/1000 of the track.
    pub permille: u32,
}

/// A whole screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Logical size the coordinates below are in (the display size divided by `zoom`).
    pub size: Size,
    /// Every coordinate is multiplied by this when drawn (2 on 4K screens).
    pub zoom: u32,
    /// The colours to draw in.
    pub theme: Theme,
    /// Drawn in two colours, lit and unlit (a monochrome panel, or the PNG picture of one).
    pub mono: bool,
    /// The title-safe area (equal to the screen when there is no margin).
    pub safe: Rectangle,
    pub items: Vec<Item>,
    pub ticker: Option<Ticker>,
    /// The rectangle(s) of the user code lines (for tests and docs), empty when none shown.
    pub code: Vec<Rectangle>,
    /// Text from outside left out because no face has its letters (e.g. `name "李雷"`), for the
    /// log.
    pub omitted: Vec<String>,
    /// The language of the words (its pack draws the [`Item::Shaped`] lines).
    pub language: Language,
}

impl Layout {
    /// The QR symbol, if this layout shows one.
    pub fn qr(&self) -> Option<(Point, &Fitted)> {
        self.items.iter().find_map(|i| match i {
            Item::Qr { origin, code } => Some((*origin, code)),
            _ => None,
        })
    }

    /// The text lines, in drawing order.
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        self.items.iter().filter_map(|i| match i {
            Item::Text(t) => Some(t),
            _ => None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tiers: fonts and spacing per display class.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// 128×64 and similar: monochrome OLEDs.
    Oled,
    /// Short side under 300: 240×240, 320×240.
    Tiny,
    /// Short side under 400: 480×320.
    Small,
    /// Short side under 900: 720p.
    Medium,
    /// 1080p and up.
    Large,
}

struct Type {
    title: Face,
    body: Face,
    /// The provider's message and the warning.
    small: Face,
    url: Vec<Face>,
    code: &'static [(FontId, u32)],
    gap: u32,
    /// Smallest QR module, in px, a phone reads at this screen's viewing distance.
    min_qr_scale: u32,
    bar: u32,
    /// Margin kept inside the panel edge even without a title-safe margin.
    edge: u32,
}

fn tier_of(size: Size) -> Tier {
    let short = size.width.min(size.height);
    if short < 100 {
        Tier::Oled
    } else if short < 300 {
        Tier::Tiny
    } else if short < 400 {
        Tier::Small
    } else if short < 900 {
        Tier::Medium
    } else {
        Tier::Large
    }
}

const fn f(font: FontId) -> Face {
    Face::new(font, 1)
}

/// Faces in order of height, for `text_scale`: the words grow along these.
const REGULAR: &[Face] = &[
    f(FontId::Regular11),
    f(FontId::Regular14),
    f(FontId::Regular20),
    f(FontId::Regular30),
    Face::new(FontId::Regular20, 2),
    Face::new(FontId::Regular30, 2),
    Face::new(FontId::Regular30, 3),
];
const BOLD: &[Face] = &[
    f(FontId::Bold11),
    f(FontId::Bold14),
    f(FontId::Bold20),
    f(FontId::Bold30),
    f(FontId::Bold42),
    Face::new(FontId::Bold30, 2),
    Face::new(FontId::Bold42, 2),
    Face::new(FontId::Bold42, 3),
];
const TINY: &[Face] = &[
    f(FontId::Tiny),
    Face::new(FontId::Tiny, 2),
    Face::new(FontId::Tiny, 3),
];

/// `face` grown to `percent` of its height: the tallest face of its ladder not taller than that.
fn grown(face: Face, percent: u32) -> Face {
    if percent <= 100 {
        return face;
    }
    let target = face.height() * percent / 100;
    [REGULAR, BOLD, TINY]
        .into_iter()
        .find(|l| l.contains(&face))
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|c| c.height() >= face.height() && c.height() <= target)
        .max_by_key(|c| c.height())
        .unwrap_or(face)
}

fn type_of(tier: Tier, percent: u32) -> Type {
    use FontId::*;
    let ty = match tier {
        Tier::Oled => Type {
            title: f(Tiny),
            body: f(Tiny),
            small: f(Tiny),
            url: vec![f(Tiny)],
            // The 8×16 face where Inconsolata's 14 px advance cannot keep "WDJB-" beside the QR.
            code: &[(Code16, 1), (Names, 1)],
            gap: 2,
            min_qr_scale: 2,
            bar: 3,
            edge: 0,
        },
        Tier::Tiny => Type {
            title: f(Bold14),
            body: f(Regular11),
            small: f(Regular11),
            url: vec![f(Bold14), f(Bold11), f(Regular11)],
            code: &[(Code33, 1), (Code24, 1), (Code16, 1)],
            gap: 5,
            min_qr_scale: 3,
            bar: 6,
            edge: 8,
        },
        Tier::Small => Type {
            title: f(Bold20),
            body: f(Regular14),
            small: f(Regular14),
            url: vec![f(Bold20), f(Bold14), f(Bold11)],
            code: &[(Code33, 1), (Code24, 1), (Code16, 1)],
            gap: 7,
            min_qr_scale: 4,
            bar: 8,
            edge: 10,
        },
        Tier::Medium => Type {
            title: f(Bold30),
            body: f(Regular20),
            small: f(Regular20),
            url: vec![f(Bold30), f(Bold20), f(Bold14)],
            code: &[(Code53, 1), (Code33, 1), (Code24, 1)],
            gap: 12,
            min_qr_scale: 8,
            bar: 12,
            edge: 16,
        },
        Tier::Large => Type {
            title: f(Bold42),
            body: f(Regular30),
            small: f(Regular20),
            url: vec![f(Bold42), f(Bold30), f(Bold20)],
            code: &[(Code53, 2), (Code33, 2), (Code53, 1), (Code33, 1)],
            gap: 18,
            min_qr_scale: 12,
            bar: 16,
            edge: 24,
        },
    };
    Type {
        title: grown(ty.title, percent),
        body: grown(ty.body, percent),
        small: grown(ty.small, percent),
        url: ty.url.iter().map(|u| grown(*u, percent)).collect(),
        ..ty
    }
}

/// A face that draws all of `text` from outside: `preferred` when it has every letter, else the
/// names face at the integer scale nearest `preferred`'s height; `None` when neither has them.
pub(super) fn face_for(text: &str, preferred: Face) -> Option<Face> {
    if preferred.covers(text) {
        return Some(preferred);
    }
    let names = FontId::Names;
    if !names.covers(text) {
        return None;
    }
    let h = names.height().max(1);
    let scale = ((preferred.height() + h / 2) / h).max(1);
    Some(Face::new(names, scale))
}

/// Integer zoom: 4K (and larger) screens draw the 1080p layout with every pixel doubled.
fn zoom_of(size: Size) -> u32 {
    (size.width.min(size.height) / 1080).clamp(1, 4)
}

// ---------------------------------------------------------------------------------------------
// The layout function.
// ---------------------------------------------------------------------------------------------

/// Seconds each OLED page stays: the QR page most of the time, the URL page briefly.
const OLED_CYCLE: u64 = 15;
const OLED_URL_PAGE: u64 = 5;

/// Which page of an alternating layout `view` is on: only 128×64-class screens that cannot
/// show the QR and the URL together alternate; everything else is always page 0.
pub fn page_of(view: &View, size: Size, profile: &Profile) -> u8 {
    let code = match view {
        View::WaitingForUser(c) => c,
        View::Retrying { code: Some(c), .. } => c,
        _ => return 0,
    };
    let logical = Size::new(size.width / zoom_of(size), size.height / zoom_of(size));
    if tier_of(logical) != Tier::Oled || !oled_alternates(code, logical, &speaking(profile)) {
        return 0;
    }
    u8::from(code.remaining.as_secs() % OLED_CYCLE < OLED_URL_PAGE)
}

/// `profile`, in English where its language's script is unreadable on the panel: a pack
/// without a 1-bit size (ar, hi, zh-Hans, zh-Hant, ja; docs/locales.md) on a 1-bit panel.
fn speaking(profile: &Profile) -> std::borrow::Cow<'_, Profile> {
    if profile.mono && !profile.language.has_mono_size() {
        std::borrow::Cow::Owned(Profile {
            language: Language::english(),
            ..profile.clone()
        })
    } else {
        std::borrow::Cow::Borrowed(profile)
    }
}

/// The layout of `view` on a `size` screen (already rotated: width is what the viewer sees).
/// A right-to-left language's layout is the mirror image of the left-to-right one (the QR on
/// the left, the text column on the right and aligned right, the bar emptying leftwards);
/// the code, the URL and the QR themselves are never mirrored.
pub fn layout(view: &View, size: Size, profile: &Profile) -> Layout {
    let profile = &*speaking(profile);
    let mut l = layout_at(view, size, profile, profile.text_percent);
    if profile.text_percent > 100 && !l.all_inside() {
        // Grown words leave no room for the URL, the code and the countdown: those come first.
        l = layout_at(view, size, profile, 100);
    }
    if profile.language.rtl() {
        l.mirror();
    }
    l
}

impl Layout {
    /// Reflects every part's position across the vertical centre line.
    fn mirror(&mut self) {
        let width = to_i32(self.size.width);
        let flip = |r: Rectangle| width - r.top_left.x - to_i32(r.size.width);
        for item in &mut self.items {
            let x = flip(item.rect());
            match item {
                Item::Fill { rect, .. } => rect.top_left.x = x,
                Item::Text(t) => t.origin.x = x,
                Item::Shaped { origin, .. } | Item::Qr { origin, .. } => origin.x = x,
            }
        }
        for r in &mut self.code {
            r.top_left.x = flip(*r);
        }
        if let Some(t) = &mut self.ticker {
            t.rect.top_left.x = flip(t.rect);
            if let Some(bar) = &mut t.bar {
                bar.top_left.x = flip(*bar);
            }
            t.align = match t.align {
                Align::Left => Align::Right,
                Align::Right => Align::Left,
                Align::Center => Align::Center,
            };
            t.rtl = true;
        }
    }

    /// Whether every part (the countdown slot too) is inside the title-safe area.
    fn all_inside(&self) -> bool {
        let (c, d) = (self.safe.top_left, self.safe.top_left + self.safe.size);
        let inside = |r: Rectangle| {
            let (a, b) = (r.top_left, r.top_left + r.size);
            a.x >= c.x && a.y >= c.y && b.x <= d.x && b.y <= d.y
        };
        self.items.iter().all(|i| inside(i.rect())) && self.ticker.iter().all(|t| inside(t.rect))
    }
}

fn layout_at(view: &View, size: Size, profile: &Profile, text_percent: u32) -> Layout {
    let zoom = zoom_of(size);
    let logical = Size::new(size.width / zoom, size.height / zoom);
    let tier = tier_of(logical);
    // The 128×64 OLED has no room to grow anything: text_scale is for the larger screens.
    let percent = if tier == Tier::Oled {
        100
    } else {
        text_percent
    };
    let ty = type_of(tier, percent);
    // A title-safe margin is for TVs; a 128×64 panel shows every pixel and has none to spare.
    let pct = if tier == Tier::Oled {
        0
    } else {
        profile.safe_percent.min(20)
    };
    let mx = (logical.width * pct / 100).max(ty.edge);
    let my = (logical.height * pct / 100).max(ty.edge);
    let safe = Rectangle::new(
        Point::new(to_i32(mx), to_i32(my)),
        Size::new(
            logical.width.saturating_sub(2 * mx),
            logical.height.saturating_sub(2 * my),
        ),
    );
    let mut out = Layout {
        size: logical,
        zoom,
        theme: profile.theme,
        mono: profile.mono,
        safe,
        items: Vec::new(),
        ticker: None,
        code: Vec::new(),
        omitted: Vec::new(),
        language: profile.language.clone(),
    };
    let page = page_of(view, size, profile);
    let words = Words {
        lang: &profile.language,
        mono: profile.mono,
    };
    let width = out.safe.size.width;
    let plain = |m: Msg, role: Role, face: Face| words.sentence(m, &[], face, width, role);
    match view {
        View::WaitingForUser(c) => code_screen(c, None, tier, &ty, page, profile, &mut out),
        View::Retrying { code: Some(c), .. } => {
            code_screen(c, Some(()), tier, &ty, page, profile, &mut out)
        }
        View::Retrying { code: None, .. } => message_screen(
            vec![
                plain(Msg::RetryingTitle, Role::Warn, ty.title),
                plain(Msg::RetryingBody, Role::Text, ty.body),
            ],
            true,
            words,
            &ty,
            &mut out,
        ),
        View::WaitingForClock => message_screen(
            vec![
                plain(Msg::ClockTitle, Role::Warn, ty.title),
                plain(Msg::ClockBody, Role::Text, ty.body),
            ],
            false,
            words,
            &ty,
            &mut out,
        ),
        View::Paired { account, name } => {
            let name = name.as_deref().map(sanitize).filter(|n| !n.is_empty());
            let room = out.safe.size;
            let greeting = name.and_then(|n| {
                let p = words.sentence(
                    Msg::PairedWelcome,
                    &[(Slot::Name, &n)],
                    ty.title,
                    room.width,
                    Role::Good,
                );
                if p.is_none() {
                    out.omitted.push(format!("name {n:?}"));
                }
                // A name too long for half the screen leaves the greeting to "Paired".
                p.filter(|p| {
                    let p = [p.clone()];
                    column_height(&p, &ty) <= room.height / 2 && column_width(&p) <= room.width
                })
            });
            let mut paras =
                vec![greeting.or_else(|| plain(Msg::PairedTitle, Role::Good, ty.title))];
            if let Some(a) = account.as_deref().map(sanitize).filter(|a| !a.is_empty()) {
                let p = words.sentence(
                    Msg::PairedAccount,
                    &[(Slot::Account, &a)],
                    ty.body,
                    room.width,
                    Role::Muted,
                );
                if p.is_none() {
                    out.omitted.push(format!("account {a:?}"));
                }
                paras.push(p);
            }
            paras.push(plain(Msg::PairedBody, Role::Text, ty.body));
            paras.push(plain(Msg::PairedUnlink, Role::Muted, ty.body));
            message_screen(paras, false, words, &ty, &mut out)
        }
        View::Denied => message_screen(
            vec![
                plain(Msg::DeniedTitle, Role::Bad, ty.title),
                plain(Msg::DeniedBody, Role::Text, ty.body),
            ],
            false,
            words,
            &ty,
            &mut out,
        ),
        View::Stopped { code_shown } => {
            let mut paras = vec![plain(Msg::StoppedTitle, Role::Warn, ty.title)];
            if *code_shown {
                paras.push(plain(Msg::StoppedBody, Role::Text, ty.body));
            }
            message_screen(paras, false, words, &ty, &mut out)
        }
        View::Error { problem } => message_screen(
            vec![
                plain(Msg::ErrorTitle, Role::Bad, ty.title),
                plain(problem.sentence(), Role::Text, ty.body),
            ],
            false,
            words,
            &ty,
            &mut out,
        ),
    }
    out
}

/// A title and paragraphs (each already laid out; `None` where a value could not be drawn),
/// centred; `ticker` reserves a countdown line ("trying again in"). Where they do not fit,
/// paragraphs are left out from the last one up (the title stays).
fn message_screen(
    paras: Vec<Option<Piece>>,
    ticker: bool,
    words: Words,
    ty: &Type,
    out: &mut Layout,
) {
    let paras: Vec<Piece> = paras.into_iter().flatten().collect();
    let area = out.safe;
    let (w, h) = (area.size.width, area.size.height);
    let build = |n: usize| {
        let mut pieces: Vec<Piece> = paras.iter().take(n).cloned().collect();
        if ticker {
            pieces.push(words::ticker(words, ty.body, false));
        }
        spaced(pieces, ty.gap)
    };
    let mut n = paras.len();
    while n > 1 {
        let pieces = build(n);
        if column_height(&pieces, ty) <= h && column_width(&pieces) <= w {
            break;
        }
        n -= 1;
    }
    place(build(n), area, true, ty, out);
}

/// Whether `view` fits a `size` screen: the user code and the URL are drawn whole, inside the
/// margins, nothing overlapping (what `devauth render` checks before it draws).
pub fn fits(view: &View, size: Size, profile: &Profile) -> bool {
    let l = layout(view, size, profile);
    let inside = |r: Rectangle| {
        let (a, b) = (r.top_left, r.top_left + r.size);
        let (c, d) = (l.safe.top_left, l.safe.top_left + l.safe.size);
        a.x >= c.x && a.y >= c.y && b.x <= d.x && b.y <= d.y
    };
    let code = match view {
        View::WaitingForUser(c) | View::Retrying { code: Some(c), .. } => c,
        _ => return l.items.iter().all(|i| inside(i.rect())),
    };
    let drawn: String = l
        .texts()
        .filter(|t| t.role == Role::Code)
        .map(|t| t.text.as_str())
        .collect();
    let spaced = l
        .texts()
        .filter(|t| t.role == Role::Code)
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut rects: Vec<Rectangle> = l.items.iter().map(Item::rect).collect();
    rects.extend(l.ticker.as_ref().map(|t| t.rect));
    let apart = rects.iter().enumerate().all(|(i, a)| {
        rects
            .iter()
            .skip(i + 1)
            .all(|b| a.intersection(b).is_zero_sized())
    });
    (drawn == code.user_code || spaced == code.user_code)
        && rects.iter().all(|r| inside(*r))
        && apart
}

/// The part of a view that the layout depends on: the view with its clocks zeroed, plus the
/// page. Two views with equal keys have equal layouts.
pub fn static_key(view: &View, size: Size, profile: &Profile) -> (View, u8) {
    let mut v = view.clone();
    match &mut v {
        View::WaitingForUser(c) => c.remaining = std::time::Duration::ZERO,
        View::Retrying { in_secs, code, .. } => {
            *in_secs = 0;
            if let Some(c) = code {
                c.remaining = std::time::Duration::ZERO;
            }
        }
        _ => {}
    }
    (v, page_of(view, size, profile))
}
