use super::*;

const URI: &str = "https://example.com/device";
const COMPLETE: &str = "https://example.com/device?user_code=WDJB-MJHT";

fn code_screen(remaining: u64) -> CodeScreen {
    CodeScreen {
        verification_uri: URI.into(),
        qr_payload: COMPLETE.into(),
        user_code: "WDJB-MJHT".into(),
        message: None,
        remaining: Duration::from_secs(remaining),
        lifetime: Duration::from_secs(900),
        renewed: false,
        profile: None,
    }
}

fn waiting(remaining: u64) -> View {
    View::WaitingForUser(code_screen(remaining))
}

/// Shows `view` and returns just the bytes that call wrote.
fn show(screen: &mut TerminalScreen<Vec<u8>>, view: &View) -> String {
    let before = screen.get_ref().len();
    screen.show(view).expect("show");
    String::from_utf8(screen.get_ref()[before..].to_vec()).expect("utf-8")
}

fn interactive() -> TerminalScreen<Vec<u8>> {
    TerminalScreen::new(Vec::new(), TerminalMode::Interactive)
}

fn plain() -> TerminalScreen<Vec<u8>> {
    TerminalScreen::new(Vec::new(), TerminalMode::Plain)
}

fn qr_rows(mode: TerminalMode) -> Vec<String> {
    qr_text(COMPLETE, mode).expect("qr")
}

#[test]
fn mode_detection_follows_tty_and_term_dumb() {
    let dumb = OsStr::new("dumb");
    let xterm = OsStr::new("xterm-256color");
    assert_eq!(
        TerminalMode::from_parts(true, Some(xterm)),
        TerminalMode::Interactive
    );
    assert_eq!(
        TerminalMode::from_parts(true, None),
        TerminalMode::Interactive
    );
    assert_eq!(
        TerminalMode::from_parts(true, Some(dumb)),
        TerminalMode::Plain
    );
    assert_eq!(
        TerminalMode::from_parts(false, Some(xterm)),
        TerminalMode::Plain
    );
}

#[test]
fn no_color_turns_colours_off_unless_empty() {
    assert!(colors_allowed_by(None));
    assert!(colors_allowed_by(Some(OsStr::new(""))));
    assert!(!colors_allowed_by(Some(OsStr::new("1"))));
}

#[test]
fn waiting_screen_has_heading_url_big_and_plain_code_qr_and_countdown() {
    for mut screen in [interactive(), plain()] {
        let mode = screen.mode();
        let out = show(&mut screen, &waiting(872));
        assert!(out.contains("Pair this device"));
        assert!(
            out.contains(&format!("go to {URI} and enter the code")),
            "{out}"
        );
        assert!(out.contains("WDJB-MJHT"));
        for row in bigfont::render("WDJB-MJHT") {
            assert!(out.contains(&row), "big code row missing: {row:?}");
        }
        for row in qr_rows(mode) {
            assert!(out.contains(&row), "{mode:?}: QR row missing");
        }
        assert!(
            out.contains("Code expires in 14:32  [###################-]"),
            "{out}"
        );
    }
}

#[test]
fn message_and_renewal_are_shown() {
    let mut screen = plain();
    let mut code = code_screen(900);
    code.message =
        Some("To sign in, use a web browser to open the page and enter the code.".into());
    code.renewed = true;
    let out = show(&mut screen, &View::WaitingForUser(code));
    assert!(out.contains("To sign in, use a web browser"));
    assert!(out.contains("New code: the last one expired"));
    assert!(out.contains("New code - expires in 15:00"));
}

#[test]
fn interactive_countdown_tick_rewrites_only_the_countdown_line() {
    let mut screen = interactive();
    let first = show(&mut screen, &waiting(872));
    assert!(first.starts_with(CLEAR_SCREEN));
    let tick = show(&mut screen, &waiting(871));
    assert_eq!(
        tick,
        "\x1b[1A\r\x1b[2KCode expires in 14:31  [###################-]\n"
    );
    for row in qr_rows(TerminalMode::Interactive) {
        assert!(!tick.contains(&row));
    }
    assert!(!tick.contains('█') && !tick.contains('▀') && !tick.contains('▄'));
    // The same view again writes nothing at all.
    assert_eq!(show(&mut screen, &waiting(871)), "");
    // A real change (new code) is a full redraw.
    let mut renewed = code_screen(900);
    renewed.user_code = "QXZK-PLRT".into();
    renewed.renewed = true;
    let full = show(&mut screen, &View::WaitingForUser(renewed));
    assert!(full.starts_with(CLEAR_SCREEN) && full.contains("QXZK-PLRT"));
}

