//! The terminal backend: what `devauth pair` shows on a terminal, a serial console or over SSH.
//!
//! Owns the text layout of every [`View`], the big user-code font ([`bigfont`]), the QR as text
//! ([`qr_text`]), sanitising server text for the terminal, and deciding how much to rewrite on
//! each `show`. It does not decide what is shown when (the flow does) and reads no clock: the
//! countdown comes in the `View`.
//!
//! Two modes ([`TerminalMode`]):
//! - `Interactive` (a tty): a full clear and redraw when anything but the status line changes;
//!   when only the status line changes (countdown tick, "retrying in Ns"), only that line is
//!   rewritten, in place, so the QR is never redrawn and never flickers. The status line is the
//!   last line of the frame, so it is rewritten by moving the cursor up one line (`ESC[1A`) and
//!   clearing it (`ESC[2K`): relative movement keeps working when the frame is taller than the
//!   terminal and has scrolled. (Limitation: if something else writes to the same tty, e.g. logs
//!   on stderr, the next status update overwrites that output's last line instead of the
//!   countdown; the next full redraw tidies up.)
//! - `Plain` (a pipe, a log, a serial capture, the systemd journal): never an escape code,
//!   append-only. A full screen is printed when the view changes (new code, new state); the
//!   countdown line at most once per minute of countdown; nothing when nothing visible changed.
//!
//! Layout: the QR comes first and the URL and code after it, so when the frame is taller than
//! the terminal the text (which RFC 8628 §3.3 says must always be shown) is what stays in view.
//! When the terminal's size is known (`TIOCGWINSZ`, asked on every `show`, so resizes redraw),
//! parts are left out until the frame fits: blank lines, then the big code, then the QR. The URL,
//! the plain code and the countdown are in every layout.
//!
//! Language: the sentences of the chosen language, in logical order (a terminal shapes and
//! orders text itself; VTE does bidi), when the terminal can show them ([`shows_any_script`]:
//! a UTF-8 locale, and not the Linux console), else English (`setup` decides). In a
//! right-to-left language the code, the URL and the numbers are wrapped in LRI…PDI isolates, so
//! a bidi terminal keeps them left to right ("019-450-730" never becomes "730-450-019").
//! Widths count East Asian wide characters as two columns and combining marks as none.
//!
//! Colours: only the QR uses colour (black on white, so it scans whatever the terminal's theme;
//! see [`qr_text`]), plus bold for the heading and the code. With colours off (`NO_COLOR`, or
//! `Plain`) the QR is drawn as `qrencode -t UTF8` does, assuming a light-on-dark terminal.
//!
//! Server text (user code, URLs, message, account, error text) is untrusted: every control
//! character (C0 including ESC, DEL, C1 — some terminals take U+009B as CSI), bidi override and
//! invisible formatting character is replaced by U+FFFD before it reaches the terminal, so a
//! hostile server cannot inject escape sequences or reorder what the person reads. The protocol
//! layer validates too; this is the last line of defence.

use std::ffi::OsStr;
use std::io::Write;
use std::time::Duration;

use super::catalog::{Msg, Slot};
use super::language::Language;
use super::{CodeScreen, Screen, View};
use crate::screen::error::DisplayError;
use crate::screen::fonts::sanitize;

pub mod bigfont;
pub mod qr_text;
#[cfg(test)]
mod tests;
mod text;

pub use qr_text::qr_text;
use text::{clean, visible_width, wrap};

/// Layout width: everything but the URL (shown whole, never wrapped) and the QR of a very long
/// payload stays within 80 columns, the width of a serial console.
const WIDTH: usize = 80;
/// Big code and message are wrapped a little inside the width.
const TEXT_WIDTH: usize = WIDTH - 2;
/// Cells of the countdown progress bar.
const BAR_CELLS: u128 = 20;
/// Plain mode prints the countdown line at most once per this many seconds of countdown.
const PLAIN_STATUS_EVERY_SECS: u64 = 60;
/// Bounds on server text, in characters. Generous: the protocol layer enforces the real limits;
/// these only keep a hostile server from filling the console.
const MAX_URI: usize = 2048;
const MAX_CODE: usize = 64;

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";
/// Cursor up one line, to column 1, erase the line.
const REWRITE_PREVIOUS_LINE: &str = "\x1b[1A\r\x1b[2K";

/// What the output can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalMode {
    /// A tty: ANSI escape codes allowed, redraw in place.
    Interactive,
    /// A pipe, log file or serial capture: no escape codes, append-only.
    Plain,
}

