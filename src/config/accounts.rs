//! `[accounts.NAME]`: several accounts in one file (a family's profiles on one TV, or a video
//! and a music service side by side). Each account is resolved into a whole [`Config`] of its
//! own — its provider, client, scopes, store and token file — so every command and the agent
//! run their single-account code on it unchanged. The top-level `[provider]` and `[storage]`
//! are the account `default`; a file without `[accounts]` is exactly that one account.
//!
//! An account without its own `[accounts.NAME.provider]` uses the top-level one (the same
//! service, another person); its store and token file default to the top-level ones with
//! `.NAME` before the extension (`tokens.json` → `tokens.kids.json`, `access_token` →
//! `access_token.kids`). No two accounts may share a store or a token file.

use super::*;

/// Most accounts one file may name (the top-level one included).
pub const MAX_ACCOUNTS: usize = 16;
const MAX_LABEL_LEN: usize = 64;

/// Which of the file's accounts a [`Config`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// [`DEFAULT_ACCOUNT`] (the top-level `[provider]` and `[storage]`) or an
    /// `[accounts.NAME]` name.
    pub name: String,
    /// What the pairing screen calls it ("Adding: Kids"); `None`: no profile line.
    pub label: Option<String>,
    /// Every account the file names, [`DEFAULT_ACCOUNT`] first, then by name.
    pub all: Vec<String>,
}

impl AccountConfig {
    /// A file with one account (no `[accounts]`).
    pub fn single() -> AccountConfig {
        AccountConfig {
            name: DEFAULT_ACCOUNT.to_string(),
            label: None,
            all: vec![DEFAULT_ACCOUNT.to_string()],
        }
    }

    /// What the pairing screen says is being added: the label, else the name of an account
    /// other than the default one.
    pub fn profile(&self) -> Option<String> {
        self.label
            .clone()
            .or_else(|| (self.name != DEFAULT_ACCOUNT).then(|| self.name.clone()))
    }

    /// The file names more than one account.
    pub fn several(&self) -> bool {
        self.all.len() > 1
    }
}

/// 1..=64 ASCII letters, digits, `_` or `-` (it appears in file names and in URLs).
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// `[accounts.NAME]`. No `Debug`: it may hold a provider's client secret.
pub(super) struct RawAccount {
    /// `label` (string, default: none): the name the pairing screen shows ("Adding: Kids").
    /// The only key `[accounts.default]` may set.
    label: Option<Str>,
    /// `token_file` (absolute path, default: `[agent] token_file` with `.NAME` appended):
    /// where the agent publishes this account's access token.
    token_file: Option<Str>,
    /// `[accounts.NAME.provider]` (default: the top-level `[provider]`): the same keys.
    provider: Option<Spanned<RawProvider>>,
    /// `[accounts.NAME.storage]` (default: `[storage] path` with `.NAME` before the
    /// extension): the same keys.
    storage: Option<Spanned<RawStorage>>,
}

table_reader!(RawAccount {
    label,
    token_file,
    provider,
    storage
});

/// `[accounts]`: each `[accounts.NAME]`, sorted by name. Read into a sorted `Vec` rather than
/// a `BTreeMap` (whose insert, remove and rebalancing cost about 3 KB on the device for this
/// one map); TOML refuses a name written twice before this sees it.
#[derive(Default)]
pub(super) struct RawAccounts(Vec<(String, Spanned<RawAccount>)>);

impl RawAccounts {
    fn get(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl<'de> serde::Deserialize<'de> for RawAccounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Accounts;
        impl<'de> serde::de::Visitor<'de> for Accounts {
            type Value = RawAccounts;
            // What serde's `BTreeMap` says.
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawAccounts, A::Error> {
                let mut all = RawAccounts::default();
                while let Some((name, account)) = map.next_entry::<String, Spanned<RawAccount>>()? {
                    match all.get(&name) {
                        Ok(i) => {
                            if let Some(slot) = all.0.get_mut(i) {
                                *slot = (name, account);
                            }
                        }
                        Err(i) => all.0.insert(i, (name, account)),
                    }
                }
                Ok(all)
            }
        }
        d.deserialize_map(Accounts)
    }
}

