// RFC 8628 device flow with openid-client (v6), the Node client a user would pick, for
// bench/compare.sh. Same job as `devauth pair` / `devauth token` against the same loopback
// test server:
//
//   node device_flow.mjs pair  BASE STORE   device authorization, prints "code USER_CODE URI",
//                                           polls (openid-client honours interval/slow_down),
//                                           writes the tokens to STORE
//   node device_flow.mjs token BASE STORE   prints an access token, refreshing when it expires
//                                           within min(300 s, half its lifetime)
//
// openid-client keeps tokens in memory only; the STORE file is what a typical script adds:
// fs.writeFileSync of the JSON (not atomic, not fsynced, mode from the umask).
// allowInsecureRequests: the test server is plain http on 127.0.0.1.
import * as client from 'openid-client';
import * as fs from 'node:fs';

const [cmd, base, store] = process.argv.slice(2);
if (!cmd || !base || !store) {
  console.error('usage: device_flow.mjs pair|token BASE STORE');
  process.exit(2);
}
const config = new client.Configuration(
  {
    issuer: base,
    device_authorization_endpoint: `${base}/device/code`,
    token_endpoint: `${base}/token`,
  },
  'devauth-test',
  undefined,
  client.None(),
);
client.allowInsecureRequests(config);

function save(tokens) {
  const now = Math.floor(Date.now() / 1000);
  fs.writeFileSync(
    store,
    JSON.stringify({
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      id_token: tokens.id_token,
      token_type: tokens.token_type,
      scope: tokens.scope,
      expires_in: tokens.expires_in,
      obtained_at: now,
    }),
  );
}

if (cmd === 'pair') {
  const da = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
  console.log(`code ${da.user_code} ${da.verification_uri_complete ?? da.verification_uri}`);
  const tokens = await client.pollDeviceAuthorizationGrant(config, da);
  save(tokens);
  console.log('paired');
} else if (cmd === 'token') {
  const t = JSON.parse(fs.readFileSync(store, 'utf8'));
  const now = Math.floor(Date.now() / 1000);
  const margin = Math.min(300, Math.floor((t.expires_in ?? 0) / 2));
  let access = t.access_token;
  if (t.expires_in !== undefined && now >= t.obtained_at + t.expires_in - margin) {
    const fresh = await client.refreshTokenGrant(config, t.refresh_token);
    if (!fresh.refresh_token) fresh.refresh_token = t.refresh_token;
    if (!fresh.id_token) fresh.id_token = t.id_token;
    save(fresh);
    access = fresh.access_token;
  }
  console.log(access);
} else {
  console.error(`unknown command ${cmd}`);
  process.exit(2);
}
