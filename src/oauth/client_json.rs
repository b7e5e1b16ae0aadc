//! Google's downloaded OAuth client file (`client_secret_….json`): an `installed` (desktop)
//! or `web` section with `client_id`, `client_secret`, `auth_uri`, `token_uri` and
//! `redirect_uris`, read instead of writing those keys by hand.
//!
//! Pure: text in, values out. `config/` reads the file (once, at load) and decides what the
//! values override; errors name the file and the field that was wrong.

use crate::secret::Secret;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// Google's files are under 1 KiB; anything this big is not one.
pub const MAX_CLIENT_JSON_BYTES: usize = 64 * 1024;
const MAX_FIELD_LEN: usize = 2048;

/// Which kind of OAuth client the file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// "Desktop app": loopback redirects.
    Installed,
    /// "Web application": registered redirect URIs (the web-server two-step).
    Web,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Installed => "installed",
            ClientKind::Web => "web",
        }
    }
}

/// The file's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientJson {
    pub kind: ClientKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_uri: String,
    pub token_uri: String,
    pub redirect_uris: Vec<String>,
}

/// What was wrong with the file. Names the file; never quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientJsonError {
    pub file: PathBuf,
    pub detail: String,
}

impl fmt::Display for ClientJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client_json_file {}: {}",
            self.file.display(),
            self.detail
        )
    }
}

impl std::error::Error for ClientJsonError {}