impl TerminalMode {
    /// The mode for standard output.
    pub fn detect_stdout() -> Self {
        Self::detect(libc::STDOUT_FILENO)
    }

    /// The mode for standard error.
    pub fn detect_stderr() -> Self {
        Self::detect(libc::STDERR_FILENO)
    }

    fn detect(fd: libc::c_int) -> Self {
        // SAFETY: isatty only inspects the descriptor number; an invalid one yields 0.
        let tty = unsafe { libc::isatty(fd) } == 1;
        Self::from_parts(tty, std::env::var_os("TERM").as_deref())
    }

    /// `TERM=dumb` is the convention for "a terminal without cursor control" (Emacs shells,
    /// some serial setups): treat it as plain even on a tty.
    fn from_parts(is_tty: bool, term: Option<&OsStr>) -> Self {
        if is_tty && term != Some(OsStr::new("dumb")) {
            TerminalMode::Interactive
        } else {
            TerminalMode::Plain
        }
    }

    /// Whether colours may be used, per <https://no-color.org>: `NO_COLOR` set to anything but
    /// the empty string turns them off. Only meaningful in `Interactive` mode.
    pub fn colors_allowed() -> bool {
        colors_allowed_by(std::env::var_os("NO_COLOR").as_deref())
    }
}

fn colors_allowed_by(no_color: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty)
}

/// Where the terminal's size comes from, to pick a layout that fits.
#[derive(Debug, Clone, Copy)]
enum SizeSource {
    /// Unknown (a pipe, a serial line reporting 0×0): the full layout.
    Unknown,
    /// Given by the caller (tests, or a caller that knows better).
    Fixed { cols: usize, rows: usize },
    /// Asked of this descriptor with TIOCGWINSZ on every `show`, so a resize takes effect.
    Fd(libc::c_int),
}

/// Columns and rows of the terminal on `fd`, if it reports a size.
fn window_size(fd: libc::c_int) -> Option<(usize, usize)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, writable `ws`; on a descriptor
    // that is not a terminal it fails with ENOTTY and writes nothing.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    // Serial consoles often report 0×0: that means "unknown", not "no room".
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0)
        .then(|| (usize::from(ws.ws_col), usize::from(ws.ws_row)))
}

/// Which parts of the code screen to draw. On a terminal of known size the first layout that
/// fits is used; the URL, the plain code and the countdown are in every one (RFC 8628 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Blank lines between sections.
    spacious: bool,
    /// Heading and the "enter the code" prompts.
    prose: bool,
    /// The user code in the big font.
    big: bool,
    qr: bool,
    /// The provider's own message (it repeats the URL and code).
    message: bool,
}

/// Layouts from the most to the least complete. When both cannot fit, the QR is kept over the
/// big code: it carries the whole URL and the plain code stays on screen.
#[rustfmt::skip]
const LAYOUTS: [Layout; 5] = [
    Layout { spacious: true, prose: true, big: true, qr: true, message: true },
    Layout { spacious: false, prose: true, big: true, qr: true, message: true },
    Layout { spacious: false, prose: false, big: false, qr: true, message: false },
    Layout { spacious: false, prose: true, big: true, qr: false, message: true },
    Layout { spacious: false, prose: false, big: false, qr: false, message: false },
];

/// A [`Screen`] on a text terminal (or anything written like one).
pub struct TerminalScreen<W: Write> {
    out: W,
    /// Everything else, and the code that lays frames out and decides what to rewrite: not
    /// generic over the writer, so that code is in the binary once, not once per writer
    /// (standard output and standard error; about 4 KB on armv7, docs/size.md).
    state: TerminalState,
}

/// What a [`TerminalScreen`] knows besides its writer.
struct TerminalState {
    mode: TerminalMode,
    colors: bool,
    size: SizeSource,
    /// The last frame written, to decide what to rewrite.
    last: Option<Frame>,
    /// Plain mode: the countdown value (seconds) of the last status line printed.
    plain_status_clock: Option<u64>,
    /// The last QR rendered, keyed by payload and style: encoding once per code, not per tick.
    qr_cache: Option<(String, qr_text::QrStyle, Result<Vec<String>, String>)>,
    /// `[display] device_name`, named in the warning against code phishing.
    device_name: Option<String>,
    /// The language of the sentences.
    language: Language,
}

