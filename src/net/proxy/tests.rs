use super::*;

fn rules(vars: &[(&str, &str)]) -> ProxyRules {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxyRules::from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .unwrap()
}

fn proxied(r: &ProxyRules, url: &str) -> Option<String> {
    r.for_url(url)
        .map(|p| format!("{}:{}", p.proxy.host(), p.proxy.port()))
}

#[test]
fn loopback_is_never_proxied() {
    let r = rules(&[
        ("ALL_PROXY", "http://proxy.example:3128"),
        ("HTTPS_PROXY", "http://proxy.example:3128"),
    ]);
    for url in [
        "https://127.0.0.1:8080/token",
        "https://127.1.2.3/x",
        "https://[::1]:9/x",
        "https://localhost/x",
        "https://LOCALHOST:443/x",
        "https://auth.localhost/x",
        "https://[::ffff:127.0.0.1]/x",
    ] {
        assert_eq!(proxied(&r, url), None, "{url}");
    }
    assert_eq!(
        proxied(&r, "https://login.example.com/token").as_deref(),
        Some("proxy.example:3128")
    );
}

#[test]
fn https_takes_its_own_variable_then_all_proxy() {
    let r = rules(&[("ALL_PROXY", "http://all:2")]);
    assert_eq!(proxied(&r, "https://a.example/").as_deref(), Some("all:2"));
    let r = rules(&[
        ("HTTPS_PROXY", "http://tls:3"),
        ("all_proxy", "http://all:2"),
    ]);
    assert_eq!(proxied(&r, "https://a.example/").as_deref(), Some("tls:3"));
    assert_eq!(
        r.for_url("https://a.example/").unwrap().label(),
        "tls:3 (from HTTPS_PROXY)"
    );
    // Plain http goes only to loopback, which is never proxied: http_proxy is not read.
    let r = rules(&[
        ("http_proxy", "http://plain:1"),
        ("HTTP_PROXY", "http://plain:1"),
    ]);
    assert_eq!(proxied(&r, "https://a.example/"), None);
    assert_eq!(proxied(&r, "http://a.example/"), None);
}

#[test]
fn lower_case_wins_and_empty_is_unset() {
    let r = rules(&[
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:2"),
    ]);
    assert_eq!(
        proxied(&r, "https://a.example/").as_deref(),
        Some("lower:1")
    );
    let r = rules(&[("https_proxy", " "), ("HTTPS_PROXY", "http://upper:2")]);
    assert_eq!(
        proxied(&r, "https://a.example/").as_deref(),
        Some("upper:2")
    );
    let r = rules(&[("NO_PROXY", "a.example"), ("no_proxy", "b.example")]);
    assert_eq!(r.no_proxy, [NoProxyEntry::Domain("b.example".into())]);
}

#[test]
fn no_proxy_matches_hosts_and_their_subdomains() {
    let r = rules(&[
        ("HTTPS_PROXY", "http://p:1"),
        (
            "NO_PROXY",
            "example.com, .corp.test,*.wild.test,trailing.test.,10.0.0.5,[2001:db8::1]",
        ),
    ]);
    for url in [
        "https://example.com/x",
        "https://login.example.com/x",
        "https://LOGIN.Example.COM/x",
        "https://a.corp.test/x",
        "https://corp.test/x",
        "https://a.wild.test/x",
        "https://trailing.test/x",
        "https://example.com./x",
        "https://10.0.0.5/x",
        "https://[2001:db8::1]:8443/x",
    ] {
        assert_eq!(proxied(&r, url), None, "{url}");
    }
    for url in [
        "https://notexample.com/x",
        "https://example.com.evil.test/x",
        "https://10.0.0.50/x",
        "https://[2001:db8::2]/x",
    ] {
        assert!(proxied(&r, url).is_some(), "{url}");
    }
    let r = rules(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
    assert_eq!(proxied(&r, "https://anything.example/"), None);
}

#[test]
fn no_proxy_networks_match_ip_hosts_only() {
    // curl 7.86+: CIDR for addresses; a name is never resolved to be compared.
    let r = rules(&[
        ("HTTPS_PROXY", "http://p:1"),
        (
            "NO_PROXY",
            "192.168.0.0/16,2001:db8:abcd::/48,10.1.2.3/32,0.0.5",
        ),
    ]);
    for url in [
        "https://192.168.7.1/x",
        "https://192.168.255.255:8443/x",
        "https://[2001:db8:abcd:12::1]/x",
        "https://10.1.2.3/x",
    ] {
        assert_eq!(proxied(&r, url), None, "{url}");
    }
    for url in [
        "https://192.169.0.1/x",
        "https://[2001:db8:abce::1]/x",
        "https://10.1.2.4/x",
        // "0.0.5" is a (strange) domain entry: it must not match an address by its tail.
        "https://10.0.0.5/x",
        // An address entry does not match a name, even one that looks like it.
        "https://192.168.1.1.nip.test/x",
    ] {
        assert!(proxied(&r, url).is_some(), "{url}");
    }
    assert!(in_network(
        "10.0.0.1".parse().unwrap(),
        "0.0.0.0".parse().unwrap(),
        0
    ));
    assert!(!in_network(
        "10.0.0.1".parse().unwrap(),
        "::".parse().unwrap(),
        0
    ));
}

#[test]
fn unusable_no_proxy_entries_are_skipped_like_curl() {
    assert_eq!(
        parse_no_proxy("10.0.0.0/33, a.test/8, ,,  b.test"),
        [NoProxyEntry::Domain("b.test".into())]
    );
    // A port makes an entry that matches no host (curl has no port entries).
    let r = rules(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "c.test:443")]);
    assert!(proxied(&r, "https://c.test/x").is_some());
    assert!(check_no_proxy_entry("10.0.0.0/33").is_err());
    assert!(check_no_proxy_entry("a,b").is_err());
    assert!(check_no_proxy_entry("").is_err());
    assert!(check_no_proxy_entry(".corp.example").is_ok());
    assert!(check_no_proxy_entry("fd00::/8").is_ok());
}

