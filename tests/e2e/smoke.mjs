#!/usr/bin/env node
// Smoke test for op.mjs: starts the OP with a temporary config and drives a
// full authorization-code + PKCE login, code exchange and refresh over HTTP.
//
//   node tests/e2e/smoke.mjs        (or: cd tests/e2e && npm run smoke)
//
// Exits 0 and prints "N passed, 0 failed" on success. No dependencies beyond
// node itself (JWTs are verified with node:crypto against the OP's JWKS).

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const REDIRECT_URI = 'http://127.0.0.1:18080/oauth2/callback';
const RESOURCE = 'urn:authgate:upstream';

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`not ok - ${name}\n  ${String(err?.stack ?? err).split('\n').join('\n  ')}`);
    throw err;
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function decodeJwt(jwt) {
  const parts = jwt.split('.');
  assert(parts.length === 3, `not a compact JWS: ${jwt.slice(0, 40)}...`);
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url')),
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: Buffer.from(parts[2], 'base64url'),
  };
}

function verifyJwt(jwt, jwks) {
  const t = decodeJwt(jwt);
  assert(t.header.alg === 'RS256', `alg RS256, got ${t.header.alg}`);
  const jwk = jwks.keys.find((k) => k.kid === t.header.kid);
  assert(jwk, `kid ${t.header.kid} present in JWKS`);
  assert(!('d' in jwk), 'JWKS must not leak private key material');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('RSA-SHA256', Buffer.from(t.signingInput), key, t.signature);
  assert(ok, 'JWT signature verifies against JWKS');
  return t;
}

// Minimal cookie jar (name/path aware, enough for oidc-provider's cookies).
class Jar {
  constructor() { this.cookies = new Map(); }
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') cpath = v;
        if (k.toLowerCase() === 'expires' && new Date(v) < new Date()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name};${cpath}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path: cpath });
    }
  }
  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

async function req(jar, url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  const cookie = jar?.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar?.store(res);
  return res;
}

// Follow redirects manually until we leave the OP (reach the redirect_uri)
// or land on a page (2xx).
async function follow(jar, res, base) {
  for (let i = 0; i < 10; i += 1) {
    if (res.status < 300 || res.status >= 400) return { res, url: res.url };
    const loc = new URL(res.headers.get('location'), base).href;
    if (loc.startsWith(REDIRECT_URI)) return { location: loc };
    res = await req(jar, loc);
    base = loc;
  }
  throw new Error('too many redirects');
}

function pkcePair() {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

function parseLoginForm(html) {
  const form = html.match(/<form[^>]*action="([^"]+)"[^>]*method="post"/i);
  assert(form, 'login form present');
  const action = form[1].replace(/&amp;/g, '&');
  assert(/<input[^>]*name="login"/.test(html), 'input[name=login] present');
  assert(/<input[^>]*type="password"[^>]*name="password"/.test(html), 'input[name=password] present');
  assert(/<button type="submit" class="login login-submit">/.test(html), 'button.login-submit present');
  const prompt = html.match(/<input type="hidden" name="prompt" value="([^"]+)"/);
  assert(prompt && prompt[1] === 'login', 'hidden prompt=login');
  assert(!/@import\s+url\(/.test(html), 'no external @import left in page');
  return { action };
}

async function login(disc, client, user, { scope = 'openid email profile groups', extra = {}, jar = new Jar() } = {}) {
  const { verifier, challenge } = pkcePair();
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const auth = new URL(disc.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  let r = await follow(jar, await req(jar, auth.href), auth.href);
  assert(r.res && r.res.status === 200, `interaction page reached (status ${r.res?.status})`);
  const html = await r.res.text();
  const { action } = parseLoginForm(html);
  const submitUrl = new URL(action, r.url).href;
  const post = await req(jar, submitUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prompt: 'login', login: user, password: 'anything' }).toString(),
  });
  r = await follow(jar, post, submitUrl);
  assert(r.location, `redirected back to client (got ${r.res?.status} ${r.res && (await r.res.text()).slice(0, 300)})`);
  const cb = new URL(r.location);
  assert(!cb.searchParams.get('error'), `no error in callback: ${cb.search}`);
  assert(cb.searchParams.get('state') === state, 'state round-trips');
  assert(cb.searchParams.get('iss') === disc.issuer, 'iss param in callback');
  const code = cb.searchParams.get('code');
  assert(code, 'code in callback');
  return { code, verifier, nonce, jar };
}

