//! The file as written: serde `Raw*` structs that mirror the TOML one-to-one and remember
//! where each value was (their doc comments are the key reference), the [`Cx`] reader that
//! turns spans into `config <path>:<line>: <key>: <message>` errors, and bounded file reads.

use super::*;

pub(super) type Str = Spanned<String>;

pub(super) struct RawFile {
    /// `[provider]`: required.
    pub(super) provider: Option<Spanned<RawProvider>>,
    /// `[storage]`: optional.
    pub(super) storage: Option<Spanned<RawStorage>>,
    /// `[display]`: optional.
    pub(super) display: Option<Spanned<RawDisplay>>,
    /// `[network]`: optional.
    pub(super) network: Option<Spanned<RawNetwork>>,
    /// `[agent]`: optional.
    pub(super) agent: Option<Spanned<RawAgent>>,
    /// `[accounts.NAME]`: optional (accounts.rs).
    pub(super) accounts: Option<RawAccounts>,
}

table_reader!(RawFile {
    provider,
    storage,
    display,
    network,
    agent,
    accounts
});

/// No `Debug`: it holds the client secret as a plain string.
/// Read by `table_reader!` (no derive: see table_reader.rs).
pub(super) struct RawProvider {
    /// `preset` (string, default `"generic"`): `"google"`, `"microsoft"`, `"github"` or
    /// `"generic"`. Selects the provider's endpoints, default scopes and rules.
    pub(super) preset: Option<Str>,
    /// `issuer` (URL, no default; generic preset only): the OIDC issuer. Endpoints are then
    /// discovered at run time from `<issuer>/.well-known/openid-configuration`. Mutually
    /// exclusive with `device_authorization_endpoint`/`token_endpoint`.
    pub(super) issuer: Option<Str>,
    /// `device_authorization_endpoint` (URL, default: the preset's): RFC 8628 §3.1 endpoint.
    /// Overrides the preset's. The generic preset needs it (with `token_endpoint`) unless
    /// `issuer` is set.
    pub(super) device_authorization_endpoint: Option<Str>,
    /// `token_endpoint` (URL, default: the preset's): overrides the preset's.
    pub(super) token_endpoint: Option<Str>,
    /// `revocation_endpoint` (URL, default: the preset's, or discovery's): RFC 7009 endpoint
    /// used by unpair.
    pub(super) revocation_endpoint: Option<Str>,
    /// `userinfo_endpoint` (URL, default: the preset's, or discovery's): names the account.
    pub(super) userinfo_endpoint: Option<Str>,
    /// `client_id` (string, required): the OAuth client ID; printable ASCII.
    pub(super) client_id: Option<Str>,
    /// `client_secret` (string, no default): the client secret, if the provider issued one
    /// (Google requires it). Prefer `client_secret_file`. Not with `client_secret_file`.
    pub(super) client_secret: Option<Str>,
    /// `client_secret_file` (path, no default): file holding the client secret (trailing
    /// newline ignored); relative paths are relative to the config file's directory.
    pub(super) client_secret_file: Option<Str>,
    /// `client_auth` (string, default `"post"`): how the client authenticates, `"post"` (the
    /// secret in form fields), `"basic"` (HTTP Basic; needs a secret) or `"private_key_jwt"`
    /// (RFC 7523 §2.2: an assertion signed with `client_key_file`; no secret).
    pub(super) client_auth: Option<Str>,
    /// `client_key_file` (path; private_key_jwt, required there): the device's private key,
    /// PEM PKCS#8 (EC P-256 → ES256) or RSA (RS256), relative to the config file. May be absent
    /// until `devauth keygen` creates it. `"tpm:PATH"`: an ES256 key held by the TPM
    /// (`[storage] tpm_device`), PATH keeping its blob; `"tpm"`: the blob beside the token store
    /// (`client-key.tpm`).
    pub(super) client_key_file: Option<Str>,
    /// `client_key_id` (string; private_key_jwt): the assertions' `kid`. Default: the key's
    /// RFC 7638 thumbprint (the `kid` `devauth keygen` prints).
    pub(super) client_key_id: Option<Str>,
    /// `client_assertion_audience` (`"token_endpoint"`, `"endpoint"`, `"issuer"` or a URL,
    /// default `"token_endpoint"`; private_key_jwt): the assertions' `aud`. `"endpoint"`: the
    /// URL of each request (Okta); `"issuer"`: `provider.issuer` (Auth0).
    pub(super) client_assertion_audience: Option<Str>,
    /// `dpop` (`"off"`, `"on"` or `"auto"`, default `"off"`): bind the tokens to a key kept on
    /// the device (RFC 9449). `"auto"`: when discovery lists ES256 in
    /// `dpop_signing_alg_values_supported`.
    pub(super) dpop: Option<Str>,
    /// `scopes` (array of strings, default: the preset's — google `openid email profile`,
    /// microsoft `openid profile offline_access`, github none, generic `openid`): scopes to
    /// request, one per string. Microsoft always gets `offline_access` added.
    pub(super) scopes: Option<Spanned<Vec<Str>>>,
    /// `allow_http_loopback` (bool, default `false`): allow `http://` URLs to 127.0.0.1, [::1]
    /// and localhost (test server and demo only).
    pub(super) allow_http_loopback: Option<Spanned<bool>>,
    /// `ca_file` (path, no default): PEM CA certificates trusted in addition to the bundled
    /// Mozilla roots; must exist; relative to the config file's directory.
    pub(super) ca_file: Option<Str>,
    /// `extra_params` (table of string = string, default empty): extra form parameters sent
    /// with the device authorization request, e.g. Auth0's `audience`. The names client_id,
    /// client_secret, scope, grant_type and device_code are refused.
    pub(super) extra_params: Option<Spanned<BTreeMap<Str, Str>>>,
    /// `tenant` (string, default `"common"`; microsoft only): `common`, `organizations`,
    /// `consumers`, a tenant GUID or a domain.
    pub(super) tenant: Option<Str>,
    /// `authority` (URL, default `"https://login.microsoftonline.com"`; microsoft only): the
    /// cloud, e.g. `https://login.microsoftonline.us`.
    pub(super) authority: Option<Str>,
    /// `grant` (string, default `"device_code"`): `"device_code"` (RFC 8628 pairing, then
    /// refresh tokens), `"authorization_code"` (browser sign-in with PKCE, RFC 6749 §4.1 +
    /// RFC 7636, loopback redirect RFC 8252) or `"jwt-bearer"` (RFC 7523 service account: no
    /// user, no screen; preset google or generic). `"implicit"` is refused (RFC 9700). With `"jwt-bearer"`, `client_id` is optional. Which keys go with which grant:
    /// `grant_keys.rs` (the person grants share their keys; the service account's are apart).
    pub(super) grant: Option<Str>,
    /// `client_json_file` (path, no default): Google's downloaded OAuth client file
    /// (`client_secret_….json`, an `installed` or `web` section); supplies `client_id` and
    /// `client_secret`; its `token_uri` / `auth_uri` stand in for `token_endpoint` /
    /// `authorization_endpoint` unless written by hand, and with `issuer` are only checked
    /// against discovery (same server). Not with `client_id`, `client_secret` or
    /// `client_secret_file`; relative to the config.
    pub(super) client_json_file: Option<Str>,
    /// `authorization_endpoint` (URL, default: the preset's; authorization_code): where the
    /// browser signs in. The generic preset needs it (or `issuer`, or `client_json_file`) with
    /// grant = "authorization_code"; with "device_code" it waits for `pair --grant`.
    pub(super) authorization_endpoint: Option<Str>,
    /// `browser_command` (program, default `xdg-open` when on PATH; authorization_code): run
    /// with the authorization URL as its only argument.
    pub(super) browser_command: Option<Str>,
    /// `redirect_host` (`"127.0.0.1"` or `"::1"`, default `"127.0.0.1"`; authorization_code):
    /// the loopback address the redirect listener binds.
    pub(super) redirect_host: Option<Str>,
    /// `redirect_port` (integer 0..=65535, default 0 = any free port; authorization_code).
    pub(super) redirect_port: Option<Spanned<i64>>,
    /// `login_timeout_secs` (integer 1..=3600, default 300; authorization_code): how long
    /// the listener waits for the browser's redirect.
    pub(super) login_timeout_secs: Option<Spanned<i64>>,
    /// `success_text`, `failure_text` (string, at most 500 bytes; authorization_code): the
    /// page the browser shows after the redirect.
    pub(super) success_text: Option<Str>,
    pub(super) failure_text: Option<Str>,
    /// `service_account_file` (path, no default; jwt-bearer): a Google-style service-account
    /// JSON key (`private_key`, `client_email`, `private_key_id`, `token_uri`); relative to the
    /// config file. Not with `private_key_file`.
    pub(super) service_account_file: Option<Str>,
    /// `private_key_file` (path, no default; jwt-bearer): an RSA private key in PEM (PKCS#8 or
    /// PKCS#1); needs `jwt_issuer` and a token endpoint. Not with `service_account_file`.
    pub(super) private_key_file: Option<Str>,
    /// `jwt_issuer` (string; jwt-bearer): the assertion's `iss`. Default: the service account's
    /// `client_email`. Required with `private_key_file`.
    pub(super) jwt_issuer: Option<Str>,
    /// `jwt_subject` (string; jwt-bearer): the assertion's `sub`. Google: the user to
    /// impersonate (domain-wide delegation), else left out. With `private_key_file` the
    /// default is `jwt_issuer`.
    pub(super) jwt_subject: Option<Str>,
    /// `jwt_audience` (string; jwt-bearer): the assertion's `aud`. Default: the token endpoint.
    pub(super) jwt_audience: Option<Str>,
    /// `narrowing` (string, default `"refresh"`): how the token service gets a token with fewer
    /// scopes: `"refresh"` (RFC 6749 §6), `"token_exchange"` (RFC 8693) or `"off"`.
    pub(super) narrowing: Option<Str>,
}

