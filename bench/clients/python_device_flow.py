#!/usr/bin/env python3
"""RFC 8628 device flow with requests: what a user would otherwise write in Python, for
bench/compare.sh. Same job as `devauth pair` / `devauth token` against the same loopback
test server:

    python_device_flow.py pair  BASE STORE   device authorization, prints "code USER_CODE URI",
                                             polls at `interval` (+5 s on slow_down), writes
                                             the tokens to STORE
    python_device_flow.py token BASE STORE   prints an access token, refreshing when it expires
                                             within min(300 s, half its lifetime)

The STORE file is what a typical script writes: json.dump into the file (not atomic, not
fsynced, mode from the umask).
"""
import json
import sys
import time

import requests

CLIENT_ID = "devauth-test"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def save(store, tokens):
    tokens = dict(tokens, obtained_at=int(time.time()))
    with open(store, "w") as f:
        json.dump(tokens, f)


def pair(base, store):
    s = requests.Session()
    r = s.post(f"{base}/device/code", data={"client_id": CLIENT_ID, "scope": "openid"})
    r.raise_for_status()
    da = r.json()
    uri = da.get("verification_uri_complete") or da["verification_uri"]
    print(f"code {da['user_code']} {uri}", flush=True)
    interval = int(da.get("interval", 5))
    deadline = time.monotonic() + int(da["expires_in"])
    while time.monotonic() < deadline:
        time.sleep(interval)
        r = s.post(
            f"{base}/token",
            data={"grant_type": DEVICE_GRANT, "device_code": da["device_code"], "client_id": CLIENT_ID},
        )
        body = r.json()
        err = body.get("error")
        if err is None and r.ok:
            save(store, body)
            print("paired", flush=True)
            return 0
        if err == "authorization_pending":
            continue
        if err == "slow_down":
            interval += 5
            continue
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("error: expired", file=sys.stderr)
    return 1


def token(base, store):
    with open(store) as f:
        t = json.load(f)
    lifetime = t.get("expires_in")
    if lifetime is not None:
        margin = min(300, int(lifetime) // 2)
        if time.time() >= t["obtained_at"] + int(lifetime) - margin:
            r = requests.post(
                f"{base}/token",
                data={"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": CLIENT_ID},
            )
            r.raise_for_status()
            fresh = r.json()
            fresh.setdefault("refresh_token", t["refresh_token"])
            save(store, fresh)
            t = fresh
    print(t["access_token"])
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pair", "token"):
        print("usage: python_device_flow.py pair|token BASE STORE", file=sys.stderr)
        sys.exit(2)
    sys.exit({"pair": pair, "token": token}[sys.argv[1]](sys.argv[2], sys.argv[3]))
