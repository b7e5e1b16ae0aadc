//! The token service's keys: `[agent] socket`, `socket_mode`, `socket_group`, `allow_root`,
//! the `[[agent.client]]` policy entries, and `[provider] narrowing`. Their resolved types and
//! checks; names of users and groups are kept as written (the agent resolves them when it
//! starts, so a config naming a user that does not exist yet still loads for `status`).

use super::*;

/// Default `[agent] socket`.
pub const DEFAULT_SOCKET_PATH: &str = "/run/devauth/devauth.sock";
/// Default `[agent] socket_mode`: owner and group may connect; the policy decides what they get.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// Every key of `[agent]`: serde's `RawAgent` and the token service's (read here).
const AGENT_KEYS: &[&str] = &[
    "token_file",
    "token_file_group",
    "hook",
    "refresh_margin_secs",
    "paired_screen_secs",
    "release_display",
    "socket",
    "socket_mode",
    "socket_group",
    "allow_root",
    "client",
];
/// The one account of a single-account config, as the token service names it.
pub const DEFAULT_ACCOUNT: &str = "default";
/// More `[[agent.client]]` entries than this is a mistake, not a policy.
const MAX_CLIENT_RULES: usize = 64;
/// Accounts or scopes one entry may list.
const MAX_RULE_ITEMS: usize = 64;

/// `[agent] socket*` and the client policy: how `devauth run` serves the device's apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// Where the socket is created; `None`: `socket = ""`, no socket.
    pub path: Option<PathBuf>,
    /// Permission bits of the socket file (connecting needs write permission).
    pub mode: u32,
    /// Group that owns the socket file, by name; resolved by the agent.
    pub group: Option<String>,
    /// uid 0 gets every account and scope (`true`) or nothing (`false`).
    pub allow_root: bool,
    /// `[[agent.client]]` entries, in file order (the first that matches decides).
    pub clients: Vec<ClientRule>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            path: Some(PathBuf::from(DEFAULT_SOCKET_PATH)),
            mode: DEFAULT_SOCKET_MODE,
            group: None,
            allow_root: true,
            clients: Vec::new(),
        }
    }
}

/// A user or a group as written: a name, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Name(String),
    Id(u32),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Name(n) => write!(f, "{n}"),
            Principal::Id(id) => write!(f, "{id}"),
        }
    }
}

/// Which accounts or scopes an entry grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `["*"]`: all of them.
    All,
    /// These, sorted, without duplicates.
    Only(Vec<String>),
}

impl Allowed {
    pub fn allows(&self, item: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Only(list) => list.iter().any(|i| i == item),
        }
    }
}

/// One `[[agent.client]]` entry: who (every field given must match) and what they may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    /// `agent.client[N]` (0-based, as config errors name array items), for messages and the
    /// hand-out log.
    pub name: String,
    pub user: Option<Principal>,
    pub group: Option<Principal>,
    /// The executable, as the kernel reports it (`/proc/<pid>/exe`).
    pub exe: Option<PathBuf>,
    pub accounts: Allowed,
    pub scopes: Allowed,
    /// When the provider ignores a narrower `scope`, hand out the wider token anyway.
    pub allow_wider_token: bool,
}

/// `[provider] narrowing`: how a token with fewer scopes than the account holds is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrowing {
    /// RFC 6749 §6: a refresh request with the narrower `scope`.
    Refresh,
    /// RFC 8693: the access token exchanged for one with the narrower `scope`.
    TokenExchange,
    /// Never ask: only the account's own token exists.
    Off,
}

impl Narrowing {
    pub fn name(self) -> &'static str {
        match self {
            Narrowing::Refresh => "refresh",
            Narrowing::TokenExchange => "token_exchange",
            Narrowing::Off => "off",
        }
    }
}

/// The value of `name` in a table of the document.
fn member<'a, 'i>(
    table: &'a toml::de::DeTable<'i>,
    name: &str,
) -> Option<&'a toml::Spanned<toml::de::DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(_, v)| v)
}