table_reader!(RawProvider {
    preset,
    issuer,
    device_authorization_endpoint,
    token_endpoint,
    revocation_endpoint,
    userinfo_endpoint,
    client_id,
    client_secret,
    client_secret_file,
    client_auth,
    client_key_file,
    client_key_id,
    client_assertion_audience,
    dpop,
    scopes,
    allow_http_loopback,
    ca_file,
    extra_params,
    tenant,
    authority,
    grant,
    client_json_file,
    authorization_endpoint,
    browser_command,
    redirect_host,
    redirect_port,
    login_timeout_secs,
    success_text,
    failure_text,
    service_account_file,
    private_key_file,
    jwt_issuer,
    jwt_subject,
    jwt_audience,
    narrowing,
});

/// Read by `table_reader!` (no derive: see table_reader.rs).
pub(super) struct RawStorage {
    /// `path` (absolute path, default `/var/lib/devauth/tokens.json`): the token store, on a
    /// writable, persistent partition.
    pub(super) path: Option<Str>,
    /// `seal` (string, default `"auto"`): what seals the store's data key, `"tpm2"` (the TPM
    /// through `/dev/tpmrm0`), `"kernel"` (Linux trusted keys), `"none"` (the plain file) or
    /// `"auto"` (tpm2, else kernel, else none). Applies when a key is made: at pairing, and when
    /// a plain file is next written; a sealed file is read whatever this says.
    pub(super) seal: Option<Str>,
    /// `require_sealed` (bool, default false): refuse to store tokens that nothing seals.
    pub(super) require_sealed: Option<Spanned<bool>>,
    /// `tpm_device` (absolute path, default `/dev/tpmrm0`): the TPM. A Unix socket there is
    /// spoken to with the same commands (swtpm's `--server type=unixio`, for tests).
    pub(super) tpm_device: Option<Str>,
    /// `trusted_key_options` (string, default none): added to the kernel's `new 32` and
    /// `load <blob>` for the `kernel` sealer, e.g. `"keyhandle=0x81000001"` (a TPM 2.0 trust
    /// source needs a persistent storage key).
    pub(super) trusted_key_options: Option<Str>,
}

