//! A tiny HTTP/1.1 client on std::net for the test server's tests: one request per
//! connection, reads to EOF, understands Content-Length and chunked answers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use devauth_testserver::{DEVICE_GRANT, TEST_CLIENT_ID, TestServer, form_encode_pairs};
use serde_json::Value;

pub const SCOPE: &str = "openid profile offline_access";

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The `error` field of a JSON body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
    }
}

/// `127.0.0.1:PORT` of a base URL.
pub fn host(base: &str) -> &str {
    base.trim_start_matches("http://")
}

pub fn connect(base: &str) -> TcpStream {
    let s = TcpStream::connect(host(base)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends raw bytes and reads the answer until EOF.
pub fn raw(base: &str, request: &[u8]) -> Vec<u8> {
    let mut s = connect(base);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

pub fn parse(bytes: &[u8]) -> Resp {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let rest = &bytes[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status: u16 = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)
    } else if let Some(n) = find("content-length") {
        let n: usize = n.parse().unwrap();
        assert_eq!(rest.len(), n, "body length differs from Content-Length");
        rest.to_vec()
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&data[..nl]).unwrap(), 16).unwrap();
        data = &data[nl + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

pub fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", host(base));
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    parse(&raw(base, &bytes))
}

pub fn get(base: &str, path: &str) -> Resp {
    request(base, "GET", path, &[], b"")
}

pub fn get_h(base: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(base, "GET", path, headers, b"")
}

pub fn post_form(base: &str, path: &str, pairs: &[(&str, &str)]) -> Resp {
    post_form_h(base, path, &[], pairs)
}

pub fn post_form_h(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request(
        base,
        "POST",
        path,
        &h,
        form_encode_pairs(pairs.iter().copied()).as_bytes(),
    )
}

/// A device authorization request from the default client.
pub fn device_code(srv: &TestServer) -> Value {
    let r = post_form(
        &srv.base_url(),
        "/device/code",
        &[("client_id", TEST_CLIENT_ID), ("scope", SCOPE)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// One poll for `device_code` by the default client.
pub fn poll(srv: &TestServer, device_code: &Value) -> Resp {
    post_form(
        &srv.base_url(),
        "/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code.as_str().unwrap()),
            ("client_id", TEST_CLIENT_ID),
        ],
    )
}

/// One refresh by the default client.
pub fn refresh(base: &str, refresh_token: &str) -> Resp {
    post_form(
        base,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", TEST_CLIENT_ID),
        ],
    )
}

/// Issue a code, approve it, redeem it: the token answer. Needs `enforce_interval` off or
/// a zero interval.
pub fn pair(srv: &TestServer) -> Value {
    let dc = device_code(srv);
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let r = poll(srv, &dc["device_code"]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

pub fn userinfo(base: &str, access_token: &str) -> Resp {
    get_h(
        base,
        "/userinfo",
        &[("Authorization", &format!("Bearer {access_token}"))],
    )
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}
