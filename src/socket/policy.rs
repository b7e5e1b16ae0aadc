//! Who may have which tokens: the `[[agent.client]]` entries applied to a caller ([`Peer`]),
//! as pure decisions with a test per rule.
//!
//! The rules (docs/agent.md, "Tokens for the device's apps"):
//! - uid 0 gets every account and scope with `allow_root = true` (the default; root can read
//!   the store anyway) and nothing with `allow_root = false`.
//! - Anyone else must match an entry: every field the entry gives (`user`, `group` — primary
//!   or supplementary —, `exe`) must match. A caller no entry matches is refused everything,
//!   `/v1/status` and `/v1/events` included.
//! - Entries are tried in file order; the first that matches the caller *and* grants the
//!   account asked for decides. Asked for scopes it does not grant: refused (no other entry is
//!   tried, so what a caller gets never depends on how entries combine).
//! - Without `scope=`, a caller gets what its entry grants of what the account holds; a scope
//!   the account does not hold is refused before anything is asked of the provider.

use super::peer::Peer;
use crate::config::{Allowed, ClientRule, Principal, SocketConfig};
use std::fmt;

/// Most scopes in one request, and the longest scope (the config's own bounds).
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 256;

/// A set of scopes, kept sorted and without duplicates: the key of a narrowed token (`a b` and
/// `b a` are one token). A sorted `Vec`, not a `BTreeSet`: sets here hold a handful of scopes,
/// and the tree's code costs kilobytes on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> ScopeSet {
        let mut v: Vec<String> = scopes.into_iter().map(Into::into).collect();
        v.sort_unstable();
        v.dedup();
        ScopeSet(v)
    }

    /// A `scope` parameter (RFC 6749 §3.3: space-separated, each `1*NQCHAR`).
    pub fn parse(param: &str) -> Result<ScopeSet, String> {
        let mut set = Vec::new();
        for s in param.split(' ').filter(|s| !s.is_empty()) {
            if set.len() == MAX_SCOPES {
                return Err(format!("more than {MAX_SCOPES} scopes"));
            }
            let nqchar =
                |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
            if s.len() > MAX_SCOPE_LEN || !s.bytes().all(nqchar) {
                return Err(format!(
                    "{:?} is not a scope (printable ASCII without quotes or backslashes, at most \
                     {MAX_SCOPE_LEN} bytes)",
                    s.chars().take(64).collect::<String>()
                ));
            }
            set.push(s);
        }
        if set.is_empty() {
            return Err("empty: name at least one scope, or leave `scope` out".into());
        }
        Ok(ScopeSet::new(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The scopes of `self` that `other` lacks (still sorted).
    pub fn missing_from(&self, other: &ScopeSet) -> ScopeSet {
        self.filter(|s| !other.contains(s))
    }

    /// The scopes of `self` for which `keep` holds (still sorted).
    fn filter(&self, keep: impl Fn(&str) -> bool) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    /// Space-separated, as the `scope` parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// An entry with its names resolved to ids. `Some(None)`: a name that does not exist on this
/// system (the entry matches nobody by that field).
#[derive(Debug, Clone)]
struct Entry {
    rule: ClientRule,
    uid: Option<Option<u32>>,
    gid: Option<Option<u32>>,
}

impl Entry {
    fn matches(&self, peer: &Peer) -> bool {
        let uid_ok = match self.uid {
            None => true,
            Some(uid) => uid == Some(peer.uid),
        };
        let gid_ok = match self.gid {
            None => true,
            Some(gid) => gid.is_some_and(|g| peer.in_group(g)),
        };
        let exe_ok = match &self.rule.exe {
            None => true,
            Some(exe) => peer.exe.as_deref() == Some(exe.as_path()),
        };
        uid_ok && gid_ok && exe_ok
    }
}

/// The policy, names resolved once (at start and on SIGHUP).
#[derive(Debug, Clone)]
pub struct Policy {
    allow_root: bool,
    entries: Vec<Entry>,
}

/// Who the caller is to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Root,
    /// Matches at least one entry.
    Client,
}

/// What a token request is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The scopes the token must have (no more).
    pub scopes: ScopeSet,
    /// A wider token may be handed out when the provider will not narrow.
    pub allow_wider: bool,
    /// `root` or `agent.client[N]`, for the log.
    pub by: String,
}

/// Why a caller is refused (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// uid 0 with `allow_root = false`.
    RootRefused,
    /// No entry matches the caller.
    NoEntry,
    /// Entries match the caller, but none grants this account.
    AccountNotAllowed { account: String },
    /// The deciding entry does not grant these scopes.
    ScopeNotAllowed { by: String, scopes: ScopeSet },
    /// The account does not hold these scopes: no token can have them.
    ScopeNotHeld { scopes: ScopeSet },
    /// The deciding entry grants none of the scopes the account holds.
    NothingGranted { by: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RootRefused => "root_not_allowed",
            Refusal::NoEntry => "client_not_allowed",
            Refusal::AccountNotAllowed { .. } => "account_not_allowed",
            Refusal::ScopeNotAllowed { .. } | Refusal::NothingGranted { .. } => "scope_not_allowed",
            Refusal::ScopeNotHeld { .. } => "scope_not_held",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::RootRefused => write!(f, "root is refused by [agent] allow_root = false"),
            Refusal::NoEntry => write!(f, "no [[agent.client]] entry matches this caller"),
            Refusal::AccountNotAllowed { account } => {
                write!(
                    f,
                    "no [[agent.client]] entry for this caller grants account `{account}`"
                )
            }
            Refusal::ScopeNotAllowed { by, scopes } => {
                write!(f, "{by} does not grant the scopes `{scopes}`")
            }
            Refusal::ScopeNotHeld { scopes } => {
                write!(f, "the account does not hold the scopes `{scopes}`")
            }
            Refusal::NothingGranted { by } => {
                write!(f, "{by} grants none of the scopes the account holds")
            }
        }
    }
}