table_reader!(RawStorage {
    path,
    seal,
    require_sealed,
    tpm_device,
    trusted_key_options,
});

#[derive(Default)]
pub(super) struct RawDisplay {
    /// `backend` (string, default `"terminal"`): `"terminal"`, `"png"`, `"framebuffer"`,
    /// `"drm"`, `"spi"` or `"none"`.
    pub(super) backend: Option<Str>,
    /// `board` (name, no default): a board profile, `boards/NAME.toml` next to the config,
    /// else in /usr/share/devauth/boards, else the built-in one; keys here override it.
    pub(super) board: Option<Str>,
    /// `png` (path; png backend): the PNG file to keep up to date.
    pub(super) png: Option<Str>,
    /// `device` (path; framebuffer: default `/dev/fb0`, the fbdev device or a plain file; drm:
    /// default `/dev/dri/card0`, the DRM card).
    pub(super) device: Option<Str>,
    /// `width`, `height` (integer 8..=8192): panel size; framebuffer: overrides the device;
    /// drm: the output mode to use (default: the monitor's preferred one).
    pub(super) width: Option<Spanned<i64>>,
    pub(super) height: Option<Spanned<i64>>,
    /// `format` (string; framebuffer): pixel format override, e.g. `"xrgb8888"`.
    pub(super) format: Option<Str>,
    /// `stride` (integer; framebuffer): bytes per row override.
    pub(super) stride: Option<Spanned<i64>>,
    /// `rotation` (0, 90, 180 or 270, default 0): clockwise quarter turns.
    pub(super) rotation: Option<Spanned<i64>>,
    /// `title_safe_percent` (integer 0..=20, default 0): margin kept free on every side.
    pub(super) title_safe_percent: Option<Spanned<i64>>,
    /// `wait_secs` (integer 0..=120, default 5; framebuffer, spi): how long to wait for the
    /// display device to appear (the driver may probe after devauth starts).
    pub(super) wait_secs: Option<Spanned<i64>>,
    /// `tty` (`"auto"`, `"none"` or a path like `"/dev/tty1"`, default `"auto"`; framebuffer,
    /// drm):
    /// the VT put in graphics mode while devauth draws, so the kernel console stays off the
    /// screen; `"auto"` is the VT on screen when the display opens.
    pub(super) tty: Option<Str>,
    /// `controller` (spi): `"st7789"`, `"ili9341"` or `"ssd1306"`.
    pub(super) controller: Option<Str>,
    /// `spi_device` (path, default `/dev/spidev0.0`).
    pub(super) spi_device: Option<Str>,
    /// `spi_speed_hz` (integer 100000..=100000000, default 16000000).
    pub(super) spi_speed_hz: Option<Spanned<i64>>,
    /// `spi_mode` (integer 0..=3, default 0).
    pub(super) spi_mode: Option<Spanned<i64>>,
    /// `gpio_chip` (path, default `/dev/gpiochip0`).
    pub(super) gpio_chip: Option<Str>,
    /// `dc_pin`, `reset_pin`, `backlight_pin` (GPIO line offsets on `gpio_chip`).
    pub(super) dc_pin: Option<Spanned<i64>>,
    pub(super) reset_pin: Option<Spanned<i64>>,
    pub(super) backlight_pin: Option<Spanned<i64>>,
    /// `backlight_active_low` (bool, default false).
    pub(super) backlight_active_low: Option<Spanned<bool>>,
    /// `x_offset`, `y_offset` (integer 0..=320, default 0): where the panel starts in the
    /// controller's memory.
    pub(super) x_offset: Option<Spanned<i64>>,
    pub(super) y_offset: Option<Spanned<i64>>,
    /// `color_order` (`"rgb"` or `"bgr"`, default `"rgb"`).
    pub(super) color_order: Option<Str>,
    /// `invert_colors` (bool, default false): most IPS ST7789 panels need true.
    pub(super) invert_colors: Option<Spanned<bool>>,
    /// `theme` (`"dark"`, `"light"` or `"high-contrast"`, default `"dark"`): the pixel
    /// screens' colours.
    pub(super) theme: Option<Str>,
    /// `text_scale` (number 1.0..=3.0, default 1.0): larger words for viewers with low vision
    /// (the code and the QR keep their own sizes).
    pub(super) text_scale: Option<Spanned<f64>>,
    /// `device_name` (string, at most 60 characters, no default): this device's name as its
    /// owner knows it, named in the warning against code phishing ("Only enter this code if
    /// you are setting up Living room TV yourself").
    pub(super) device_name: Option<Str>,
    /// `language` (`"auto"` or a BCP 47 tag like `"de"`, `"pt-BR"`, `"zh-Hant"`, default
    /// `"auto"`): the screens' language; `"auto"` takes the first of `LANGUAGE`, `LC_ALL`,
    /// `LC_MESSAGES`, `LANG` that names a language this device has (docs/locales.md).
    pub(super) language: Option<Str>,
    /// `locale_dir` (path, default `/usr/share/devauth/locales`): where installed locale
    /// packs (`<tag>.pack`) are read from.
    pub(super) locale_dir: Option<Str>,
}