async function token(disc, client, params, method = 'client_secret_basic') {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams(params);
  if (method === 'client_secret_basic') {
    const enc = (s) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(client.client_id)}:${enc(client.client_secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.client_id);
    body.set('client_secret', client.client_secret);
  }
  const res = await fetch(disc.token_endpoint, { method: 'POST', headers, body: body.toString() });
  const json = await res.json();
  return { status: res.status, json };
}

async function main() {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const basicClient = {
    client_id: 'authgate',
    client_secret: 's3cret',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: ['http://127.0.0.1:18080/'],
  };
  const postClient = {
    client_id: 'authgate-post',
    client_secret: 'p0st',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_post',
  };
  const ccClient = {
    client_id: 'machine',
    client_secret: 'm4chine',
    grant_types: ['client_credentials'],
  };
  const config = {
    issuer,
    port,
    accessTokenTtl: 5,
    idTokenTtl: 3600,
    clients: [basicClient, postClient, ccClient],
    users: {
      alice: { email: 'alice@example.com', email_verified: true, groups: ['sre', 'dev'], name: 'Alice' },
    },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authgate-op-'));
  const cfgFile = path.join(dir, 'op.json');
  fs.writeFileSync(cfgFile, JSON.stringify(config, null, 2));

  const child = spawn(process.execPath, [path.join(here, 'op.mjs'), '--config', cfgFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  const cleanup = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } fs.rmSync(dir, { recursive: true, force: true }); };

  try {
    await step('OP prints READY line', async () => {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no READY line in 20s; stderr:\n${stderr}`)), 20000);
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('\n')) { clearTimeout(t); resolve(); }
        });
        child.on('exit', () => { clearTimeout(t); reject(new Error(`OP exited early; stderr:\n${stderr}`)); });
      });
      assert(stdout === `OP READY ${issuer}\n`, `exact READY line, got ${JSON.stringify(stdout)}`);
    });

    let disc;
    let jwks;
    await step('discovery', async () => {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`);
      assert(res.status === 200, 'discovery 200');
      disc = await res.json();
      assert(disc.issuer === issuer, `issuer exact: ${disc.issuer}`);
      assert(disc.code_challenge_methods_supported?.includes('S256'), 'S256 PKCE');
      for (const s of ['openid', 'email', 'profile', 'groups', 'offline_access']) {
        assert(disc.scopes_supported.includes(s), `scope ${s} supported`);
      }
      for (const c of ['email', 'email_verified', 'groups', 'name', 'preferred_username']) {
        assert(disc.claims_supported.includes(c), `claim ${c} supported`);
      }
      assert(disc.token_endpoint_auth_methods_supported.includes('client_secret_basic'), 'basic auth');
      assert(disc.token_endpoint_auth_methods_supported.includes('client_secret_post'), 'post auth');
      assert(disc.end_session_endpoint, 'end_session_endpoint');
      assert(disc.revocation_endpoint, 'revocation_endpoint');
      assert(disc.device_authorization_endpoint, 'device_authorization_endpoint');
      assert(disc.grant_types_supported.includes('client_credentials'), 'client_credentials');
      const jr = await fetch(disc.jwks_uri);
      jwks = await jr.json();
      assert(jwks.keys.length >= 1 && jwks.keys[0].kid && jwks.keys[0].kty === 'RSA', 'RSA key with kid');
    });

    await step('PKCE is required', async () => {
      const auth = new URL(disc.authorization_endpoint);
      auth.search = new URLSearchParams({
        client_id: basicClient.client_id, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', state: 'x',
      }).toString();
      const res = await fetch(auth, { redirect: 'manual' });
      const loc = new URL(res.headers.get('location') ?? 'http://none/', issuer);
      assert(loc.href.startsWith(REDIRECT_URI), `error redirected to client, got ${res.status} ${loc.href}`);
      assert(loc.searchParams.get('error') === 'invalid_request', `invalid_request, got ${loc.search}`);
      assert(/PKCE|code_challenge/.test(loc.searchParams.get('error_description')), 'mentions PKCE');
    });

    let tokens;
    let nonce;
    await step('authorization code + PKCE login (alice, client_secret_basic)', async () => {
      const l = await login(disc, basicClient, 'alice');
      nonce = l.nonce;
      const t = await token(disc, basicClient, {
        grant_type: 'authorization_code', code: l.code, code_verifier: l.verifier, redirect_uri: REDIRECT_URI,
      });
      assert(t.status === 200, `token 200: ${JSON.stringify(t.json)}`);
      tokens = t.json;
      assert(tokens.token_type === 'Bearer', 'Bearer');
      assert(tokens.id_token, 'id_token issued');
      assert(tokens.refresh_token, 'refresh_token issued without offline_access');
      assert(tokens.expires_in === 5, `expires_in 5, got ${tokens.expires_in}`);
    });

    await step('ID token claims', async () => {
      const { payload: id } = verifyJwt(tokens.id_token, jwks);
      assert(id.iss === issuer, 'iss');
      assert(id.aud === basicClient.client_id, 'aud');
      assert(id.sub === 'alice', 'sub');
      assert(id.nonce === nonce, 'nonce');
      assert(id.email === 'alice@example.com', `email: ${id.email}`);
      assert(id.email_verified === true, 'email_verified');
      assert(JSON.stringify(id.groups) === '["sre","dev"]', `groups: ${JSON.stringify(id.groups)}`);
      assert(id.name === 'Alice', 'name');
      assert(id.preferred_username === 'alice', 'preferred_username');
      assert(id.exp - id.iat === 3600, 'idTokenTtl');
      console.log('    id_token claims:', Object.keys(id).join(' '));
    });

    await step('access token is an RS256 JWT for the upstream', async () => {
      const { header, payload: at } = verifyJwt(tokens.access_token, jwks);
      assert(header.typ === 'at+jwt', `typ at+jwt, got ${header.typ}`);
      assert(at.iss === issuer, 'iss');
      assert(at.aud === RESOURCE, `aud ${at.aud}`);
      assert(at.sub === 'alice', 'sub');
      assert(at.client_id === basicClient.client_id, 'client_id');
      assert(at.exp - at.iat === 5, 'accessTokenTtl');
      assert(at.scope.split(' ').includes('groups'), `scope ${at.scope}`);
    });

    await step('userinfo rejects the audience-restricted JWT access token (documented)', async () => {
      const res = await fetch(disc.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert(res.status === 401, `userinfo status ${res.status}`);
    });

    let refreshed;
    await step('refresh_token grant returns a new JWT access token', async () => {
      const t = await token(disc, basicClient, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
      assert(t.status === 200, `refresh 200: ${JSON.stringify(t.json)}`);
      refreshed = t.json;
      assert(refreshed.access_token !== tokens.access_token, 'new access token');
      const { payload: at } = verifyJwt(refreshed.access_token, jwks);
      assert(at.aud === RESOURCE && at.sub === 'alice', 'refreshed token aud/sub');
      assert(refreshed.id_token, 'refresh also returns an id_token');
      const { payload: id } = verifyJwt(refreshed.id_token, jwks);
      assert(id.email === 'alice@example.com' && id.groups.includes('sre'), 'refreshed id_token has claims');
      assert(id.nonce === nonce, 'refreshed id_token keeps the original nonce');
      assert(refreshed.refresh_token, 'refresh response carries a refresh_token');
      // default rotation policy: the same refresh token is returned until 70% of its TTL passed
      assert(refreshed.refresh_token === tokens.refresh_token, 'refresh token not rotated');
    });

    await step('refresh still works after the access token expired', async () => {
      await new Promise((r) => setTimeout(r, 6000));
      const rt = refreshed.refresh_token ?? tokens.refresh_token;
      const t = await token(disc, basicClient, { grant_type: 'refresh_token', refresh_token: rt });
      assert(t.status === 200, `refresh 200: ${JSON.stringify(t.json)}`);
      const { payload: at } = verifyJwt(t.json.access_token, jwks);
      assert(at.exp > Math.floor(Date.now() / 1000), 'fresh exp');
      refreshed = t.json;
    });

    await step('revocation of the refresh token', async () => {
      const rt = refreshed.refresh_token ?? tokens.refresh_token;
      const res = await fetch(disc.revocation_endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('authgate:s3cret').toString('base64')}`,
        },
        body: new URLSearchParams({ token: rt, token_type_hint: 'refresh_token' }).toString(),
      });
      assert(res.status === 200, `revocation ${res.status}`);
      const t = await token(disc, basicClient, { grant_type: 'refresh_token', refresh_token: rt });
      assert(t.status === 400 && t.json.error === 'invalid_grant', `revoked RT rejected: ${JSON.stringify(t.json)}`);
    });

    await step('RP-initiated logout auto-confirms and revokes the grant', async () => {
      const l = await login(disc, basicClient, 'alice');
      const t = await token(disc, basicClient, {
        grant_type: 'authorization_code', code: l.code, code_verifier: l.verifier, redirect_uri: REDIRECT_URI,
      });
      assert(t.status === 200, 'token');
      const end = new URL(disc.end_session_endpoint);
      end.search = new URLSearchParams({
        id_token_hint: t.json.id_token,
        post_logout_redirect_uri: basicClient.post_logout_redirect_uris[0],
        state: 'bye',
      }).toString();
      const page = await req(l.jar, end.href);
      assert(page.status === 200, `logout page ${page.status}`);
      const html = await page.text();
      const action = html.match(/<form id="op.logoutForm" method="post" action="([^"]+)"/)[1];
      const xsrf = html.match(/name="xsrf" value="([^"]+)"/)[1];
      assert(/name="logout" value="yes"/.test(html) && /\.submit\(\)/.test(html), 'auto-submitting logout form');
      assert(/default-src/.test(page.headers.get('content-security-policy') ?? ''), 'CSP set on HTML');
      const res = await req(l.jar, new URL(action, end).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
      });
      assert(res.status === 303, `confirm ${res.status}`);
      assert(res.headers.get('location') === `${basicClient.post_logout_redirect_uris[0]}?state=bye`, `loc ${res.headers.get('location')}`);
      const r2 = await token(disc, basicClient, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
      assert(r2.status === 400 && r2.json.error === 'invalid_grant', `RT dead after logout: ${JSON.stringify(r2.json)}`);
      // A new /auth with the same browser must show the login form again.
      const again = await login(disc, basicClient, 'alice', { jar: l.jar });
      assert(again.code, 'login again after logout');
    });

    await step('client_secret_post client + unknown user (no email)', async () => {
      const l = await login(disc, postClient, 'mallory');
      const t = await token(disc, postClient, {
        grant_type: 'authorization_code', code: l.code, code_verifier: l.verifier, redirect_uri: REDIRECT_URI,
      }, 'client_secret_post');
      assert(t.status === 200, `token 200: ${JSON.stringify(t.json)}`);
      const { payload: id } = verifyJwt(t.json.id_token, jwks);
      assert(id.sub === 'mallory', 'sub = login');
      assert(id.email === undefined && id.groups === undefined, 'no email/groups for unknown user');
      assert(id.preferred_username === 'mallory', 'preferred_username = login');
      assert(t.json.refresh_token, 'refresh token');
    });

    await step('wrong code_verifier is rejected', async () => {
      const l = await login(disc, basicClient, 'alice');
      const t = await token(disc, basicClient, {
        grant_type: 'authorization_code', code: l.code, code_verifier: pkcePair().verifier, redirect_uri: REDIRECT_URI,
      });
      assert(t.status === 400 && t.json.error === 'invalid_grant', `got ${JSON.stringify(t.json)}`);
    });

    await step('client_credentials yields a JWT access token', async () => {
      const t = await token(disc, ccClient, { grant_type: 'client_credentials' });
      assert(t.status === 200, `cc 200: ${JSON.stringify(t.json)}`);
      const { payload: at } = verifyJwt(t.json.access_token, jwks);
      assert(at.aud === RESOURCE && at.client_id === 'machine', 'cc token aud/client_id');
    });

    await step('SIGTERM exits cleanly', async () => {
      child.kill('SIGTERM');
      const { code, sig } = await Promise.race([
        exited,
        new Promise((_, rej) => setTimeout(() => rej(new Error('did not exit in 5s')), 5000)),
      ]);
      assert(code === 0, `exit code 0, got ${code} ${sig}`);
    });
  } catch {
    if (stderr) process.stderr.write(`--- op.mjs stderr ---\n${stderr}\n`);
  } finally {
    cleanup();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