#[test]
fn bad_proxy_urls_are_named_by_their_source_never_shown() {
    for (url, why) in [
        ("fakeproto://user:hunter2@p:1", "scheme"),
        ("socks4://user:hunter2@p:1", "not supported"),
        (
            "socks5h://user:hunter2@p:1",
            "socks5h proxies are not supported",
        ),
        (
            "SOCKS5://user:hunter2@p:1",
            "socks5 proxies are not supported",
        ),
        ("http://user:hunter2@:3128", "no host"),
        ("http://user:hunter2@p:99999", "port"),
        ("http://user:hunter2@p:0", "port"),
        ("http://user:hun ter2@p:1", "spaces"),
    ] {
        let e =
            ProxyRules::from_env(|n| (n == "HTTPS_PROXY").then(|| url.to_string())).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("HTTPS_PROXY: not a usable proxy URL: "),
            "{text}"
        );
        assert!(text.contains(why), "{url}: {text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn configured_proxy_ignores_the_environment() {
    let env = |n: &str| (n == "HTTPS_PROXY").then(|| "http://from-env:1".to_string());
    let config = ProxyConfig::Url {
        url: Secret::new("http://user:p%40ss@proxy.corp:3128"),
        no_proxy: vec!["intranet.corp".into()],
    };
    let r = ProxyRules::new(&config, env).unwrap();
    let chosen = r.for_url("https://login.example.com/").unwrap();
    assert_eq!(chosen.label(), "proxy.corp:3128 (from network.proxy)");
    assert!(chosen.has_credentials());
    assert_eq!(chosen.proxy.password(), Some("p@ss"));
    assert!(r.for_url("https://wiki.intranet.corp/").is_none());
    // Nothing shows the password: not Debug of the config, the rules or the choice.
    for shown in [
        format!("{config:?}"),
        format!("{r:?}"),
        format!("{chosen:?}"),
    ] {
        assert!(
            !shown.contains("p%40ss") && !shown.contains("p@ss"),
            "{shown}"
        );
        assert!(shown.contains("proxy.corp:3128"), "{shown}");
    }
    let direct = ProxyRules::new(&ProxyConfig::Direct, env).unwrap();
    assert!(direct.for_url("https://login.example.com/").is_none());
    let from_env = ProxyRules::new(&ProxyConfig::Environment, env).unwrap();
    assert_eq!(
        from_env
            .for_url("https://login.example.com/")
            .unwrap()
            .label(),
        "from-env:1 (from HTTPS_PROXY)"
    );
}

#[test]
fn proxy_urls_of_every_kind() {
    for (url, label, creds) in [
        ("proxy.corp:3128", "proxy.corp:3128", false),
        ("http://proxy.corp", "proxy.corp:80", false),
        ("https://proxy.corp", "proxy.corp:443", false),
        ("HTTP://u:p@[2001:db8::1]:8080/", "[2001:db8::1]:8080", true),
        ("http://u@10.0.0.1:3128", "10.0.0.1:3128", true),
    ] {
        let p = parse_proxy_url(url, "t").unwrap();
        assert_eq!(p.label(), format!("{label} (from t)"), "{url}");
        assert_eq!(p.has_credentials(), creds, "{url}");
    }
}