table_reader!(RawDisplay {
    backend,
    board,
    png,
    device,
    width,
    height,
    format,
    stride,
    rotation,
    title_safe_percent,
    wait_secs,
    tty,
    controller,
    spi_device,
    spi_speed_hz,
    spi_mode,
    gpio_chip,
    dc_pin,
    reset_pin,
    backlight_pin,
    backlight_active_low,
    x_offset,
    y_offset,
    color_order,
    invert_colors,
    theme,
    text_scale,
    device_name,
    language,
    locale_dir
});

/// A board profile file: a description and a `[display]` table.
pub(super) struct RawBoard {
    /// `description` (string): what the board is, for people.
    #[allow(dead_code)]
    pub(super) description: Option<Str>,
    pub(super) display: Option<Spanned<RawDisplay>>,
}

table_reader!(RawBoard {
    description,
    display
});

pub(super) struct RawNetwork {
    /// `connect_timeout_secs` (integer 1..=120, default 10): TCP + TLS connect timeout.
    pub(super) connect_timeout_secs: Option<Spanned<i64>>,
    /// `timeout_secs` (integer 1..=300, default 30): overall timeout of one request; not less
    /// than `connect_timeout_secs`.
    pub(super) timeout_secs: Option<Spanned<i64>>,
    /// `max_body_bytes` (integer 1024..=1048576, default 65536): largest response body read.
    pub(super) max_body_bytes: Option<Spanned<i64>>,
    /// `pair_timeout_secs` (integer 0..=86400, default 120): `devauth pair` gives up (exit 7)
    /// when the provider could not be reached for this long; 0: never. `pair --timeout`
    /// overrides it; `devauth run` never gives up.
    pub(super) pair_timeout_secs: Option<Spanned<i64>>,
    /// `proxy` (string, default: the environment's `HTTPS_PROXY`/`ALL_PROXY`): `"none"` to
    /// ignore the environment, or the HTTP proxy's URL (`http://` or `https://`, with an
    /// optional `user:password@`, a secret).
    pub(super) proxy: Option<Str>,
    /// `no_proxy` (array of strings, default none): with a `proxy` URL, the hosts reached
    /// directly (domains, addresses, networks a.b.c.d/n), as `NO_PROXY` does.
    pub(super) no_proxy: Option<Spanned<Vec<Str>>>,
}