impl Policy {
    /// Resolves user and group names with `uid_of` / `gid_of`; each name that does not exist
    /// yields a warning (the entry then matches nobody by that field).
    pub fn resolve(
        config: &SocketConfig,
        uid_of: impl Fn(&str) -> Option<u32>,
        gid_of: impl Fn(&str) -> Option<u32>,
    ) -> (Policy, Vec<String>) {
        let mut warnings = Vec::new();
        let mut entries = Vec::new();
        for rule in &config.clients {
            let mut id = |p: &Option<Principal>,
                          key: &str,
                          what: &str,
                          lookup: &dyn Fn(&str) -> Option<u32>| {
                p.as_ref().map(|p| match p {
                    Principal::Id(n) => Some(*n),
                    Principal::Name(name) => {
                        let found = lookup(name);
                        if found.is_none() {
                            warnings.push(format!(
                                "{}.{key}: no {what} `{name}` on this system; the entry matches \
                                 nobody until it exists (then send SIGHUP)",
                                rule.name
                            ));
                        }
                        found
                    }
                })
            };
            let uid = id(&rule.user, "user", "user", &uid_of);
            let gid = id(&rule.group, "group", "group", &gid_of);
            entries.push(Entry {
                rule: rule.clone(),
                uid,
                gid,
            });
        }
        (
            Policy {
                allow_root: config.allow_root,
                entries,
            },
            warnings,
        )
    }

    /// Whether the caller may use the socket at all (status, events, tokens).
    pub fn caller(&self, peer: &Peer) -> Result<Caller, Refusal> {
        if peer.uid == 0 {
            return if self.allow_root {
                Ok(Caller::Root)
            } else {
                Err(Refusal::RootRefused)
            };
        }
        if self.entries.iter().any(|e| e.matches(peer)) {
            Ok(Caller::Client)
        } else {
            Err(Refusal::NoEntry)
        }
    }