#[test]
fn interactive_retry_countdown_is_also_an_in_place_update() {
    let mut screen = interactive();
    let retrying = |in_secs| View::Retrying {
        reason: "connection refused".into(),
        in_secs,
        code: Some(code_screen(600)),
    };
    let first = show(&mut screen, &retrying(5));
    assert!(first.contains("Connection lost. The code still works."));
    assert!(
        !first.contains("connection refused"),
        "details go to the log"
    );
    assert!(first.contains("Trying again in 5 s - code expires in 10:00"));
    let tick = show(&mut screen, &retrying(4));
    assert!(tick.starts_with(REWRITE_PREVIOUS_LINE));
    assert!(tick.contains("Trying again in 4 s") && !tick.contains('█'));
}

/// Rows the written frame takes on a `cols`-wide terminal, plus the cursor's line.
fn rows_used(out: &str, cols: usize) -> usize {
    out.trim_start_matches(CLEAR_SCREEN)
        .lines()
        .map(|l| visible_width(l).max(1).div_ceil(cols))
        .sum::<usize>()
        + 1
}

#[test]
fn on_a_small_terminal_the_layout_shrinks_so_url_and_code_stay_in_view() {
    let qr = qr_rows(TerminalMode::Interactive);
    // Tall enough: everything.
    let mut screen = interactive().with_size(80, 60);
    let out = show(&mut screen, &waiting(900));
    assert!(out.contains("and enter the code") && out.contains(&bigfont::render("WDJB-MJHT")[0]));
    assert!(qr.iter().all(|row| out.contains(row)));
    assert!(rows_used(&out, 80) <= 60);
    // 80×24, the classic console: the QR and the text, no big code, nothing scrolled away.
    let mut screen = interactive().with_size(80, 24);
    let out = show(&mut screen, &waiting(900));
    assert!(rows_used(&out, 80) <= 24, "{out}");
    assert!(qr.iter().all(|row| out.contains(row)));
    assert!(out.contains(&format!("Go to {URI} and enter ")), "{out}");
    // Too short for the QR: the big code and the text.
    let mut screen = interactive().with_size(80, 16);
    let out = show(&mut screen, &waiting(900));
    assert!(rows_used(&out, 80) <= 16, "{out}");
    assert!(!qr.iter().any(|row| out.contains(row)));
    assert!(out.contains(&bigfont::render("WDJB-MJHT")[0]) && out.contains(URI));
    // Too narrow for the QR: it is left out rather than wrapped into noise.
    let mut screen = interactive().with_size(40, 60);
    let out = show(&mut screen, &waiting(900));
    assert!(!qr.iter().any(|row| out.contains(row)) && out.contains("WDJB-MJHT"));
    // Whatever the size, the URL, code and countdown are there.
    let mut screen = interactive().with_size(20, 3);
    let out = show(&mut screen, &waiting(900));
    assert!(out.contains(URI) && out.contains("WDJB-MJHT") && out.contains("15:00"));
}

#[test]
fn a_resize_redraws_and_ticks_still_update_in_place() {
    let mut screen = interactive().with_size(80, 60);
    show(&mut screen, &waiting(900));
    assert!(show(&mut screen, &waiting(899)).starts_with(REWRITE_PREVIOUS_LINE));
    screen.state.size = SizeSource::Fixed {
        cols: 100,
        rows: 60,
    };
    assert!(show(&mut screen, &waiting(898)).starts_with(CLEAR_SCREEN));
    assert!(show(&mut screen, &waiting(897)).starts_with(REWRITE_PREVIOUS_LINE));
    // A status line that would wrap is not rewritten in place.
    let mut screen = interactive().with_size(30, 60);
    show(&mut screen, &waiting(900));
    assert!(show(&mut screen, &waiting(899)).starts_with(CLEAR_SCREEN));
}

#[test]
fn plain_mode_ignores_the_size() {
    let mut screen = plain().with_size(80, 10);
    let out = show(&mut screen, &waiting(900));
    assert!(
        qr_rows(TerminalMode::Plain)
            .iter()
            .all(|row| out.contains(row))
    );
}