impl TerminalScreen<crate::stdout::Stdout> {
    /// A screen on standard output, with mode, colours and size taken from the environment
    /// (`isatty`, `TERM`, `NO_COLOR`, the window size). A failed write is remembered by
    /// [`crate::stdout`], so the command stops and exits 1.
    pub fn stdout() -> Self {
        TerminalScreen::new(crate::stdout::Stdout, TerminalMode::detect_stdout())
            .with_colors(TerminalMode::colors_allowed())
            .with_size_of_fd(libc::STDOUT_FILENO)
    }
}

impl TerminalScreen<std::io::Stderr> {
    /// A screen on standard error, with mode, colours and size taken from the environment.
    pub fn stderr() -> Self {
        TerminalScreen::new(std::io::stderr(), TerminalMode::detect_stderr())
            .with_colors(TerminalMode::colors_allowed())
            .with_size_of_fd(libc::STDERR_FILENO)
    }
}

impl<W: Write> TerminalScreen<W> {
    /// A screen writing to `out`. Colours are on in `Interactive` mode; see
    /// [`with_colors`](Self::with_colors) and [`TerminalMode::colors_allowed`] for `NO_COLOR`.
    /// The terminal's size is unknown (the full layout) unless [`with_size`](Self::with_size)
    /// says otherwise.
    pub fn new(out: W, mode: TerminalMode) -> Self {
        TerminalScreen {
            out,
            state: TerminalState {
                mode,
                colors: mode == TerminalMode::Interactive,
                size: SizeSource::Unknown,
                last: None,
                plain_status_clock: None,
                qr_cache: None,
                device_name: None,
                language: Language::english(),
            },
        }
    }

    /// The language to print in (English by default): only one the terminal can show
    /// ([`shows_any_script`]).
    pub fn with_language(mut self, language: Language) -> Self {
        self.state.language = language;
        self
    }

    /// The device's name for the warning against code phishing (`[display] device_name`).
    pub fn with_device_name(mut self, name: Option<String>) -> Self {
        self.state.device_name = name.map(|n| sanitize(&n)).filter(|n| !n.is_empty());
        self
    }

    /// Turns colours (and bold) on or off. Ignored in `Plain` mode, which never colours.
    pub fn with_colors(mut self, colors: bool) -> Self {
        self.state.colors = colors && self.state.mode == TerminalMode::Interactive;
        self
    }

    /// The terminal is `cols` × `rows`: in `Interactive` mode, parts are left out (blank lines,
    /// then the big code, then the QR) until the screen fits, so the URL and code never scroll
    /// away. Ignored in `Plain` mode, which is append-only anyway.
    pub fn with_size(mut self, cols: usize, rows: usize) -> Self {
        self.state.size = SizeSource::Fixed { cols, rows };
        self
    }

    fn with_size_of_fd(mut self, fd: libc::c_int) -> Self {
        self.state.size = SizeSource::Fd(fd);
        self
    }