    /// What a token request for `account` (holding `held`) with `requested` scopes (`None`:
    /// the parameter was left out) is granted.
    pub fn token(
        &self,
        peer: &Peer,
        account: &str,
        requested: Option<&ScopeSet>,
        held: &ScopeSet,
    ) -> Result<Granted, Refusal> {
        let not_held = |r: &ScopeSet| {
            let missing = r.missing_from(held);
            (!missing.is_empty()).then_some(Refusal::ScopeNotHeld { scopes: missing })
        };
        if self.caller(peer)? == Caller::Root {
            if let Some(e) = requested.and_then(not_held) {
                return Err(e);
            }
            return Ok(Granted {
                scopes: requested.cloned().unwrap_or_else(|| held.clone()),
                allow_wider: true,
                by: "root".into(),
            });
        }
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.matches(peer) && e.rule.accounts.allows(account))
        else {
            return Err(Refusal::AccountNotAllowed {
                account: account.to_string(),
            });
        };
        let by = entry.rule.name.clone();
        let scopes = match requested {
            Some(r) => {
                if let Allowed::Only(granted) = &entry.rule.scopes {
                    let beyond = r.filter(|s| !granted.iter().any(|g| g == s));
                    if !beyond.is_empty() {
                        return Err(Refusal::ScopeNotAllowed { by, scopes: beyond });
                    }
                }
                if let Some(e) = not_held(r) {
                    return Err(e);
                }
                r.clone()
            }
            None => match &entry.rule.scopes {
                Allowed::All => held.clone(),
                Allowed::Only(granted) => {
                    let both = held.filter(|s| granted.iter().any(|g| g == s));
                    if both.is_empty() {
                        return Err(Refusal::NothingGranted { by });
                    }
                    both
                }
            },
        };
        Ok(Granted {
            scopes,
            allow_wider: entry.rule.allow_wider_token,
            by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn peer(uid: u32, gid: u32, groups: &[u32], exe: &str) -> Peer {
        Peer {
            pid: 42,
            uid,
            gid,
            groups: groups.to_vec(),
            exe: Some(PathBuf::from(exe)),
        }
    }

    fn rule(n: usize) -> ClientRule {
        ClientRule {
            name: format!("agent.client[{}]", n - 1),
            user: None,
            group: None,
            exe: None,
            accounts: Allowed::Only(["default".to_string()].into()),
            scopes: Allowed::All,
            allow_wider_token: false,
        }
    }

    fn only(items: &[&str]) -> Allowed {
        Allowed::Only(items.iter().map(|s| s.to_string()).collect())
    }

    fn policy(allow_root: bool, rules: Vec<ClientRule>) -> Policy {
        let config = SocketConfig {
            allow_root,
            clients: rules,
            ..SocketConfig::default()
        };
        let users = |n: &str| match n {
            "video" => Some(1001),
            _ => None,
        };
        let groups = |n: &str| match n {
            "media" => Some(2001),
            _ => None,
        };
        Policy::resolve(&config, users, groups).0
    }

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn scope_sets_are_sorted_and_checked() {
        assert_eq!(set("b a  b").to_string(), "a b");
        assert_eq!(set("a b"), set("b a"));
        assert!(ScopeSet::parse("").is_err() && ScopeSet::parse("   ").is_err());
        assert!(ScopeSet::parse("a\"b").is_err() && ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse(&"x".repeat(257)).is_err());
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert!(ScopeSet::parse(&many.join(" ")).is_err());
        assert!(set("a").is_subset(&set("a b")) && !set("a c").is_subset(&set("a b")));
        assert_eq!(set("a c").missing_from(&set("a b")).to_string(), "c");
    }

    #[test]
    fn root_gets_everything_or_nothing() {
        let held = set("read write");
        let root = peer(0, 0, &[], "/usr/bin/x");
        let p = policy(true, vec![]);
        let g = p.token(&root, "default", None, &held).unwrap();
        assert_eq!(
            (g.scopes, g.allow_wider, g.by.as_str()),
            (held.clone(), true, "root")
        );
        let g = p.token(&root, "kids", Some(&set("read")), &held).unwrap();
        assert_eq!(g.scopes, set("read"));
        assert_eq!(
            p.token(&root, "default", Some(&set("admin")), &held),
            Err(Refusal::ScopeNotHeld {
                scopes: set("admin")
            })
        );
        let p = policy(false, vec![]);
        assert_eq!(p.caller(&root), Err(Refusal::RootRefused));
        assert_eq!(
            p.token(&root, "default", None, &held),
            Err(Refusal::RootRefused)
        );
    }

    #[test]
    fn a_caller_no_entry_matches_is_refused_everything() {
        let mut r = rule(1);
        r.user = Some(Principal::Name("video".into()));
        let p = policy(true, vec![r]);
        let stranger = peer(1002, 1002, &[], "/usr/bin/video");
        assert_eq!(p.caller(&stranger), Err(Refusal::NoEntry));
        assert_eq!(
            p.token(&stranger, "default", None, &set("a"))
                .unwrap_err()
                .code(),
            "client_not_allowed"
        );
        assert_eq!(p.caller(&peer(1001, 1001, &[], "/x")), Ok(Caller::Client));
    }

    #[test]
    fn every_given_field_must_match() {
        let mut r = rule(1);
        r.user = Some(Principal::Id(1001));
        r.group = Some(Principal::Name("media".into()));
        r.exe = Some(PathBuf::from("/usr/bin/video"));
        let p = policy(true, vec![r]);
        assert!(p.caller(&peer(1001, 2001, &[], "/usr/bin/video")).is_ok());
        // A supplementary group counts.
        assert!(
            p.caller(&peer(1001, 1001, &[5, 2001], "/usr/bin/video"))
                .is_ok()
        );
        assert!(p.caller(&peer(1001, 1001, &[5], "/usr/bin/video")).is_err());
        assert!(p.caller(&peer(1001, 2001, &[], "/usr/bin/other")).is_err());
        assert!(p.caller(&peer(1003, 2001, &[], "/usr/bin/video")).is_err());
        let mut unknown_exe = peer(1001, 2001, &[], "/x");
        unknown_exe.exe = None;
        assert!(p.caller(&unknown_exe).is_err());
    }

    #[test]
    fn unknown_names_match_nobody_and_warn() {
        let mut r = rule(1);
        r.user = Some(Principal::Name("ghost".into()));
        let config = SocketConfig {
            clients: vec![r],
            ..SocketConfig::default()
        };
        let (p, warnings) = Policy::resolve(&config, |_| None, |_| None);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("agent.client[0].user: no user `ghost`"),
            "{warnings:?}"
        );
        assert!(p.caller(&peer(1001, 1001, &[], "/x")).is_err());
    }

    #[test]
    fn scopes_beyond_the_grant_are_refused_and_none_means_the_grant() {
        let mut r = rule(1);
        r.user = Some(Principal::Id(1001));
        r.scopes = only(&["read", "profile"]);
        let p = policy(true, vec![r]);
        let app = peer(1001, 1001, &[], "/x");
        let held = set("read write profile openid");
        assert_eq!(
            p.token(&app, "default", Some(&set("read write")), &held),
            Err(Refusal::ScopeNotAllowed {
                by: "agent.client[0]".into(),
                scopes: set("write")
            })
        );
        let g = p.token(&app, "default", Some(&set("read")), &held).unwrap();
        assert_eq!((g.scopes, g.allow_wider), (set("read"), false));
        let g = p.token(&app, "default", None, &held).unwrap();
        assert_eq!(g.scopes, set("profile read"));
        // A granted scope the account does not hold.
        assert_eq!(
            p.token(&app, "default", None, &set("write")),
            Err(Refusal::NothingGranted {
                by: "agent.client[0]".into()
            })
        );
        assert_eq!(
            p.token(&app, "default", Some(&set("read")), &set("openid")),
            Err(Refusal::ScopeNotHeld {
                scopes: set("read")
            })
        );
    }

    #[test]
    fn the_first_entry_granting_the_account_decides() {
        let mut kids = rule(1);
        kids.group = Some(Principal::Id(2001));
        kids.accounts = only(&["kids"]);
        kids.scopes = only(&["read"]);
        let mut video = rule(2);
        video.group = Some(Principal::Id(2001));
        video.scopes = only(&["read", "write"]);
        video.allow_wider_token = true;
        let mut later = rule(3);
        later.group = Some(Principal::Id(2001));
        later.scopes = Allowed::All;
        let p = policy(true, vec![kids, video, later]);
        let app = peer(1001, 2001, &[], "/x");
        let held = set("read write admin");
        let g = p.token(&app, "default", None, &held).unwrap();
        assert_eq!((g.by.as_str(), g.allow_wider), ("agent.client[1]", true));
        assert_eq!(g.scopes, set("read write"));
        // Entry 3 would grant `admin`, but entry 2 decides.
        assert!(
            p.token(&app, "default", Some(&set("admin")), &held)
                .is_err()
        );
        assert_eq!(
            p.token(&app, "kids", None, &set("read")).unwrap().by,
            "agent.client[0]"
        );
        assert_eq!(
            p.token(&app, "music", None, &held),
            Err(Refusal::AccountNotAllowed {
                account: "music".into()
            })
        );
        assert_eq!(
            p.token(&app, "music", None, &held).unwrap_err().code(),
            "account_not_allowed"
        );
    }
}