/// A POSIX portable user or group name (plus the common '.'), nothing chown(1) could misread.
pub(super) fn is_portable_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Cx<'_> {
    /// `[provider] narrowing`.
    pub(super) fn narrowing(&self, p: &RawProvider) -> Result<Narrowing, ConfigError> {
        match &p.narrowing {
            None => Ok(Narrowing::Refresh),
            Some(v) => self.choice(
                "provider.narrowing",
                v,
                &[
                    ("refresh", Narrowing::Refresh),
                    ("token_exchange", Narrowing::TokenExchange),
                    ("off", Narrowing::Off),
                ],
            ),
        }
    }

    /// The socket keys of `[agent]`; `others` are the files the socket must not replace.
    pub(super) fn socket(&self, others: &[(&str, &Path)]) -> Result<SocketConfig, ConfigError> {
        let raw = self.raw_socket()?;
        let mut out = SocketConfig::default();
        if let Some(v) = &raw.socket {
            out.path = if v.get_ref().is_empty() {
                None
            } else {
                Some(self.path("agent.socket", v, true)?)
            };
            if let Some(path) = &out.path {
                if let Some((key, _)) = others.iter().find(|(_, p)| p == path) {
                    return Err(self.at(
                        "agent.socket",
                        v,
                        format!("{:?} is also {key}", path.display().to_string()),
                    ));
                }
            }
        }
        if let Some(v) = &raw.socket_mode {
            let s = v.get_ref();
            let mode =
                (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                    .then(|| u32::from_str_radix(s, 8).ok())
                    .flatten()
                    .filter(|m| *m <= 0o777);
            out.mode = match mode {
                // The owner (the agent) needs read and write.
                Some(m) if m & 0o600 == 0o600 => m,
                _ => {
                    return Err(self.at(
                        "agent.socket_mode",
                        v,
                        format!("{s:?}: octal permission bits from 0600 to 0777, like \"0660\""),
                    ));
                }
            };
        }
        if let Some(v) = &raw.socket_group {
            if !is_portable_name(v.get_ref()) {
                return Err(self.name_error("agent.socket_group", v));
            }
            out.group = Some(v.get_ref().clone());
        }
        if let Some(v) = &raw.allow_root {
            out.allow_root = *v.get_ref();
        }
        {
            for (i, entry) in raw.clients.iter().enumerate() {
                let rule = self.client_rule(i, entry)?;
                let names_root = matches!(&rule.user, Some(Principal::Id(0)))
                    || matches!(&rule.user, Some(Principal::Name(n)) if n == "root");
                if !out.allow_root && names_root {
                    return Err(self.at(
                        &format!("{}.user", rule.name),
                        entry,
                        "root is refused everything by allow_root = false",
                    ));
                }
                out.clients.push(rule);
            }
        }
        Ok(out)
    }

    /// The token service's keys of `[agent]` as written, read from the document itself; any
    /// key of `[agent]` that neither this nor serde's `RawAgent` knows is refused here.
    fn raw_socket(&self) -> Result<RawSocket, ConfigError> {
        use toml::de::{DeTable, DeValue};
        let mut raw = RawSocket::default();
        // serde read this text already: it parses.
        let Ok(doc) = DeTable::parse(self.text) else {
            return Ok(raw);
        };
        let Some(DeValue::Table(agent)) = member(doc.get_ref(), "agent").map(|v| v.get_ref())
        else {
            return Ok(raw);
        };
        for (k, v) in agent.iter() {
            let key = format!("agent.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "socket" => raw.socket = Some(self.de_text(&key, v)?),
                "socket_mode" => raw.socket_mode = Some(self.de_text(&key, v)?),
                "socket_group" => raw.socket_group = Some(self.de_text(&key, v)?),
                "allow_root" => raw.allow_root = Some(self.de_bool(&key, v)?),
                "client" => raw.clients = self.raw_clients(v)?,
                other if AGENT_KEYS.contains(&other) => {}
                _ => {
                    return Err(self.invalid(
                        &key,
                        Some(k.span()),
                        "unknown key (expected `token_file`, `token_file_group`, `hook`, \
                         `refresh_margin_secs`, `paired_screen_secs`, `release_display`, \
                         `socket`, `socket_mode`, `socket_group`, `allow_root`, `client`)",
                    ));
                }
            }
        }
        Ok(raw)
    }

    /// A user or group name that is not a portable one.
    fn name_error(&self, key: &str, v: &Str) -> ConfigError {
        self.at(
            key,
            v,
            format!(
                "{:?}: a name is 1..=32 ASCII letters, digits, '_', '-' or '.', not starting \
                 with '-' (or the numeric id)",
                v.get_ref()
            ),
        )
    }

    fn de_text(
        &self,
        key: &str,
        v: &toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<Str, ConfigError> {
        match v.get_ref() {
            toml::de::DeValue::String(s) => Ok(Spanned::new(v.span(), s.to_string())),
            _ => Err(self.invalid(key, Some(v.span()), "expected a string")),
        }
    }

    fn de_bool(
        &self,
        key: &str,
        v: &toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<Spanned<bool>, ConfigError> {
        match v.get_ref() {
            toml::de::DeValue::Boolean(b) => Ok(Spanned::new(v.span(), *b)),
            _ => Err(self.invalid(key, Some(v.span()), "expected a boolean")),
        }
    }

    /// The `[[agent.client]]` tables.
    fn raw_clients(
        &self,
        list: &toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<Vec<Spanned<RawClient>>, ConfigError> {
        use toml::de::DeValue;
        let DeValue::Array(items) = list.get_ref() else {
            return Err(self.invalid(
                "agent.client",
                Some(list.span()),
                "expected [[agent.client]] tables",
            ));
        };
        if items.len() > MAX_CLIENT_RULES {
            return Err(self.invalid(
                "agent.client",
                Some(list.span()),
                format!("more than {MAX_CLIENT_RULES} entries"),
            ));
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let entry = format!("agent.client[{i}]");
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self.invalid(&entry, Some(item.span()), "expected a table"));
            };
            let mut raw = RawClient::default();
            for (k, v) in table.iter() {
                let key = format!("{entry}.{}", k.get_ref());
                match k.get_ref().as_ref() {
                    "user" => raw.user = Some(self.de_text(&key, v)?),
                    "group" => raw.group = Some(self.de_text(&key, v)?),
                    "exe" => raw.exe = Some(self.de_text(&key, v)?),
                    name @ ("accounts" | "scopes") => {
                        let DeValue::Array(list) = v.get_ref() else {
                            return Err(self.invalid(&key, Some(v.span()), "expected an array"));
                        };
                        let list = list
                            .iter()
                            .enumerate()
                            .map(|(i, x)| self.de_text(&format!("{key}[{i}]"), x))
                            .collect::<Result<Vec<_>, _>>()?;
                        let list = Some(Spanned::new(v.span(), list));
                        if name == "scopes" {
                            raw.scopes = list;
                        } else {
                            raw.accounts = list;
                        }
                    }
                    "allow_wider_token" => raw.allow_wider_token = Some(self.de_bool(&key, v)?),
                    _ => {
                        return Err(self.invalid(
                            &key,
                            Some(k.span()),
                            "unknown key (expected `user`, `group`, `exe`, `accounts`, `scopes`, \
                             `allow_wider_token`)",
                        ));
                    }
                }
            }
            out.push(Spanned::new(item.span(), raw));
        }
        Ok(out)
    }

    fn client_rule(
        &self,
        number: usize,
        entry: &Spanned<RawClient>,
    ) -> Result<ClientRule, ConfigError> {
        let name = format!("agent.client[{number}]");
        let raw = entry.get_ref();
        // A name, or digits: an id (a user name cannot be all digits, useradd(8)).
        let principal = |key: &str, v: &Option<Str>| -> Result<_, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            let key = format!("{name}.{key}");
            let s = v.get_ref();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return s
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n != u32::MAX)
                    .map(|n| Some(Principal::Id(n)))
                    .ok_or_else(|| self.at(&key, v, format!("{s} is not a valid id")));
            }
            if is_portable_name(s) {
                return Ok(Some(Principal::Name(s.clone())));
            }
            Err(self.name_error(&key, v))
        };
        let user = principal("user", &raw.user)?;
        let group = principal("group", &raw.group)?;
        let exe = match &raw.exe {
            None => None,
            Some(v) => Some(self.path(&format!("{name}.exe"), v, true)?),
        };
        if user.is_none() && group.is_none() && exe.is_none() {
            return Err(self.at(
                &name,
                entry,
                "say who this entry is for: user, group or exe (or several: all must match)",
            ));
        }
        let accounts = match &raw.accounts {
            None => Allowed::Only(vec![DEFAULT_ACCOUNT.to_string()]),
            Some(list) => self.allowed(&format!("{name}.accounts"), list, |s| {
                valid_account_name(s).then_some(()).ok_or_else(|| {
                    "an account name is 1..=64 ASCII letters, digits, '_' or '-'".into()
                })
            })?,
        };
        let scopes = match &raw.scopes {
            None => {
                return Err(self.at(
                    &name,
                    entry,
                    "missing scopes: the scopes this client may have (`scopes = [\"*\"]` for all \
                     of the account's)",
                ));
            }
            Some(list) => self.allowed(&format!("{name}.scopes"), list, check_scope)?,
        };
        Ok(ClientRule {
            name,
            user,
            group,
            exe,
            accounts,
            scopes,
            allow_wider_token: raw.allow_wider_token.as_ref().is_some_and(|b| *b.get_ref()),
        })
    }

    /// A list of names, or `["*"]` for all.
    fn allowed(
        &self,
        key: &str,
        list: &Spanned<Vec<Str>>,
        check: fn(&str) -> Result<(), String>,
    ) -> Result<Allowed, ConfigError> {
        let items = list.get_ref();
        if items.len() > MAX_RULE_ITEMS {
            return Err(self.at(key, list, format!("more than {MAX_RULE_ITEMS} items")));
        }
        if items.iter().any(|s| s.get_ref() == "*") {
            if items.len() > 1 {
                return Err(self.at(key, list, "\"*\" means all; list nothing else with it"));
            }
            return Ok(Allowed::All);
        }
        if items.is_empty() {
            return Err(self.at(key, list, "empty: this entry would grant nothing"));
        }
        let mut set = Vec::new();
        for (i, s) in items.iter().enumerate() {
            check(s.get_ref()).map_err(|why| {
                self.at(
                    &format!("{key}[{i}]"),
                    s,
                    format!("{:?}: {why}", s.get_ref()),
                )
            })?;
            set.push(s.get_ref().clone());
        }
        set.sort_unstable();
        set.dedup();
        Ok(Allowed::Only(set))
    }
}