table_reader!(RawNetwork {
    connect_timeout_secs,
    timeout_secs,
    max_body_bytes,
    pair_timeout_secs,
    proxy,
    no_proxy
});

/// `[agent]`. Not `deny_unknown_fields`: the token service's keys (`socket`, `socket_mode`,
/// `socket_group`, `allow_root`, `[[agent.client]]`) are read from the document by
/// `socket_section.rs` (serde code per key costs kilobytes on the device), which also refuses
/// unknown keys, naming the ones it knows: a key added here goes into its `AGENT_KEYS` too.
/// Read by `table_reader!` (no derive: see table_reader.rs).
pub(super) struct RawAgent {
    /// `token_file` (absolute path, default `/run/devauth/access_token`): where the current
    /// access token is published; must differ from `[storage] path`.
    pub(super) token_file: Option<Str>,
    /// `token_file_group` (group name, no default): group allowed to read `token_file`.
    pub(super) token_file_group: Option<Str>,
    /// `hook` (command string, no default): run when the token changes or pairing ends.
    pub(super) hook: Option<Str>,
    /// `refresh_margin_secs` (integer 0..=86400, default 300): `devauth token` refreshes this
    /// long before expiry (capped at half the token's lifetime).
    pub(super) refresh_margin_secs: Option<Spanned<i64>>,
    /// `paired_screen_secs` (integer 0..=3600, default 10): how long the "paired" screen stays.
    pub(super) paired_screen_secs: Option<Spanned<i64>>,
    /// `release_display` (string, default `"blank"`): after the "paired" screen, `"blank"` the
    /// display or `"keep"` the last picture, handing it back to the device's own UI.
    pub(super) release_display: Option<Str>,
}

