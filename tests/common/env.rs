//! One test's world: a loopback test server, a temp dir with a config pointing at it and the
//! token store; commands run in it; the secrets check when it is dropped.

#![allow(dead_code)]

use super::*;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

// ---------------------------------------------------------------------------------------------
// The test environment: server + temp dir + config + store.
// ---------------------------------------------------------------------------------------------

/// Which kind of config to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `preset = "generic"` with explicit endpoints.
    Generic,
    /// `preset = "google"` with the endpoints pointed at the server and the client secret.
    Google,
    /// `preset = "microsoft"`, `authority` = the server, `tenant = "contoso"`.
    Microsoft,
    /// `preset = "github"` with GitHub's paths on the server.
    GitHub,
    /// `preset = "generic"` with only `issuer` = the server (OIDC discovery).
    Discovery,
}

/// What to start: the server's behavior and the config's extras.
pub struct Setup {
    pub(super) provider: Provider,
    pub(super) behavior: Behavior,
    pub(super) client_id: String,
    pub(super) provider_toml: String,
    pub(super) toml: String,
    pub(super) tls: Option<TlsIdentity>,
    pub(super) server: Option<TestServer>,
}

impl Setup {
    /// The provider's config against a server with that provider's `Behavior` preset.
    pub fn new(provider: Provider) -> Setup {
        let behavior = match provider {
            Provider::Generic | Provider::Discovery => Behavior::generic(),
            Provider::Google => Behavior::google(),
            Provider::Microsoft => Behavior::microsoft(),
            Provider::GitHub => Behavior::github(),
        };
        Setup {
            provider,
            behavior,
            client_id: TEST_CLIENT_ID.to_string(),
            provider_toml: String::new(),
            toml: String::new(),
            tls: None,
            server: None,
        }
    }

    /// Serve HTTPS with this identity (the config's URLs become `https://127.0.0.1:PORT`).
    pub fn tls(mut self, identity: TlsIdentity) -> Setup {
        self.tls = Some(identity);
        self
    }

    /// Use this server, already started (e.g. `TestServer::start_tls_named`), instead of a
    /// loopback one; `behavior` and `tls` no longer apply.
    pub fn server(mut self, server: TestServer) -> Setup {
        self.server = Some(server);
        self
    }

    /// Changes the server's behavior.
    pub fn behavior(mut self, f: impl FnOnce(&mut Behavior)) -> Setup {
        f(&mut self.behavior);
        self
    }

    /// The server approves each code at its (n+1)-th poll (n `authorization_pending` first).
    pub fn approve_after_polls(self, n: u32) -> Setup {
        self.behavior(|b| b.auto_approve_after_polls = Some(n))
    }

    /// The `client_id` the config names (the server keeps `TEST_CLIENT_ID`).
    pub fn client_id(mut self, id: &str) -> Setup {
        self.client_id = id.to_string();
        self
    }

    /// Extra lines in `[provider]`.
    pub fn provider_toml(mut self, lines: &str) -> Setup {
        self.provider_toml.push_str(lines);
        self.provider_toml.push('\n');
        self
    }

    /// Extra TOML after `[storage]` (whole sections: `[network]`, `[agent]`...).
    pub fn toml(mut self, text: &str) -> Setup {
        self.toml.push_str(text);
        self.toml.push('\n');
        self
    }

    #[track_caller]
    pub fn start(self) -> Env {
        let server = match (self.server, self.tls) {
            (Some(server), _) => Ok(server),
            (None, None) => TestServer::start(self.behavior),
            (None, Some(identity)) => TestServer::start_tls(self.behavior, identity),
        }
        .expect("start the test server");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("devauth.toml");
        // The store's directory does not exist yet: devauth creates it (0700).
        let store = dir.path().join("state").join("tokens.json");
        let env = Env {
            base: server.base_url(),
            server: Some(server),
            dir,
            config,
            store,
            provider: self.provider,
            client_secret: matches!(self.provider, Provider::Google)
                .then(|| TEST_CLIENT_SECRET.to_string()),
            runs: Mutex::new(Vec::new()),
            secrets: Mutex::new(BTreeSet::new()),
            key_files: Mutex::new(Vec::new()),
        };
        let text = env.config_text(&self.client_id, &self.provider_toml, &self.toml);
        env.write_config(&text);
        env
    }
}

/// One test's world. Dropping it checks that no output leaked a secret, then stops the server
/// and removes the temp dir.
pub struct Env {
    pub(super) server: Option<TestServer>,
    pub(super) dir: tempfile::TempDir,
    /// The config file (also in `DEVAUTH_CONFIG` of every command).
    pub config: PathBuf,
    /// The token store (`[storage] path`).
    pub store: PathBuf,
    pub provider: Provider,
    pub(super) base: String,
    pub(super) client_secret: Option<String>,
    pub(super) runs: Mutex<Vec<Output>>,
    pub(super) secrets: Mutex<BTreeSet<String>>,
    /// Private key files besides the store's DPoP key whose contents must never be shown.
    pub(super) key_files: Mutex<Vec<PathBuf>>,
}