#[test]
fn visible_width_skips_our_escapes() {
    assert_eq!(visible_width(&format!("{BOLD}abc{RESET}")), 3);
    assert_eq!(
        visible_width(&format!("{}██{}", qr_text::DARK_ON_LIGHT, RESET)),
        2
    );
    assert_eq!(visible_width(""), 0);
}

#[test]
fn plain_mode_never_emits_escape_and_rate_limits_the_countdown() {
    let mut screen = plain();
    let mut outputs = Vec::new();
    let first = show(&mut screen, &waiting(900));
    assert!(first.contains("Code expires in 15:00"));
    outputs.push(first);
    let mut status_lines = Vec::new();
    for remaining in (0..900).rev() {
        let out = show(&mut screen, &waiting(remaining));
        if !out.is_empty() {
            // Only a countdown line, never the whole screen again.
            assert_eq!(out.lines().count(), 1, "{out}");
            assert!(out.starts_with("Code expires in "));
            status_lines.push(out.clone());
        }
        outputs.push(out);
    }
    // 15 minutes: one line per minute after the first screen.
    assert_eq!(status_lines.len(), 15, "{status_lines:?}");
    assert_eq!(
        status_lines.first().map(String::as_str),
        Some("Code expires in 14:00  [###################-]\n")
    );
    // The same view again prints nothing.
    assert_eq!(show(&mut screen, &waiting(0)), "");
    for view in [
        View::WaitingForClock,
        View::Retrying {
            reason: "timeout".into(),
            in_secs: 5,
            code: None,
        },
        View::Retrying {
            reason: "timeout".into(),
            in_secs: 4,
            code: None,
        },
        View::Paired {
            account: Some("alice@example.com".into()),
            name: None,
        },
        View::Denied,
        View::Error {
            problem: crate::screen::Problem::Service,
        },
    ] {
        outputs.push(show(&mut screen, &view));
        // Repeating an unchanged view prints nothing.
        assert_eq!(show(&mut screen, &view), "");
    }
    for out in &outputs {
        assert!(!out.contains('\x1b'), "escape in plain output: {out:?}");
    }
}

#[test]
fn plain_retry_prints_each_new_attempt_but_not_each_second() {
    let mut screen = plain();
    let retrying = |in_secs| View::Retrying {
        reason: "timeout".into(),
        in_secs,
        code: None,
    };
    assert!(show(&mut screen, &retrying(10)).contains("Trying again in 10 s"));
    for s in (1..10).rev() {
        assert_eq!(show(&mut screen, &retrying(s)), "");
    }
    // The next attempt failed the same way: a new countdown, one line.
    assert_eq!(show(&mut screen, &retrying(20)), "Trying again in 20 s\n");
}

#[test]
fn no_color_interactive_uses_cursor_control_but_no_colours() {
    let mut screen = interactive().with_colors(false);
    let out = show(&mut screen, &waiting(900));
    assert!(!out.contains("\x1b[30;47m") && !out.contains(BOLD));
    for row in qr_rows(TerminalMode::Plain) {
        assert!(out.contains(&row));
    }
    let tick = show(&mut screen, &waiting(899));
    assert!(tick.starts_with(REWRITE_PREVIOUS_LINE));
}