table_reader!(RawAgent, other keys ignored {
    token_file,
    token_file_group,
    hook,
    refresh_margin_secs,
    paired_screen_secs,
    release_display
});

/// The token service's keys of `[agent]`, as written (read by `socket_section.rs`).
#[derive(Default)]
pub(super) struct RawSocket {
    /// `socket` (absolute path, default `/run/devauth/devauth.sock`; `""`: none): the token
    /// service's Unix socket (HTTP/1.1). systemd socket activation overrides the path.
    pub(super) socket: Option<Str>,
    /// `socket_mode` (octal string, default `"0660"`): the socket file's permission bits.
    pub(super) socket_mode: Option<Str>,
    /// `socket_group` (group name, no default): group that owns the socket file.
    pub(super) socket_group: Option<Str>,
    /// `allow_root` (bool, default `true`): uid 0 may have every account and scope (`true`) or
    /// nothing (`false`) from the socket.
    pub(super) allow_root: Option<Spanned<bool>>,
    /// `[[agent.client]]` (array of tables, default none): who may have which tokens.
    pub(super) clients: Vec<Spanned<RawClient>>,
}

/// One `[[agent.client]]` entry of the token service's policy, as written.
#[derive(Default)]
pub(super) struct RawClient {
    /// `user` (a name, or a uid in digits): the caller's uid must be this user's.
    pub(super) user: Option<Str>,
    /// `group` (a name, or a gid in digits): the caller's group or a supplementary one.
    pub(super) group: Option<Str>,
    /// `exe` (absolute path): the caller's executable as the kernel reports it.
    pub(super) exe: Option<Str>,
    /// `accounts` (array of names, default `["default"]`; `["*"]`: all).
    pub(super) accounts: Option<Spanned<Vec<Str>>>,
    /// `scopes` (array of scopes, required; `["*"]`: all the account holds).
    pub(super) scopes: Option<Spanned<Vec<Str>>>,
    /// `allow_wider_token` (bool, default `false`): when the provider ignores a narrower scope,
    /// hand out the wider token rather than refuse.
    pub(super) allow_wider_token: Option<Spanned<bool>>,
}

/// The text being parsed and its path: turns spans into lines and builds errors.
pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) source: &'a Path,
}