    pub fn mode(&self) -> TerminalMode {
        self.state.mode
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl TerminalState {
    /// A code, URL or number made to stay left to right inside a right-to-left sentence.
    fn ltr(&self, text: &str) -> String {
        if self.language.rtl() {
            format!("\u{2066}{text}\u{2069}")
        } else {
            text.to_string()
        }
    }

    fn terminal_size(&self) -> Option<(usize, usize)> {
        if self.mode == TerminalMode::Plain {
            return None;
        }
        match self.size {
            SizeSource::Unknown => None,
            SizeSource::Fixed { cols, rows } => Some((cols, rows)),
            SizeSource::Fd(fd) => window_size(fd),
        }
    }

    fn qr_style(&self) -> qr_text::QrStyle {
        if self.colors {
            qr_text::QrStyle::DarkOnLight
        } else {
            qr_text::QrStyle::LightBlocks
        }
    }

    /// QR rows for `payload`, or the reason there are none.
    fn qr(&mut self, payload: &str) -> Result<Vec<String>, String> {
        let style = self.qr_style();
        if let Some((p, s, rows)) = &self.qr_cache {
            if p == payload && *s == style {
                return rows.clone();
            }
        }
        let rows = qr_text::encode(payload)
            .map(|code| qr_text::render(&code, style))
            .map_err(|e| e.to_string());
        self.qr_cache = Some((payload.to_string(), style, rows.clone()));
        rows
    }

    fn bold(&self, text: &str) -> String {
        if self.colors {
            format!("{BOLD}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// The frame for `view` in the first layout that fits the terminal (the full one when the
    /// size is unknown).
    fn fitted_frame(&mut self, view: &View) -> Frame {
        let size = self.terminal_size();
        let mut frame = self.frame(view, LAYOUTS[0]);
        if let Some((cols, rows)) = size {
            for layout in LAYOUTS.iter().skip(1) {
                if frame.fits(cols, rows) {
                    break;
                }
                frame = self.frame(view, *layout);
            }
        }
        frame.size = size;
        frame
    }

    /// Lays out `view` as a frame: the body, and the status line that changes every tick.
    /// Every sentence comes from the catalogue; text from outside is sanitised.
    fn frame(&mut self, view: &View, layout: Layout) -> Frame {
        let language = self.language.clone();
        let w = language.words();
        let mut frame = Frame {
            body: Vec::new(),
            status: None,
            min_cols: 0,
            size: None,
        };
        let heading = |c: &CodeScreen| {
            w.text(if c.renewed {
                Msg::CodeTitleRenewed
            } else {
                Msg::CodeTitle
            })
        };
        match view {
            View::WaitingForUser(code) => {
                if layout.prose {
                    frame.body.push(self.bold(&heading(code)));
                }
                self.code_block(code, layout, &mut frame);
                frame.status = Some(self.countdown(code));
            }
            View::Retrying { in_secs, code, .. } => {
                let secs = self.ltr(&in_secs.to_string());
                match code {
                    Some(code) => {
                        if layout.prose {
                            frame.body.push(self.bold(&heading(code)));
                        }
                        frame.body.push(w.text(Msg::RetryingCode));
                        self.code_block(code, layout, &mut frame);
                        let c = self.countdown(code);
                        let t = self.ltr(&clock_text(code.remaining.as_secs()));
                        frame.status = Some(Status {
                            text: format!(
                                "{}  [{}]",
                                w.fill(
                                    Msg::RetryingInCode,
                                    &[(Slot::Seconds, &secs), (Slot::Minutes, &t)]
                                ),
                                bar(code.remaining, code.lifetime)
                            ),
                            clock: c.clock,
                        });
                    }
                    None => {
                        frame.body.push(self.bold(&w.text(Msg::RetryingTitle)));
                        frame
                            .body
                            .extend(wrap(&w.text(Msg::RetryingBody), TEXT_WIDTH));
                        frame.status = Some(Status {
                            text: w.fill(Msg::RetryingIn, &[(Slot::Seconds, &secs)]),
                            clock: *in_secs,
                        });
                    }
                }
            }
            View::WaitingForClock => {
                frame.body.push(self.bold(&w.text(Msg::ClockTitle)));
                frame.body.extend(wrap(&w.text(Msg::ClockBody), TEXT_WIDTH));
            }
            View::Paired { account, name } => {
                let name = name.as_deref().map(sanitize).filter(|n| !n.is_empty());
                frame.body.push(self.bold(&match name {
                    Some(n) => w.fill(Msg::PairedWelcome, &[(Slot::Name, &n)]),
                    None => w.text(Msg::PairedTitle),
                }));
                if let Some(a) = account.as_deref().map(sanitize).filter(|a| !a.is_empty()) {
                    frame
                        .body
                        .push(w.fill(Msg::PairedAccount, &[(Slot::Account, &a)]));
                }
                frame
                    .body
                    .extend(wrap(&w.text(Msg::PairedBody), TEXT_WIDTH));
                frame
                    .body
                    .extend(wrap(&w.text(Msg::PairedUnlink), TEXT_WIDTH));
            }
            View::Denied => {
                frame.body.push(self.bold(&w.text(Msg::DeniedTitle)));
                frame
                    .body
                    .extend(wrap(&w.text(Msg::DeniedBody), TEXT_WIDTH));
            }
            View::Stopped { code_shown } => {
                frame.body.push(self.bold(&w.text(Msg::StoppedTitle)));
                if *code_shown {
                    frame
                        .body
                        .extend(wrap(&w.text(Msg::StoppedBody), TEXT_WIDTH));
                }
            }
            View::Error { problem } => {
                frame.body.push(self.bold(&w.text(Msg::ErrorTitle)));
                frame
                    .body
                    .extend(wrap(&w.text(problem.sentence()), TEXT_WIDTH));
            }
        }
        frame
    }

    /// The QR first, then the URL and the code (big and plain) and the provider's message, so
    /// that on a terminal too short for it all (size unknown) the text is what stays in view.
    fn code_block(&mut self, code: &CodeScreen, layout: Layout, frame: &mut Frame) {
        let language = self.language.clone();
        let w = language.words();
        let blank = |body: &mut Vec<String>| {
            if layout.spacious {
                body.push(String::new());
            }
        };
        if let Some(p) = code
            .profile
            .as_deref()
            .map(sanitize)
            .filter(|p| !p.is_empty())
        {
            frame
                .body
                .push(w.fill(Msg::CodeAdding, &[(Slot::Profile, &p)]));
        }
        let uri = clean(&code.verification_uri, MAX_URI);
        // Whole, https:// included: on a terminal the address is copied from here.
        let shown_uri = self.ltr(&uri);
        let user_code = clean(&code.user_code, MAX_CODE);
        let browser = user_code.is_empty();
        if layout.qr {
            blank(&mut frame.body);
            match self.qr(&code.qr_payload) {
                Ok(rows) => {
                    if layout.prose {
                        frame.body.push(w.text(Msg::TerminalScan));
                    }
                    frame.min_cols = rows.iter().map(|r| visible_width(r)).max().unwrap_or(0);
                    frame.body.extend(rows);
                }
                Err(_) => frame.body.push(w.text(Msg::TerminalNoQr)),
            }
        }
        let body = &mut frame.body;
        blank(body);
        let bold_code = self.ltr(&self.bold(&user_code));
        let steps = match (browser, layout.prose) {
            (true, _) => w.fill(Msg::SigninSteps, &[(Slot::Url, &shown_uri)]),
            (false, true) => w.fill(
                Msg::CodeSteps,
                &[(Slot::Url, &shown_uri), (Slot::Code, &bold_code)],
            ),
            (false, false) => w.fill(
                Msg::CodeStepsShort,
                &[(Slot::Url, &shown_uri), (Slot::Code, &bold_code)],
            ),
        };
        // One line: the URL is never wrapped (it is copied from here).
        body.push(steps);
        if layout.big && !browser {
            blank(body);
            body.extend(
                bigfont::render_wrapped(&user_code, TEXT_WIDTH - 2)
                    .into_iter()
                    .map(|row| {
                        if row.is_empty() {
                            row
                        } else {
                            format!("  {row}")
                        }
                    }),
            );
            blank(body);
            body.push(w.fill(Msg::TerminalCode, &[(Slot::Code, &bold_code)]));
        }
        if layout.prose && !browser {
            blank(body);
            let warning = match &self.device_name {
                Some(d) => w.fill(Msg::WarningDevice, &[(Slot::Device, d)]),
                None => w.text(Msg::Warning),
            };
            body.extend(wrap(&warning, TEXT_WIDTH));
        }
        if layout.message {
            if let Some(message) = &code.message {
                blank(body);
                body.extend(wrap(&sanitize(message), TEXT_WIDTH));
            }
        }
        blank(body);
    }

    fn show(&mut self, view: &View, out: &mut dyn Write) -> Result<(), DisplayError> {
        let frame = self.fitted_frame(view);
        match self.mode {
            TerminalMode::Interactive => self.show_interactive(frame, out),
            TerminalMode::Plain => self.show_plain(frame, out),
        }
    }

    fn show_interactive(&mut self, frame: Frame, out: &mut dyn Write) -> Result<(), DisplayError> {
        let mut text = String::new();
        let status_only = match (&self.last, &frame.status) {
            (Some(last), Some(status)) => {
                last.body == frame.body
                    && last.size == frame.size
                    && last.status.is_some()
                    // A status line that wraps is more than one line up: redraw instead.
                    && frame.size.is_none_or(|(cols, _)| visible_width(&status.text) < cols)
            }
            _ => false,
        };
        if self.last.as_ref() == Some(&frame) {
            return Ok(());
        } else if let (true, Some(status)) = (status_only, &frame.status) {
            // Only the status line changed: rewrite it alone, the QR stays untouched.
            text.push_str(REWRITE_PREVIOUS_LINE);
            text.push_str(&status.text);
            text.push('\n');
        } else {
            text.push_str(CLEAR_SCREEN);
            frame.append_to(&mut text);
        }
        write(out, text.as_bytes())?;
        self.last = Some(frame);
        Ok(())
    }

    fn show_plain(&mut self, frame: Frame, out: &mut dyn Write) -> Result<(), DisplayError> {
        let mut text = String::new();
        let body_changed = self
            .last
            .as_ref()
            .is_none_or(|last| last.body != frame.body);
        if body_changed {
            if self.last.is_some() {
                // A blank line between screens keeps a log readable.
                text.push('\n');
            }
            frame.append_to(&mut text);
            self.plain_status_clock = frame.status.as_ref().map(|s| s.clock);
        } else if let Some(status) = &frame.status {
            let due = match self.plain_status_clock {
                None => true,
                // The countdown went up: a new attempt or period, worth a line.
                Some(printed) if status.clock > printed => true,
                Some(printed) => printed - status.clock >= PLAIN_STATUS_EVERY_SECS,
            };
            let unchanged = self
                .last
                .as_ref()
                .and_then(|l| l.status.as_ref())
                .is_some_and(|s| s.text == status.text);
            if due && !unchanged {
                text.push_str(&status.text);
                text.push('\n');
                self.plain_status_clock = Some(status.clock);
            }
        }
        if !text.is_empty() {
            write(out, text.as_bytes())?;
        }
        self.last = Some(frame);
        Ok(())
    }
}

impl<W: Write> Screen for TerminalScreen<W> {
    fn show(&mut self, view: &View) -> Result<(), DisplayError> {
        let TerminalScreen { out, state } = self;
        state.show(view, out)
    }
}

fn write(out: &mut dyn Write, bytes: &[u8]) -> Result<(), DisplayError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| DisplayError::Io {
            what: "terminal: write".into(),
            source,
        })
}

/// One screenful: the body only changes with the view's substance, the status with each tick.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    body: Vec<String>,
    status: Option<Status>,
    /// Columns the frame cannot do with less of (the QR's width): a QR row that wraps is noise.
    min_cols: usize,
    /// The terminal size it was laid out for; a resize redraws.
    size: Option<(usize, usize)>,
}

impl Frame {
    /// Whether the frame fits `cols` × `rows` without scrolling, counting wrapped lines and the
    /// cursor's line after the status line.
    fn fits(&self, cols: usize, rows: usize) -> bool {
        if self.min_cols > cols || cols == 0 {
            return false;
        }
        let needed: usize = self
            .body
            .iter()
            .chain(self.status.as_ref().map(|s| &s.text))
            .map(|line| visible_width(line).max(1).div_ceil(cols))
            .sum();
        needed < rows
    }

    fn append_to(&self, text: &mut String) {
        for line in &self.body {
            text.push_str(line);
            text.push('\n');
        }
        if let Some(status) = &self.status {
            text.push_str(&status.text);
            text.push('\n');
        }
    }
}

/// The last line of a frame, rewritten in place on a tty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    text: String,
    /// The countdown it shows, in seconds: Plain mode rate-limits on it.
    clock: u64,
}

impl TerminalState {
    /// "Code expires in 12:34  [#####-----]".
    fn countdown(&self, code: &CodeScreen) -> Status {
        let secs = code.remaining.as_secs();
        let m = if code.renewed {
            Msg::CodeExpiresNew
        } else {
            Msg::CodeExpires
        };
        let minutes = self.ltr(&clock_text(secs));
        Status {
            text: format!(
                "{}  [{}]",
                self.language.words().fill(m, &[(Slot::Minutes, &minutes)]),
                bar(code.remaining, code.lifetime)
            ),
            clock: secs,
        }
    }
}

/// Whether a terminal can show text in any script, from the environment: a UTF-8 locale (the
/// first of `LC_ALL`, `LC_CTYPE`, `LANG` that is set) and not the Linux VT console
/// (`TERM=linux`: its font holds at most 512 glyphs and it joins no script).
pub fn shows_any_script(env: &dyn Fn(&str) -> Option<String>) -> bool {
    let get = |name: &str| env(name).filter(|v| !v.is_empty());
    let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .find_map(get)
        .is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
    utf8 && get("TERM").as_deref() != Some("linux")
}

use crate::screen::layout::clock_text;

/// A 20-cell bar of the time left; empty for a zero lifetime rather than dividing by zero.
fn bar(remaining: Duration, lifetime: Duration) -> String {
    let (left, total) = (remaining.as_millis(), lifetime.as_millis());
    let filled = left
        .saturating_mul(BAR_CELLS)
        .saturating_add(total / 2)
        .checked_div(total)
        .map_or(0, |cells| cells.min(BAR_CELLS));
    (0..BAR_CELLS)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect()
}

/// One half-block character from its upper and lower pixel: the big code digits and the text
/// QR both pack two pixel rows into one terminal row.
fn half_block(top: bool, bottom: bool) -> char {
    match (top, bottom) {
        (true, true) => '█',
        (true, false) => '▀',
        (false, true) => '▄',
        (false, false) => ' ',
    }
}