#[test]
fn hostile_server_text_cannot_reach_the_terminal_raw() {
    let evil = "A\u{1b}]0;pwned\u{7}B\u{9b}31mC\u{202E}D\u{2066}E\u{200B}F\u{7f}G\r\nH\u{0}";
    let views = [
        View::WaitingForUser(CodeScreen {
            verification_uri: format!("https://example.com/{evil}"),
            qr_payload: format!("https://example.com/{evil}"),
            user_code: evil.into(),
            message: Some(evil.into()),
            remaining: Duration::from_secs(60),
            lifetime: Duration::from_secs(60),
            renewed: false,
            profile: None,
        }),
        View::Retrying {
            reason: evil.into(),
            in_secs: 3,
            code: None,
        },
        View::Paired {
            account: Some(evil.into()),
            name: Some(evil.into()),
        },
    ];
    for view in &views {
        for mode in [TerminalMode::Interactive, TerminalMode::Plain] {
            let mut screen = TerminalScreen::new(Vec::new(), mode);
            screen.show(view).expect("show");
            let out = String::from_utf8(screen.into_inner()).expect("utf-8");
            for bad in [
                '\u{7}', '\u{9b}', '\u{202E}', '\u{2066}', '\u{200B}', '\u{7f}', '\r', '\0',
            ] {
                assert!(!out.contains(bad), "{mode:?}: {bad:?} emitted");
            }
            assert!(!out.contains("\x1b]"), "{mode:?}: OSC emitted");
            // Our own escapes are the only ESC bytes: none in plain mode, and in interactive
            // mode every ESC starts one of ours.
            let ours = [CLEAR_SCREEN, BOLD, RESET, qr_text::DARK_ON_LIGHT, "\x1b[2J"];
            for (i, _) in out.match_indices('\x1b') {
                assert!(mode == TerminalMode::Interactive, "ESC in plain output");
                let rest = &out[i..];
                assert!(
                    ours.iter().any(|o| rest.starts_with(o)),
                    "foreign escape: {rest:.12?}"
                );
            }
            // In the URL and the code tampering shows; names are stripped (never a `?`).
            if matches!(view, View::WaitingForUser(_)) {
                assert!(out.contains('\u{FFFD}'), "tampering should be visible");
            }
        }
    }
}

#[test]
fn clean_replaces_unsafe_and_bounds_length() {
    assert_eq!(clean("AB\u{1b}[2JC", 100), "AB\u{FFFD}[2JC");
    assert_eq!(clean("a\tb\nc", 100), "a b c");
    assert_eq!(clean("abcdef", 3), "abc…");
    assert_eq!(clean("WDJB-MJHT", 100), "WDJB-MJHT");
    assert_eq!(clean("übung ✓", 100), "übung ✓");
}

#[test]
fn each_view_renders_its_key_text() {
    let cases = [
        (View::WaitingForClock, vec!["Waiting for network time..."]),
        (
            View::Retrying {
                reason: "dns failure".into(),
                in_secs: 7,
                code: None,
            },
            vec!["Cannot connect", "Trying again in 7 s"],
        ),
        (
            View::Retrying {
                reason: "http 503".into(),
                in_secs: 2,
                code: Some(code_screen(300)),
            },
            vec![
                "The code still works",
                "Trying again in 2 s",
                "WDJB-MJHT",
                "go to https://example.com/device and enter the code",
                "5:00",
            ],
        ),
        (
            View::Paired {
                account: Some("alice@example.com".into()),
                name: Some("José Müller".into()),
            },
            vec![
                "Welcome, José Müller",
                "Signed in as alice@example.com",
                "account's settings",
            ],
        ),
        (
            View::Paired {
                account: None,
                name: None,
            },
            vec!["Paired"],
        ),
        (View::Denied, vec!["declined"]),
        (View::Stopped { code_shown: false }, vec!["Pairing stopped"]),
        (
            View::Error {
                problem: crate::screen::Problem::Network,
            },
            vec!["Pairing failed", "could not be reached"],
        ),
    ];
    for (view, keys) in cases {
        for mode in [TerminalMode::Interactive, TerminalMode::Plain] {
            let mut screen = TerminalScreen::new(Vec::new(), mode);
            screen.show(&view).expect("show");
            let out = String::from_utf8(screen.into_inner()).expect("utf-8");
            for key in &keys {
                assert!(
                    out.contains(key),
                    "{mode:?} {view:?}: {key:?} missing in {out}"
                );
            }
        }
    }
}

#[test]
fn a_payload_too_long_for_a_qr_code_still_shows_the_code() {
    let mut code = code_screen(60);
    code.qr_payload = "x".repeat(5000);
    let mut screen = plain();
    let out = show(&mut screen, &View::WaitingForUser(code));
    assert!(out.contains("too long for a QR code") && out.contains("Code: WDJB-MJHT"));
}

#[test]
fn progress_bar_and_time_format_are_safe_at_the_edges() {
    assert_eq!(bar(Duration::ZERO, Duration::ZERO), "-".repeat(20));
    assert_eq!(
        bar(Duration::from_secs(10), Duration::from_secs(5)),
        "#".repeat(20)
    );
    assert_eq!(
        bar(Duration::from_secs(450), Duration::from_secs(900)),
        format!("{}{}", "#".repeat(10), "-".repeat(10))
    );
    let mut c = code_screen(0);
    c.remaining = Duration::from_secs(6000);
    assert!(
        plain()
            .state
            .countdown(&c)
            .text
            .starts_with("Code expires in 1:40:00")
    );
}