/// The key a toml error span points at.
pub(super) struct Found {
    pub(super) path: String,
    pub(super) depth: usize,
    pub(super) is_table: bool,
    pub(super) len: usize,
}

/// Finds the innermost key whose name or value contains `target.start`; among equals, the
/// deepest. Spans of arrays and inline tables contain their elements, so the smallest wins.
pub(super) fn locate(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    depth: usize,
    target: &Range<usize>,
    best: &mut Option<Found>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let is_table = matches!(value.get_ref(), toml::de::DeValue::Table(_));
        for span in [key.span(), value.span()] {
            consider(&path, depth, is_table, &span, target, best);
        }
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => locate(inner, &path, depth + 1, target, best),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let item_is_table = matches!(item.get_ref(), toml::de::DeValue::Table(_));
                    consider(
                        &item_path,
                        depth + 1,
                        item_is_table,
                        &item.span(),
                        target,
                        best,
                    );
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        locate(inner, &item_path, depth + 1, target, best);
                    }
                }
            }
            _ => {}
        }
    }
}

pub(super) fn consider(
    path: &str,
    depth: usize,
    is_table: bool,
    span: &Range<usize>,
    target: &Range<usize>,
    best: &mut Option<Found>,
) {
    let hit = span.contains(&target.start) || (span.is_empty() && span.start == target.start);
    if !hit {
        return;
    }
    let len = span.len();
    let better = match best {
        None => true,
        Some(b) => len < b.len || (len == b.len && depth > b.depth),
    };
    if better {
        *best = Some(Found {
            path: path.to_string(),
            depth,
            is_table,
            len,
        });
    }
}

/// Best effort, for syntax errors (when there is no parsed document to ask): the dotted key
/// assigned on 1-based `line`, prefixed by the last `[table]` header above it. `None` when the
/// line is not a plain `key = ...` (e.g. inside a multi-line string or array).
pub(super) fn key_on_line(text: &str, line: usize) -> Option<String> {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if i + 1 == line {
            let (key, _) = l.split_once('=')?;
            let key: String = key.trim().chars().filter(|c| *c != ' ').collect();
            if key.is_empty() || key.len() > 64 || !key.chars().all(is_key_char) {
                return None;
            }
            return Some(if table.is_empty() {
                key
            } else {
                format!("{table}.{key}")
            });
        }
        if let Some(header) = l.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or_default().trim();
            if name.chars().all(is_key_char) {
                table = name.to_string();
            }
        }
    }
    None
}

/// 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &[u8], offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    1 + before.iter().filter(|b| **b == b'\n').count()
}

pub(super) enum Capped {
    Fits(Vec<u8>),
    TooLarge(u64),
}