impl ClientJson {
    /// Parses the file's text; `file` is only for messages.
    pub fn parse(text: &[u8], file: &Path) -> Result<ClientJson, ClientJsonError> {
        let fail = |detail: String| ClientJsonError {
            file: file.to_path_buf(),
            detail,
        };
        if text.len() > MAX_CLIENT_JSON_BYTES {
            return Err(fail(format!(
                "{} bytes, more than the {MAX_CLIENT_JSON_BYTES} an OAuth client file has",
                text.len()
            )));
        }
        let root: Value = serde_json::from_slice(text).map_err(|e| {
            fail(format!(
                "not JSON ({e}); download it again from Google Cloud console > Credentials"
            ))
        })?;
        let (kind, section) = match (root.get("installed"), root.get("web")) {
            (Some(s), None) => (ClientKind::Installed, s),
            (None, Some(s)) => (ClientKind::Web, s),
            (Some(_), Some(_)) => {
                return Err(fail(
                    "has both an `installed` and a `web` section; keep one".to_string(),
                ));
            }
            (None, None) => {
                return Err(fail(
                    "has neither an `installed` nor a `web` section (is it a service-account \
                     key? that goes in [jwt] key_file)"
                        .to_string(),
                ));
            }
        };
        let kind_name = kind.name();
        let text_field = |name: &str| -> Result<String, ClientJsonError> {
            match section.get(name) {
                None | Some(Value::Null) => Err(fail(format!("`{kind_name}.{name}` is missing"))),
                Some(Value::String(s)) if s.trim().is_empty() => {
                    Err(fail(format!("`{kind_name}.{name}` is empty")))
                }
                Some(Value::String(s))
                    if s.len() > MAX_FIELD_LEN || s.chars().any(char::is_control) =>
                {
                    Err(fail(format!(
                        "`{kind_name}.{name}` is longer than {MAX_FIELD_LEN} bytes or has \
                         control characters"
                    )))
                }
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(fail(format!("`{kind_name}.{name}` is not a string"))),
            }
        };
        let client_id = text_field("client_id")?;
        let client_secret = Secret::new(text_field("client_secret")?);
        let auth_uri = text_field("auth_uri")?;
        let token_uri = text_field("token_uri")?;
        let redirect_uris = match section.get("redirect_uris") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len().min(16));
                for item in items.iter().take(64) {
                    match item {
                        Value::String(s) if s.len() <= MAX_FIELD_LEN => out.push(s.clone()),
                        _ => {
                            return Err(fail(format!(
                                "`{kind_name}.redirect_uris` holds something other than \
                                 addresses"
                            )));
                        }
                    }
                }
                out
            }
            Some(_) => {
                return Err(fail(format!("`{kind_name}.redirect_uris` is not a list")));
            }
        };
        Ok(ClientJson {
            kind,
            client_id,
            client_secret,
            auth_uri,
            token_uri,
            redirect_uris,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = r#"{"installed":{"client_id":"123-abc.apps.googleusercontent.com",
        "project_id":"p","auth_uri":"https://accounts.google.com/o/oauth2/auth",
        "token_uri":"https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url":"https://www.googleapis.com/oauth2/v1/certs",
        "client_secret":"GOCSPX-s3cr3t","redirect_uris":["http://localhost"]}}"#;

    fn parse(text: &str) -> Result<ClientJson, ClientJsonError> {
        ClientJson::parse(
            text.as_bytes(),
            Path::new("/etc/devauth/client_secret_x.json"),
        )
    }

    #[test]
    fn installed_file() {
        let c = parse(INSTALLED).unwrap();
        assert_eq!(c.kind, ClientKind::Installed);
        assert_eq!(c.client_id, "123-abc.apps.googleusercontent.com");
        assert_eq!(c.client_secret.expose(), "GOCSPX-s3cr3t");
        assert_eq!(c.auth_uri, "https://accounts.google.com/o/oauth2/auth");
        assert_eq!(c.token_uri, "https://oauth2.googleapis.com/token");
        assert_eq!(c.redirect_uris, vec!["http://localhost".to_string()]);
    }

    #[test]
    fn web_file() {
        let c = parse(
            r#"{"web":{"client_id":"w","client_secret":"s","auth_uri":"https://a/auth",
            "token_uri":"https://a/token","redirect_uris":["https://dev.example/cb"],
            "javascript_origins":["https://dev.example"]}}"#,
        )
        .unwrap();
        assert_eq!(c.kind, ClientKind::Web);
        assert_eq!(c.redirect_uris, vec!["https://dev.example/cb".to_string()]);
    }

    #[test]
    fn broken_files_name_the_file_and_the_field() {
        let missing = parse(&INSTALLED.replace("\"token_uri\"", "\"token_url\"")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "client_json_file /etc/devauth/client_secret_x.json: `installed.token_uri` is missing"
        );
        let empty = parse(&INSTALLED.replace("GOCSPX-s3cr3t", " ")).unwrap_err();
        assert!(
            empty
                .to_string()
                .contains("`installed.client_secret` is empty"),
            "{empty}"
        );
        let not_json = parse("{\"installed\":").unwrap_err();
        assert!(not_json.to_string().contains("not JSON"), "{not_json}");
        let service_account = parse(r#"{"type":"service_account","private_key":"k"}"#).unwrap_err();
        assert!(
            service_account.to_string().contains("[jwt] key_file"),
            "{service_account}"
        );
        let both = parse(r#"{"installed":{},"web":{}}"#).unwrap_err();
        assert!(both.to_string().contains("both"), "{both}");
        let number =
            parse(&INSTALLED.replace("\"123-abc.apps.googleusercontent.com\"", "123")).unwrap_err();
        assert!(
            number
                .to_string()
                .contains("`installed.client_id` is not a string")
        );
        let uris = parse(&INSTALLED.replace("[\"http://localhost\"]", "[1]")).unwrap_err();
        assert!(uris.to_string().contains("redirect_uris"), "{uris}");
        let huge = parse(&" ".repeat(MAX_CLIENT_JSON_BYTES + 1)).unwrap_err();
        assert!(huge.to_string().contains("bytes"), "{huge}");
    }

    #[test]
    fn errors_never_quote_the_secret() {
        let e = parse(&INSTALLED.replace("\"auth_uri\"", "\"x\"")).unwrap_err();
        assert!(!e.to_string().contains("GOCSPX"), "{e}");
        assert!(!format!("{:?}", parse(INSTALLED).unwrap()).contains("GOCSPX"));
    }
}
