//! Unit tests of the token service's keys: `[agent] socket*`, `allow_root`, `[[agent.client]]`
//! and `[provider] narrowing`.

use super::*;

const SRC: &str = "/etc/devauth/devauth.toml";
const MIN: &str = "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(SRC))
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The error's text, after checking it names `key` on `line`.
fn err_at(text: &str, key: &str, line: usize) -> String {
    let e = match parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    };
    let shown = e.to_string();
    assert_eq!(e.key(), Some(key), "{shown}");
    assert_eq!(e.line(), Some(line), "{shown}");
    shown
}

fn set(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_serve_the_default_socket_to_root_only() {
    let c = ok(MIN);
    let s = &c.agent.socket;
    assert_eq!(
        s.path.as_deref(),
        Some(Path::new("/run/devauth/devauth.sock"))
    );
    assert_eq!(s.mode, 0o660);
    assert_eq!(s.group, None);
    assert!(s.allow_root);
    assert!(s.clients.is_empty());
    assert_eq!(c.provider.narrowing, Narrowing::Refresh);
}

#[test]
fn socket_keys_are_read() {
    let c = ok(&format!(
        "{MIN}narrowing = \"token_exchange\"\n[agent]\nsocket = \"/run/x/apps.sock\"\n\
         socket_mode = \"0666\"\nsocket_group = \"apps\"\nallow_root = false\n"
    ));
    let s = &c.agent.socket;
    assert_eq!(s.path.as_deref(), Some(Path::new("/run/x/apps.sock")));
    assert_eq!(
        (s.mode, s.group.as_deref(), s.allow_root),
        (0o666, Some("apps"), false)
    );
    assert_eq!(c.provider.narrowing, Narrowing::TokenExchange);
    assert_eq!(
        ok(&format!("{MIN}[agent]\nsocket = \"\"\n"))
            .agent
            .socket
            .path,
        None
    );
}

#[test]
fn socket_mistakes_name_key_and_line() {
    let at = |extra: &str, key: &str| err_at(&format!("{MIN}[agent]\n{extra}\n"), key, 5);
    assert!(at("socket = \"run/x.sock\"", "agent.socket").contains("absolute"));
    assert!(at("socket = \"/run/devauth/access_token\"", "agent.socket").contains("token_file"));
    assert!(at("socket_mode = \"0990\"", "agent.socket_mode").contains("octal"));
    assert!(at("socket_mode = \"12345\"", "agent.socket_mode").contains("octal"));
    assert!(at("socket_mode = \"0066\"", "agent.socket_mode").contains("from 0600"));
    assert!(at("socket_group = \"-x\"", "agent.socket_group").contains("a name is"));
    err_at(
        &format!("{MIN}narrowing = \"always\"\n"),
        "provider.narrowing",
        4,
    );
}

#[test]
fn client_entries_are_read_in_order() {
    let c = ok(&format!(
        "{MIN}[agent]\n\
         [[agent.client]]\nuser = \"video\"\nscopes = [\"video.read\", \"profile\"]\n\
         [[agent.client]]\ngroup = \"2001\"\nexe = \"/usr/bin/music\"\naccounts = [\"kids\", \"default\"]\n\
         scopes = [\"*\"]\nallow_wider_token = true\n"
    ));
    let rules = &c.agent.socket.clients;
    assert_eq!(rules.len(), 2);
    let (a, b) = (&rules[0], &rules[1]);
    assert_eq!(a.name, "agent.client[0]");
    assert_eq!(a.user, Some(Principal::Name("video".into())));
    assert_eq!((a.group.clone(), a.exe.clone()), (None, None));
    assert_eq!(a.accounts, Allowed::Only(set(&["default"])));
    assert_eq!(a.scopes, Allowed::Only(set(&["profile", "video.read"])));
    assert!(!a.allow_wider_token);
    assert_eq!(b.name, "agent.client[1]");
    assert_eq!(b.group, Some(Principal::Id(2001)));
    assert_eq!(b.exe.as_deref(), Some(Path::new("/usr/bin/music")));
    assert_eq!(b.accounts, Allowed::Only(set(&["default", "kids"])));
    assert_eq!(b.scopes, Allowed::All);
    assert!(b.allow_wider_token);
}

#[test]
fn client_entry_mistakes_name_the_entry() {
    let entry = |body: &str| format!("{MIN}[agent]\n[[agent.client]]\n{body}\n");
    // Line 5 is the [[agent.client]] header; the entry's keys follow it.
    let e = err_at(&entry("scopes = [\"a\"]"), "agent.client[0]", 5);
    assert!(e.contains("user, group or exe"), "{e}");
    let e = err_at(&entry("user = \"video\""), "agent.client[0]", 5);
    assert!(e.contains("missing scopes"), "{e}");
    let e = err_at(
        &entry("user = \"video\"\nscopes = []"),
        "agent.client[0].scopes",
        7,
    );
    assert!(e.contains("grant nothing"), "{e}");
    let e = err_at(
        &entry("user = \"video\"\nscopes = [\"*\", \"a\"]"),
        "agent.client[0].scopes",
        7,
    );
    assert!(e.contains("all"), "{e}");
    err_at(
        &entry("user = \"video\"\nscopes = [\"a b\"]"),
        "agent.client[0].scopes[0]",
        7,
    );
    err_at(
        &entry("user = -1\nscopes = [\"a\"]"),
        "agent.client[0].user",
        6,
    );
    err_at(
        &entry("user = \"a b\"\nscopes = [\"a\"]"),
        "agent.client[0].user",
        6,
    );
    err_at(
        &entry("exe = \"video\"\nscopes = [\"a\"]"),
        "agent.client[0].exe",
        6,
    );
    err_at(
        &entry("user = \"1\"\naccounts = [\"my kids\"]\nscopes = [\"a\"]"),
        "agent.client[0].accounts[0]",
        7,
    );
    // An unknown key in an entry is named with the entry's path.
    let e = parse(&entry("user = \"1\"\nscopes = [\"a\"]\nscope = \"a\"")).unwrap_err();
    assert!(e.to_string().contains("scope"), "{e}");
}

#[test]
fn root_entries_contradict_allow_root_false() {
    let text = format!(
        "{MIN}[agent]\nallow_root = false\n[[agent.client]]\nuser = \"root\"\nscopes = [\"*\"]\n"
    );
    let e = err_at(&text, "agent.client[0].user", 6);
    assert!(e.contains("allow_root"), "{e}");
    ok(&format!(
        "{MIN}[agent]\n[[agent.client]]\nuser = \"0\"\nscopes = [\"*\"]\n"
    ));
}

#[test]
fn agent_keys_read_from_the_document_are_checked_like_the_others() {
    let e = err_at(&format!("{MIN}[agent]\nsocket = 5\n"), "agent.socket", 5);
    assert!(e.contains("expected a string"), "{e}");
    let e = err_at(
        &format!("{MIN}[agent]\nallow_root = \"no\"\n"),
        "agent.allow_root",
        5,
    );
    assert!(e.contains("expected a boolean"), "{e}");
    let e = err_at(
        &format!("{MIN}[agent]\nhook = \"x\"\nsockets = \"/a\"\n"),
        "agent.sockets",
        6,
    );
    assert!(
        e.contains("unknown key") && e.contains("`socket`") && e.contains("`hook`"),
        "{e}"
    );
    let e = err_at(
        &format!("{MIN}[agent]\nclient = \"x\"\n"),
        "agent.client",
        5,
    );
    assert!(e.contains("[[agent.client]]"), "{e}");
    let e = err_at(
        &format!("{MIN}[agent]\n[[agent.client]]\nuser = \"a\"\nscopes = [\"a\", 3]\n"),
        "agent.client[0].scopes[1]",
        7,
    );
    assert!(e.contains("expected a string"), "{e}");
    // Every serde key of [agent] is still accepted.
    ok(&format!(
        "{MIN}[agent]\ntoken_file = \"/run/x/t\"\ntoken_file_group = \"g\"\nhook = \"h\"\n\
         refresh_margin_secs = 5\npaired_screen_secs = 1\nrelease_display = \"keep\"\n"
    ));
}

#[test]
fn agent_keys_are_checked_as_the_derived_reader_checked_them() {
    // `[agent]` is read by `table_reader!` with other keys ignored (the token service's are
    // read from the document): its own keys, wrong types and a non-table are named as the
    // derived reader named them; the token service's keys beside them are still read.
    let c = ok(&format!(
        "{MIN}[agent]\nsocket = \"/run/x/a.sock\"\nrefresh_margin_secs = 60\nallow_root = false\n\
         release_display = \"keep\"\n[[agent.client]]\nuser = \"1000\"\nscopes = [\"*\"]\n"
    ));
    assert_eq!(c.agent.refresh_margin, Duration::from_secs(60));
    assert_eq!(c.agent.release_display, ReleaseDisplay::Keep);
    assert_eq!(
        c.agent.socket.path.as_deref(),
        Some(Path::new("/run/x/a.sock"))
    );
    assert!(!c.agent.socket.allow_root);
    assert_eq!(c.agent.socket.clients.len(), 1);
    let shown = err_at(
        &format!("{MIN}[agent]\nsocket_mode = \"0600\"\nhook = 5\n"),
        "agent.hook",
        6,
    );
    assert!(
        shown.ends_with("invalid type: integer `5`, expected a string"),
        "{shown}"
    );
    let e = parse(&format!("agent = 5\n{MIN}")).expect_err("not a table");
    assert!(
        e.to_string()
            .ends_with("agent: invalid type: integer `5`, expected a table"),
        "{e}"
    );
    let shown = err_at(
        &format!("{MIN}[agent]\nsocket = \"\"\nhoook = \"x\"\n"),
        "agent.hoook",
        6,
    );
    assert!(shown.contains("unknown key"), "{shown}");
}