/// `path` with `.name` before its extension (`tokens.json` → `tokens.kids.json`), or appended
/// when it has none.
fn derived(path: &Path, name: &str) -> PathBuf {
    match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => path.with_file_name(format!(
            "{}.{name}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{}.{name}", path.display())),
    }
}

/// What one account changes in the file's resolved settings.
pub(super) struct Chosen {
    pub(super) account: AccountConfig,
    /// `Some`: the account's own `[provider]`, to parse instead of the top-level one.
    pub(super) provider: Option<Spanned<RawProvider>>,
    /// The account's store and token file (`None`: the top-level ones).
    pub(super) paths: Option<(PathBuf, PathBuf)>,
}

/// `e`, a mistake in the `[provider]` that account `name` brings, with its key named where it is
/// written (`accounts.NAME.provider.KEY`, not the top-level `provider.KEY`).
pub(super) fn in_account(e: ConfigError, name: &str) -> ConfigError {
    e.map_invalid(|key, _| {
        if key == "provider" || key.starts_with("provider.") || key.starts_with("provider[") {
            *key = format!("accounts.{name}.{key}");
        }
    })
}

impl Cx<'_> {
    /// Checks every `[accounts.NAME]` (names, labels, distinct stores and token files) and
    /// picks `chosen` (`None`: [`DEFAULT_ACCOUNT`]). `storage` and `token_file` are the
    /// top-level ones, resolved.
    pub(super) fn accounts(
        &self,
        raw: Option<RawAccounts>,
        chosen: Option<&str>,
        storage: &Path,
        token_file: &Path,
    ) -> Result<Chosen, ConfigError> {
        let mut raw = raw.unwrap_or_default();
        let mut all = vec![DEFAULT_ACCOUNT.to_string()];
        let mut default_label = None;
        let mut stores = vec![(storage.to_path_buf(), DEFAULT_ACCOUNT.to_string())];
        let mut files = vec![(token_file.to_path_buf(), DEFAULT_ACCOUNT.to_string())];
        if raw.0.len() + 1 > MAX_ACCOUNTS + usize::from(raw.get(DEFAULT_ACCOUNT).is_ok()) {
            return Err(self.invalid(
                "accounts",
                None,
                format!("more than {MAX_ACCOUNTS} accounts"),
            ));
        }
        for (name, account) in &raw.0 {
            let key = format!("accounts.{name}");
            let a = account.get_ref();
            if !valid_account_name(name) {
                return Err(self.at(
                    &key,
                    account,
                    "an account name is 1..=64 ASCII letters, digits, '_' or '-'",
                ));
            }
            let label = match &a.label {
                None => None,
                Some(l) if l.get_ref().trim().is_empty() || l.get_ref().len() > MAX_LABEL_LEN => {
                    return Err(self.at(
                        &format!("{key}.label"),
                        l,
                        format!("1..={MAX_LABEL_LEN} bytes of text"),
                    ));
                }
                Some(l) if l.get_ref().chars().any(char::is_control) => {
                    return Err(self.at(&format!("{key}.label"), l, "contains control characters"));
                }
                Some(l) => Some(l.get_ref().clone()),
            };
            if name == DEFAULT_ACCOUNT {
                if a.provider.is_some() || a.storage.is_some() || a.token_file.is_some() {
                    return Err(self.at(
                        &key,
                        account,
                        "the default account is the top-level [provider] and [storage]; \
                         [accounts.default] may only set its label",
                    ));
                }
                default_label = label;
                continue;
            }
            all.push(name.clone());
            let (store, file) = self.account_paths(name, a, storage, token_file)?;
            for (list, path, what) in [
                (&mut stores, store, "storage.path"),
                (&mut files, file, "token_file"),
            ] {
                if let Some((_, other)) = list.iter().find(|(p, _)| *p == path) {
                    return Err(self.at(
                        &key,
                        account,
                        format!(
                            "{what} {:?} is also account `{other}`'s: each account needs its own",
                            path.display().to_string()
                        ),
                    ));
                }
                list.push((path, name.clone()));
            }
        }
        // An account's store must not be another's token file either.
        if let Some((p, name)) = stores
            .iter()
            .find(|(p, _)| files.iter().any(|(f, _)| f == p))
        {
            return Err(self.invalid(
                &format!("accounts.{name}"),
                None,
                format!(
                    "{:?} is both a store and a token file",
                    p.display().to_string()
                ),
            ));
        }
        let name = chosen.unwrap_or(DEFAULT_ACCOUNT);
        if name == DEFAULT_ACCOUNT {
            return Ok(Chosen {
                account: AccountConfig {
                    name: name.to_string(),
                    label: default_label,
                    all,
                },
                provider: None,
                paths: None,
            });
        }
        let Some((_, account)) = raw.get(name).ok().map(|i| raw.0.swap_remove(i)) else {
            return Err(self.invalid(
                "accounts",
                None,
                format!(
                    "no account `{name}` in this file (accounts: {})",
                    all.join(", ")
                ),
            ));
        };
        let a = account.into_inner();
        let (store, file) = self.account_paths(name, &a, storage, token_file)?;
        Ok(Chosen {
            account: AccountConfig {
                name: name.to_string(),
                label: a.label.map(Spanned::into_inner),
                all,
            },
            provider: a.provider,
            paths: Some((store, file)),
        })
    }

    fn account_paths(
        &self,
        name: &str,
        a: &RawAccount,
        storage: &Path,
        token_file: &Path,
    ) -> Result<(PathBuf, PathBuf), ConfigError> {
        if let Some(st) = &a.storage {
            let r = st.get_ref();
            if r.seal.is_some()
                || r.require_sealed.is_some()
                || r.tpm_device.is_some()
                || r.trusted_key_options.is_some()
            {
                return Err(self.at(
                    &format!("accounts.{name}.storage"),
                    st,
                    "only `path` is set per account; sealing is the top-level [storage]'s, for \
                     every account",
                ));
            }
        }
        let store = match a.storage.as_ref().and_then(|s| s.get_ref().path.as_ref()) {
            Some(p) => self.path(&format!("accounts.{name}.storage.path"), p, true)?,
            None => derived(storage, name),
        };
        let file = match &a.token_file {
            Some(p) => self.path(&format!("accounts.{name}.token_file"), p, true)?,
            None => derived(token_file, name),
        };
        Ok((store, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_paths_put_the_name_before_the_extension() {
        let d = |p: &str| derived(Path::new(p), "kids").display().to_string();
        assert_eq!(
            d("/var/lib/devauth/tokens.json"),
            "/var/lib/devauth/tokens.kids.json"
        );
        assert_eq!(
            d("/run/devauth/access_token"),
            "/run/devauth/access_token.kids"
        );
    }

    const FILE: &str = "[provider]\nclient_id = \"tv\"\nissuer = \"https://id.example\"\n\
        [storage]\npath = \"/data/tokens.json\"\n\
        [accounts.default]\nlabel = \"Parents\"\n\
        [accounts.kids]\nlabel = \"Kids\"\n\
        [accounts.music]\ntoken_file = \"/run/music/token\"\n\
        [accounts.music.provider]\nclient_id = \"music-app\"\nissuer = \"https://music.example\"\n\
        scopes = [\"play\"]\n[accounts.music.storage]\npath = \"/data/music.json\"\n";

    fn parse(text: &str, account: Option<&str>) -> Result<Config, ConfigError> {
        Config::parse_account(text, Path::new("/etc/devauth.toml"), None, account)
    }

    #[test]
    fn each_account_is_a_whole_config() {
        let default = parse(FILE, None).unwrap();
        assert_eq!(default.account.all, ["default", "kids", "music"]);
        assert_eq!(default.account.label.as_deref(), Some("Parents"));
        assert_eq!(default.storage.path, Path::new("/data/tokens.json"));
        assert_eq!(default.agent.token_file, Path::new(DEFAULT_TOKEN_FILE));
        let kids = parse(FILE, Some("kids")).unwrap();
        assert_eq!(kids.account.name, "kids");
        assert_eq!(kids.account.label.as_deref(), Some("Kids"));
        assert_eq!(kids.provider, default.provider, "the top-level provider");
        assert_eq!(kids.storage.path, Path::new("/data/tokens.kids.json"));
        assert_eq!(
            kids.agent.token_file,
            Path::new("/run/devauth/access_token.kids")
        );
        let music = parse(FILE, Some("music")).unwrap();
        assert_eq!(music.provider.client_id, "music-app");
        assert_eq!(music.provider.scopes, ["play"]);
        assert_eq!(music.storage.path, Path::new("/data/music.json"));
        assert_eq!(music.agent.token_file, Path::new("/run/music/token"));
        // A file without [accounts] is the one account it always was.
        let single = parse(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n",
            None,
        )
        .unwrap();
        assert_eq!(single.account, AccountConfig::single());
        assert!(!single.account.several());
    }

    #[test]
    fn account_mistakes_are_named() {
        let err = |text: &str, account| parse(text, account).unwrap_err().to_string();
        let e = err(FILE, Some("guests"));
        assert!(
            e.contains("no account `guests`") && e.contains("default, kids, music"),
            "{e}"
        );
        let e = err(
            &format!("{FILE}[accounts.zz.storage]\npath = \"/data/music.json\"\n"),
            None,
        );
        assert!(
            e.contains("accounts.zz") && e.contains("account `music`'s"),
            "{e}"
        );
        let e = err(
            &format!("{FILE}[accounts.default.storage]\npath = \"/x.json\"\n"),
            None,
        );
        assert!(e.contains("may only set its label"), "{e}");
        let e = err(&format!("{FILE}[accounts.\"a b\"]\n"), None);
        assert!(e.contains("accounts.a b") && e.contains("1..=64"), "{e}");
        let e = err(&format!("{FILE}[accounts.x]\nlabel = \"\"\n"), None);
        assert!(e.contains("accounts.x.label"), "{e}");
        let e = err(
            &format!("{FILE}[accounts.kids.storage]\nseal = \"none\"\n"),
            None,
        );
        assert!(
            e.contains("accounts.kids.storage") && e.contains("only `path`"),
            "{e}"
        );
        let e = err(&format!("{FILE}[accounts.x]\nscopes = [\"a\"]\n"), None);
        assert!(e.contains("scopes"), "{e}");
        // A mistake in an account's own [provider] is named there, on its line.
        let e = err(
            &FILE.replace("scopes = [\"play\"]", "scopes = [\"play\", \"\"]"),
            Some("music"),
        );
        let line = 1 + FILE.lines().position(|l| l.contains("\"play\"")).unwrap();
        assert!(
            e.contains(&format!(":{line}: accounts.music.provider.scopes[1]: ")),
            "{e}"
        );
    }

    #[test]
    fn the_example_parses_into_three_accounts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/accounts.toml");
        let all = Config::load_accounts(&path).unwrap();
        let names: Vec<&str> = all.iter().map(|c| c.account.name.as_str()).collect();
        assert_eq!(names, ["default", "kids", "music"]);
        assert_eq!(
            all[1].storage.path,
            Path::new("/var/lib/devauth/tokens.kids.json")
        );
        assert_eq!(all[2].provider.client_id, "tv-music");
        assert_eq!(all[2].account.profile().as_deref(), Some("Music"));
    }

    #[test]
    fn names() {
        assert!(valid_account_name("kids"));
        assert!(valid_account_name("Music_2-x"));
        for bad in ["", "a b", "a/b", "a.b", "ü", &"x".repeat(65)] {
            assert!(!valid_account_name(bad), "{bad:?}");
        }
    }
}
