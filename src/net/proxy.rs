//! Which proxy, if any, a request goes through: the environment's proxy variables read the way
//! curl reads them, with loopback always reached directly.
//!
//! Owns the choice only; ureq's CONNECT connector does the tunnelling. Knows nothing of the
//! configuration file (a `[network] proxy` key arrives here as an explicit setting).
//!
//! Why not ureq's own `Proxy::try_from_env`: it takes `ALL_PROXY` first and `HTTP_PROXY` for
//! https too, and sends requests to 127.0.0.1 through the proxy, so a developer or CI machine
//! with a proxy in its environment could not reach the loopback test server.

/// The proxy settings of one process, read once when the transport is built.
#[derive(Debug, Clone, Default)]
pub struct ProxyRules {
    /// For `https://` URLs: `https_proxy`, `HTTPS_PROXY`, else `all_proxy`, `ALL_PROXY`.
    https: Option<ProxySetting>,
    /// For `http://` URLs: `http_proxy`, `HTTP_PROXY`, else `all_proxy`, `ALL_PROXY`.
    http: Option<ProxySetting>,
    /// `no_proxy` / `NO_PROXY`: hosts reached directly.
    no_proxy: Vec<String>,
}

/// One proxy URL and the variable it came from (named in errors; the URL itself may hold a
/// password and is never shown).
#[derive(Debug, Clone)]
struct ProxySetting {
    source: &'static str,
    url: String,
}

impl ProxyRules {
    /// Reads the proxy variables through `get` (the process environment in production).
    /// curl's order: the lower-case name first, then the upper-case one; an empty value counts
    /// as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                get(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|url| ProxySetting {
                        source: name,
                        url: url.trim().to_string(),
                    })
            })
        };
        let all = first(&["all_proxy", "ALL_PROXY"]);
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|s| {
                s.url
                    .split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        ProxyRules {
            https: first(&["https_proxy", "HTTPS_PROXY"]).or_else(|| all.clone()),
            http: first(&["http_proxy", "HTTP_PROXY"]).or(all),
            no_proxy,
        }
    }

    /// The proxy for `url`, or `None` to connect directly. Errors name the variable whose
    /// value is not a usable proxy URL.
    pub fn for_url(&self, url: &str) -> Result<Option<ureq::Proxy>, String> {
        let (scheme, host) = scheme_and_host(url);
        if host.is_empty() || is_loopback(&host) || self.bypassed(&host) {
            return Ok(None);
        }
        let setting = match scheme.as_str() {
            "https" => &self.https,
            "http" => &self.http,
            _ => &None,
        };
        match setting {
            None => Ok(None),
            Some(s) => ureq::Proxy::new(&s.url)
                .map(Some)
                .map_err(|_| format!("{}: not a usable proxy URL", s.source)),
        }
    }

    /// curl's `NO_PROXY` matching: `*` is every host; an entry matches the host itself and,
    /// by domain, every name under it (a leading dot is optional); IP addresses match exactly.
    fn bypassed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            if entry == "*" {
                return true;
            }
            let domain = entry.strip_prefix('.').unwrap_or(entry);
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// The scheme and the host (lower case, IPv6 in brackets) of a URL; empty when unparseable.
fn scheme_and_host(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (String::new(), String::new());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map(|(h, _)| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    (scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// Loopback is never proxied: a proxy elsewhere cannot reach this machine's 127.0.0.1.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(vars: &[(&str, &str)]) -> ProxyRules {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyRules::from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn proxied(r: &ProxyRules, url: &str) -> Option<String> {
        r.for_url(url)
            .unwrap()
            .map(|p| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn loopback_is_never_proxied() {
        let r = rules(&[
            ("HTTP_PROXY", "http://proxy.example:3128"),
            ("ALL_PROXY", "http://proxy.example:3128"),
            ("HTTPS_PROXY", "http://proxy.example:3128"),
        ]);
        for url in [
            "http://127.0.0.1:8080/token",
            "http://127.1.2.3/x",
            "http://[::1]:9/x",
            "https://localhost/x",
            "https://LOCALHOST:443/x",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            assert_eq!(proxied(&r, url), None, "{url}");
        }
        assert_eq!(
            proxied(&r, "https://login.example.com/token").as_deref(),
            Some("proxy.example:3128")
        );
    }

    #[test]
    fn each_scheme_has_its_variable_and_all_proxy_is_the_fallback() {
        let r = rules(&[
            ("http_proxy", "http://plain:1"),
            ("ALL_PROXY", "http://all:2"),
        ]);
        assert_eq!(proxied(&r, "http://a.example/").as_deref(), Some("plain:1"));
        assert_eq!(proxied(&r, "https://a.example/").as_deref(), Some("all:2"));
        let r = rules(&[("HTTPS_PROXY", "http://tls:3")]);
        assert_eq!(proxied(&r, "https://a.example/").as_deref(), Some("tls:3"));
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
    }

    #[test]
    fn no_proxy_matches_hosts_and_their_subdomains() {
        let r = rules(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "example.com, .corp.test,10.0.0.5,[2001:db8::1]"),
        ]);
        for url in [
            "https://example.com/x",
            "https://login.example.com/x",
            "https://a.corp.test/x",
            "https://corp.test/x",
            "https://10.0.0.5/x",
            "https://[2001:db8::1]:8443/x",
        ] {
            assert_eq!(proxied(&r, url), None, "{url}");
        }
        for url in ["https://notexample.com/x", "https://10.0.0.50/x"] {
            assert!(proxied(&r, url).is_some(), "{url}");
        }
        let r = rules(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(proxied(&r, "https://anything.example/"), None);
    }

    #[test]
    fn a_bad_proxy_url_is_named_by_its_variable_not_shown() {
        let r = rules(&[("HTTPS_PROXY", "fakeproto://user:hunter2@p:1")]);
        let e = r.for_url("https://a.example/").unwrap_err();
        assert!(e.contains("HTTPS_PROXY"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