/// Reads a whole file, but never more than `cap` bytes.
pub(super) fn read_capped(path: &Path, cap: u64) -> io::Result<Capped> {
    let file = std::fs::File::open(path)?;
    let meta_len = file.metadata()?.len();
    if meta_len > cap {
        return Ok(Capped::TooLarge(meta_len));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > cap {
        return Ok(Capped::TooLarge(read.max(meta_len)));
    }
    Ok(Capped::Fits(bytes))
}

impl Cx<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        line_of(self.text.as_bytes(), offset)
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.to_path_buf(),
            key: key.to_string(),
            line: span.map(|s| self.line(s.start)),
            message: message.into(),
        }
    }

    pub(super) fn at<T>(
        &self,
        key: &str,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.invalid(key, Some(value.span()), message)
    }

    /// A path relative to the config file's directory.
    pub(super) fn resolve(&self, path: &Path) -> PathBuf {
        match self.source.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    // --- value checks -------------------------------------------------------------------------

    pub(super) fn url(
        &self,
        key: &str,
        value: &Str,
        allow_http_loopback: bool,
    ) -> Result<String, ConfigError> {
        let url = value.get_ref();
        check_url(url, allow_http_loopback)
            .map_err(|why| self.at(key, value, format!("{:?}: {why}", redact_userinfo(url))))?;
        Ok(url.clone())
    }

    pub(super) fn int(
        &self,
        key: &str,
        value: &Spanned<i64>,
        min: i64,
        max: i64,
    ) -> Result<u64, ConfigError> {
        let n = *value.get_ref();
        if n < min || n > max {
            return Err(self.at(key, value, format!("{n} is out of range ({min}..={max})")));
        }
        u64::try_from(n).map_err(|_| self.at(key, value, format!("{n} is out of range")))
    }

    pub(super) fn path(
        &self,
        key: &str,
        value: &Str,
        absolute: bool,
    ) -> Result<PathBuf, ConfigError> {
        let s = value.get_ref();
        let why = if s.is_empty() {
            Some("is empty")
        } else if s.len() > MAX_PATH_LEN {
            Some("is too long")
        } else if s.chars().any(char::is_control) {
            Some("contains control characters")
        } else if absolute && !s.starts_with('/') {
            Some("must be an absolute path")
        } else if s.ends_with('/') {
            Some("names a directory; a file is expected")
        } else {
            None
        };
        match why {
            Some(why) => Err(self.at(key, value, format!("{s:?}: {why}"))),
            None => Ok(PathBuf::from(s)),
        }
    }

    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        value: &Str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let s = value.get_ref();
        options
            .iter()
            .find(|(name, _)| name == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                self.at(
                    key,
                    value,
                    format!("{s:?} is not one of {}", names.join(", ")),
                )
            })
    }

    // --- sections -----------------------------------------------------------------------------

    /// Turns a toml/serde error into a `ConfigError` that names the key and the line. toml only
    /// reports a byte span, so the key is found by walking the document's spanned tree.
    pub(super) fn toml_error(&self, e: toml::de::Error) -> ConfigError {
        let message = e.message().trim().replace('\n', "; ");
        let Some(span) = e.span() else {
            return self.invalid("(file)", None, message);
        };
        let line = self.line(span.start);
        let doc = match toml::de::DeTable::parse(self.text) {
            Ok(doc) => doc,
            // The text itself is not TOML.
            Err(_) => {
                let message = match key_on_line(self.text, line) {
                    Some(key) => format!("{key}: {message}"),
                    None => message,
                };
                return ConfigError::Syntax {
                    path: self.source.to_path_buf(),
                    line,
                    message,
                };
            }
        };
        let mut best = None;
        locate(doc.get_ref(), "", 0, &span, &mut best);
        let Some(found) = best else {
            return self.invalid("(file)", Some(span), message);
        };
        // `[[storage]]`: toml's complaint about the array element is confusing; say it plainly.
        let section = found.path.split(['.', '[']).next().unwrap_or_default();
        if let Some(v) = doc.get_ref().get(section) {
            if !message.starts_with("unknown field")
                && matches!(v.get_ref(), toml::de::DeValue::Array(_))
            {
                return self.invalid(
                    section,
                    Some(span),
                    format!("expected one [{section}] table, not an array ([[{section}]])"),
                );
            }
        }
        let message = if let Some(rest) = message.strip_prefix("unknown field `") {
            // "unknown field `x`, expected one of `a`, `b`" -> "unknown key (expected ...)".
            let expected = rest
                .split_once("`, ")
                .map(|(_, expected)| format!(" ({expected})"))
                .unwrap_or_default();
            let kind = if found.depth == 0 && found.is_table {
                "section"
            } else {
                "key"
            };
            format!("unknown {kind}{expected}")
        } else if found.path == "provider.client_secret" {
            // serde quotes the offending value; never echo anything typed as a secret.
            "invalid value (expected a string; the value is not shown)".to_string()
        } else {
            message
                .replace("expected i64", "expected an integer")
                .replace("expected a sequence", "expected an array")
                .replace("expected a map", "expected a table")
        };
        self.invalid(&found.path, Some(span), message)
    }
}