impl Env {
    /// A generic-preset environment with a default server.
    pub fn generic() -> Env {
        Setup::new(Provider::Generic).start()
    }

    pub fn server(&self) -> &TestServer {
        self.server
            .as_ref()
            .expect("the server was stopped by this test")
    }

    /// `http://127.0.0.1:PORT` (still known after the server stopped).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The agent's socket in this test's dir (never the system's `/run/devauth`): put into
    /// the `[agent]` section of `toml`, or a new one.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/devauth.sock")
    }

    /// The config text for this provider.
    pub fn config_text(&self, client_id: &str, provider_toml: &str, toml: &str) -> String {
        // The socket in the temp dir: into the test's own [agent] section, or the one below.
        let socket = format!("socket = \"{}\"\n", self.socket().display());
        let toml = match toml.split_once("[agent]\n") {
            Some((before, after)) if !toml.contains("socket =") => {
                format!("{before}[agent]\n{socket}{after}")
            }
            _ => toml.to_string(),
        };
        let b = &self.base;
        let provider = match self.provider {
            Provider::Generic => format!(
                "preset = \"generic\"\n\
                 device_authorization_endpoint = \"{b}/device/code\"\n\
                 token_endpoint = \"{b}/token\"\n\
                 revocation_endpoint = \"{b}/revoke\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Google => format!(
                "preset = \"google\"\n\
                 client_secret = \"{TEST_CLIENT_SECRET}\"\n\
                 device_authorization_endpoint = \"{b}/device/code\"\n\
                 token_endpoint = \"{b}/token\"\n\
                 revocation_endpoint = \"{b}/revoke\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Microsoft => format!(
                "preset = \"microsoft\"\n\
                 authority = \"{b}\"\n\
                 tenant = \"contoso\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::GitHub => format!(
                "preset = \"github\"\n\
                 device_authorization_endpoint = \"{b}/login/device/code\"\n\
                 token_endpoint = \"{b}/login/oauth/access_token\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Discovery => format!("preset = \"generic\"\nissuer = \"{b}\"\n"),
        };
        // The token file in the temp dir too (`unpair` removes it), unless the test writes its
        // own [agent] section.
        let agent = if toml.contains("[agent]") {
            String::new()
        } else {
            // Before [storage]: tests append bare keys to the last table of the file.
            format!(
                "[agent]\ntoken_file = \"{}\"\n{socket}",
                self.dir().join("run").join("access_token").display()
            )
        };
        format!(
            "# devauth end-to-end test config\n\
             [provider]\n\
             client_id = \"{client_id}\"\n\
             allow_http_loopback = true\n\
             {provider}{provider_toml}\n\
             {agent}\
             [storage]\n\
             path = \"{}\"\n\
             tpm_device = \"{}\"\n\
             {toml}",
            self.store.display(),
            no_tpm(self.dir()).display()
        )
    }

    /// Replaces the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The config file's text.
    pub fn config_file(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read config")
    }

    /// `devauth ARGS` with this environment's config.
    pub fn cmd(&self, args: &[&str]) -> TestCommand<'_> {
        TestCommand {
            env: Some(self),
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
            stdout: None,
        }
    }

    /// Runs `devauth ARGS` to the end.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }

    /// `pair --json`, which must succeed (exit 0, last event `paired`).
    #[track_caller]
    pub fn pair(&self) -> Output {
        let out = self.run(&["pair", "--json"]);
        out.code(exit::OK);
        assert_eq!(
            out.event_names().last().map(String::as_str),
            Some("paired"),
            "{}",
            out.show()
        );
        out
    }

    /// `token`, which must succeed; returns the printed token.
    #[track_caller]
    pub fn token(&self) -> String {
        let out = self.run(&["token"]);
        out.code(exit::OK);
        let t = out.line().to_string();
        assert!(
            !t.is_empty() && !t.contains(char::is_whitespace),
            "{}",
            out.show()
        );
        t
    }

    /// The store file parsed, `None` when absent.
    pub fn store_json(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.store).ok()?;
        Some(serde_json::from_str(&text).expect("the store is JSON"))
    }

    /// A string field of the store (`access_token`, `refresh_token`...).
    #[track_caller]
    pub fn stored(&self, field: &str) -> Option<String> {
        self.store_json()
            .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_string))
    }

    /// Writes raw bytes at the store path (creating its directory 0700).
    pub fn write_store(&self, bytes: &[u8]) {
        let dir = self.store.parent().expect("store dir");
        std::fs::create_dir_all(dir).expect("create store dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::write(&self.store, bytes).expect("write store");
    }

    /// Permission bits of a path.
    pub fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o7777
    }

    /// The device-code polls the server received, in order.
    pub fn polls(&self) -> Vec<Recorded> {
        self.server()
            .requests_to(Endpoint::Token)
            .into_iter()
            .filter(|r| r.grant_type() == Some(DEVICE_GRANT))
            .collect()
    }

    /// The authorization-code exchanges the server received, in order.
    pub fn code_exchanges(&self) -> Vec<Recorded> {
        self.server()
            .requests_to(Endpoint::Token)
            .into_iter()
            .filter(|r| r.grant_type() == Some("authorization_code"))
            .collect()
    }

    /// The refresh requests the server received, in order.
    pub fn refreshes(&self) -> Vec<Recorded> {
        self.server()
            .requests_to(Endpoint::Token)
            .into_iter()
            .filter(|r| r.grant_type() == Some("refresh_token"))
            .collect()
    }

    /// Stops the server now (the port refuses connections afterwards). Secrets it knew are
    /// kept for the leak check.
    pub fn stop_server(&mut self) {
        self.collect_secrets();
        self.server = None;
    }

    /// Adds a run's output to the leak check (every run through this `Env` already is).
    pub fn record(&self, output: &Output) {
        self.collect_secrets();
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(output.clone());
    }

    /// Everything secret that exists now: the server's live tokens, every secret the client
    /// sent (device codes, refresh tokens, tokens revoked, bearer tokens, client secrets) and
    /// what the store holds.
    fn collect_secrets(&self) {
        let mut found: Vec<String> = Vec::new();
        if let Some(server) = &self.server {
            found.extend(server.live_access_tokens());
            found.extend(server.live_refresh_tokens());
            for r in server.requests() {
                for (k, v) in &r.form {
                    if matches!(
                        k.as_str(),
                        "device_code"
                            | "refresh_token"
                            | "token"
                            | "client_secret"
                            | "client_assertion"
                    ) {
                        found.push(v.clone());
                    }
                }
                if let Some((_, secret)) = &r.basic_auth {
                    found.push(secret.clone());
                }
                if let Some(auth) = r.header("authorization") {
                    for scheme in ["Bearer ", "DPoP "] {
                        if let Some(t) = auth.strip_prefix(scheme) {
                            found.push(t.trim().to_string());
                        }
                    }
                }
                // DPoP proofs: short-lived, but a proof in a log is a replay waiting to happen.
                if let Some(proof) = r.header("dpop") {
                    found.push(proof.to_string());
                }
            }
        }
        // Private keys: the DPoP key beside the store and any key file a test registered. Every
        // line of their base64 carries key bits.
        let mut key_files = vec![self.dpop_key_path()];
        key_files.extend(
            self.key_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        for path in key_files {
            // A key file in JSON holds a TPM blob or a sealed key: nothing readable is secret.
            let pem = std::fs::read_to_string(&path)
                .ok()
                .filter(|text| serde_json::from_str::<Value>(text).is_err());
            if let Some(pem) = pem {
                let body: Vec<&str> = pem
                    .lines()
                    .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
                    .collect();
                found.push(body.concat());
                found.extend(body.iter().map(|l| l.to_string()));
            }
        }
        if let Ok(text) = std::fs::read_to_string(&self.store) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                for k in ["access_token", "refresh_token", "id_token"] {
                    if let Some(s) = v.get(k).and_then(Value::as_str) {
                        found.push(s.to_string());
                    }
                }
            }
        }
        found.push(TEST_CLIENT_SECRET.to_string());
        found.extend(self.client_secret.clone());
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        // Very short values could match by accident; real secrets here are long and random.
        secrets.extend(found.into_iter().filter(|s| s.len() >= 12));
    }

    /// Fails when any recorded output contains a secret (`token`'s stdout excepted).
    #[track_caller]
    pub fn check_no_secret_leaked(&self) {
        self.collect_secrets();
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        for run in runs.iter() {
            let is_token = run.args.iter().any(|a| a == "token");
            for secret in secrets.iter() {
                let shown = |s: &str| s.replace(secret.as_str(), "<SECRET>");
                assert!(
                    !run.stderr.contains(secret.as_str()),
                    "a secret leaked into stderr of devauth {:?}:\n{}",
                    run.args,
                    shown(&run.stderr)
                );
                if !is_token {
                    assert!(
                        !run.stdout.contains(secret.as_str()),
                        "a secret leaked into stdout of devauth {:?}:\n{}",
                        run.args,
                        shown(&run.stdout)
                    );
                }
            }
        }
    }

    /// `<store>.dpop-key`: where devauth keeps the DPoP proof key.
    pub fn dpop_key_path(&self) -> PathBuf {
        let mut name = self.store.as_os_str().to_os_string();
        name.push(".dpop-key");
        PathBuf::from(name)
    }

    /// Adds a private key file to the leak check (its content must never be shown).
    pub fn secret_key_file(&self, path: &Path) {
        self.key_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_path_buf());
    }

    /// The number of commands run so far.
    pub fn runs(&self) -> usize {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.check_no_secret_leaked();
        }
    }
}