fn language(tag: &str) -> Language {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs");
    let pack = crate::locale::source::read_file(&dir.join(format!("{tag}.pack"))).unwrap();
    Language::from_pack(pack).unwrap()
}

#[test]
fn a_language_prints_its_sentences_in_logical_order() {
    let de = language("de");
    let mut screen = plain().with_language(de.clone());
    let out = show(&mut screen, &waiting(760));
    let steps = de.words().fill(
        Msg::CodeSteps,
        &[
            (Slot::Url, "https://example.com/device"),
            (Slot::Code, "WDJB-MJHT"),
        ],
    );
    assert!(out.contains(&steps), "{out}");
    assert!(out.contains(&de.words().text(Msg::Warning)[..20]), "{out}");
    assert!(!out.contains('\u{2066}'), "no isolates left to right");
    // Right to left: the code, the URL and the time are isolated left to right, so a bidi
    // terminal never reverses "019-450-730"; the sentence itself is in logical order.
    let ar = language("ar");
    let mut screen = plain().with_language(ar.clone());
    let mut code = code_screen(760);
    code.user_code = "019-450-730".into();
    let out = show(&mut screen, &View::WaitingForUser(code));
    assert!(out.contains("\u{2066}019-450-730\u{2069}"), "{out}");
    assert!(
        out.contains("\u{2066}https://example.com/device\u{2069}"),
        "{out}"
    );
    assert!(out.contains("\u{2066}12:40\u{2069}"), "{out}");
    let title = ar.words().text(Msg::CodeTitle);
    assert!(out.starts_with(&title), "{out}");
}

#[test]
fn wide_characters_take_two_columns_and_wrap_between_them() {
    assert_eq!(visible_width("コード"), 6);
    assert_eq!(visible_width("\u{2066}12\u{2069}"), 2);
    // Thai marks above and below take no column.
    assert_eq!(visible_width("ที่"), 1);
    let ja = language("ja");
    let warning = ja.words().text(Msg::Warning);
    let lines = wrap(&warning, 40);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().all(|l| visible_width(l) <= 40), "{lines:?}");
    assert_eq!(lines.concat().replace(' ', ""), warning.replace(' ', ""));
    // A line never starts with a closing mark.
    assert!(
        lines.iter().all(|l| !l.starts_with(['。', '、'])),
        "{lines:?}"
    );
}

#[test]
fn only_a_utf8_terminal_that_is_not_the_linux_console_shows_other_scripts() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(shows_any_script(&env(&[
        ("LANG", "de_DE.UTF-8"),
        ("TERM", "xterm-256color")
    ])));
    assert!(shows_any_script(&env(&[("LC_ALL", "C.utf8")])));
    // LC_ALL wins over LANG; LC_CTYPE over LANG.
    assert!(!shows_any_script(&env(&[
        ("LC_ALL", "POSIX"),
        ("LANG", "ar_EG.UTF-8")
    ])));
    assert!(!shows_any_script(&env(&[
        ("LC_CTYPE", "de_DE.ISO-8859-1"),
        ("LANG", "de_DE.UTF-8")
    ])));
    assert!(!shows_any_script(&env(&[])));
    // The Linux VT console: UTF-8 or not, no joined scripts and a 512-glyph font.
    assert!(!shows_any_script(&env(&[
        ("LANG", "ar_EG.UTF-8"),
        ("TERM", "linux")
    ])));
}

#[test]
fn write_errors_map_to_display_io() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut screen = TerminalScreen::new(Broken, TerminalMode::Plain);
    let err = screen.show(&View::Denied).expect_err("must fail");
    assert!(matches!(err, DisplayError::Io { .. }));
    assert!(err.to_string().starts_with("display: terminal: write: "));
}

#[test]
#[ignore = "prints sample screens; run with --ignored --nocapture"]
fn print_samples() {
    let mut screen = interactive();
    screen.show(&waiting(872)).expect("show");
    println!("{}", String::from_utf8_lossy(screen.get_ref()));
    let mut screen = plain();
    screen.show(&waiting(872)).expect("show");
    println!("{}", String::from_utf8_lossy(screen.get_ref()));
}
