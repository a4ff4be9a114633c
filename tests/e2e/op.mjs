#!/usr/bin/env node
// Test OpenID Provider for authgate integration tests, built on oidc-provider.
//
//   node tests/e2e/op.mjs --config FILE      (or OP_CONFIG=FILE node tests/e2e/op.mjs)
//
// Prints exactly one line `OP READY <issuer>` on stdout once listening; every
// other message goes to stderr. Exits 0 on SIGTERM/SIGINT. See README.md.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints its NOTICEs with console.info (stdout). Keep stdout
// reserved for the single READY line so a harness can read it reliably.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

function fail(msg) {
  process.stderr.write(`op.mjs: ${msg}\n`);
  process.exit(2);
}

const { values: argv } = parseArgs({
  options: { config: { type: 'string', short: 'c' } },
  strict: true,
});
const configPath = argv.config ?? process.env.OP_CONFIG;
if (!configPath) fail('usage: node op.mjs --config FILE (or OP_CONFIG=FILE)');

let config;
try {
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read config ${configPath}: ${err.message}`);
}

const issuer = config.issuer;
if (typeof issuer !== 'string' || !issuer) fail('config.issuer is required');
const issuerUrl = new URL(issuer);
const port = Number(config.port ?? issuerUrl.port);
if (!Number.isInteger(port) || port <= 0) fail('config.port is required');
const host = config.host ?? '127.0.0.1';
const accessTokenTtl = Number(config.accessTokenTtl ?? 3600);
const idTokenTtl = Number(config.idTokenTtl ?? 3600);
const refreshTokenTtl = Number(config.refreshTokenTtl ?? 14 * 24 * 3600);
// client_credentials tokens: the access token lifetime unless set (short,
// to exercise a gateway's renewal).
const clientCredentialsTtl = config.clientCredentialsTtl == null ? undefined : Number(config.clientCredentialsTtl);
const resourceIndicator = config.resource ?? 'urn:authgate:upstream';
const resourceScope = 'openid email profile groups';
const users = config.users ?? {};

// Claims added to the JWT access tokens of a client (`extra_token_claims`
// in its test config: not client metadata, so taken out here).
const extraTokenClaimsByClient = {};
const clients = (config.clients ?? []).map(({ extra_token_claims: extra, ...c }) => {
  if (!c.client_id) fail('every client needs a client_id');
  if (extra) extraTokenClaimsByClient[c.client_id] = extra;
  const client = {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  };
  if (client.response_types.length === 0 || !client.grant_types.includes('authorization_code')) {
    // e.g. a pure client_credentials / device flow client
    client.response_types = [];
    if (!c.redirect_uris) client.redirect_uris = [];
  }
  return client;
});

// Fresh RS256 signing key with a kid, plus random cookie keys, every start.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `op-${crypto.randomBytes(8).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

const { default: Provider, errors } = await import('oidc-provider');

function accountClaims(sub) {
  const user = users[sub];
  const claims = { sub, preferred_username: sub };
  if (user) {
    for (const key of ['email', 'email_verified', 'groups', 'name', 'preferred_username']) {
      if (user[key] !== undefined) claims[key] = user[key];
    }
  }
  return claims;
}

function responseIsHtml(ctx) {
  return typeof ctx.body === 'string' && /html/.test(ctx.type ?? '');
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: cookieKeys },

  // Any login name signs in; known users get their claims from the table,
  // unknown users get only sub + preferred_username.
  async findAccount(_ctx, sub) {
    if (config.rejectUnknownUsers && !users[sub]) return undefined;
    return {
      accountId: sub,
      async claims() {
        return accountClaims(sub);
      },
    };
  },

  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // Put scope-requested claims (email, groups, ...) into the ID token too.
  conformIdTokenClaims: false,

  pkce: { required: () => true },

  // Auto-consent: always return a Grant covering everything requested, so
  // the consent prompt never triggers (browser sees login form only).
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const accountId = oidc.account?.accountId ?? oidc.session?.accountId;
    if (!accountId) return undefined;
    const clientId = oidc.client.clientId;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
      grant = new oidc.provider.Grant({ accountId, clientId });
    }
    const oidcScopes = [...oidc.requestParamOIDCScopes];
    if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
    const claims = [...oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    for (const [indicator, rs] of Object.entries(oidc.resourceServers ?? {})) {
      const scopes = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
      if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
    }
    await grant.save();
    return grant;
  },

  // Always issue a refresh token when the client may use the refresh_token
  // grant (no offline_access / prompt=consent needed).
  async extraTokenClaims(_ctx, token) {
    return extraTokenClaimsByClient[token.clientId];
  },

  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },

  // Outgoing requests (back-channel logout tokens) go to the gateways
  // under test on loopback, which oidc-provider's SSRF guard would refuse.
  fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined }),

  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    // Clients with a backchannel_logout_uri (from the test config) get a
    // logout token POSTed there when their user's OP session ends.
    backchannelLogout: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // No click needed: the confirmation form is auto-submitted with
      // logout=yes (full OP sign-out, grants revoked). The button is the
      // no-JavaScript fallback: button#op-logout-confirm.
      async logoutSource(ctx, form) {
        const autoForm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Logout Request</title></head><body>
<h1>Signing out of ${ctx.host.replace(/[&<>"']/g, '')}</h1>
${autoForm}
<button id="op-logout-confirm" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<script>document.getElementById('op.logoutForm').submit();</script>
</body></html>`;
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-out Success</title></head><body><h1 id="op-signed-out">Sign-out Success</h1></body></html>';
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resourceIndicator,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resourceIndicator) throw new errors.InvalidTarget();
        return {
          scope: resourceScope,
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },

  clientBasedCORS: () => true,

  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
    AuthorizationCode: 60,
    ClientCredentials: (_ctx, token) => clientCredentialsTtl ?? token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
    DeviceCode: 600,
    IdToken: idTokenTtl,
    RefreshToken: refreshTokenTtl,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },

  async renderError(ctx, out) {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([k, v]) => `<pre id="${k}"><strong>${k}</strong>: ${String(v).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)}</pre>`)
      .join('');
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>oops! something went wrong</title></head><body><h1>oops! something went wrong</h1>${rows}</body></html>`;
  },
});

// The built-in dev pages @import a web font from a public CDN. This
// workplace (and CI) must not make browsers reach out to the internet, so
// strip those imports from every HTML page and forbid off-origin loads.
provider.use(async (ctx, next) => {
  await next();
  if (responseIsHtml(ctx)) {
    ctx.body = ctx.body.replace(/@import\s+url\([^)]*\)\s*;?/g, '');
    // default-src does not govern form-action/navigation, so the redirect
    // back to the client is unaffected.
    if (!ctx.response.get('content-security-policy')) {
      ctx.set('Content-Security-Policy', "default-src 'self' 'unsafe-inline' data:");
    }
  }
});

// One line per token issued, so a harness can count fetches by grant and
// client (never the token itself).
provider.on('grant.success', (ctx) => {
  process.stderr.write(`op.mjs grant.success ${ctx.oidc.params?.grant_type} ${ctx.oidc.client?.clientId}\n`);
});
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`op.mjs server_error: ${err?.stack ?? err}\n`);
});
for (const ev of ['grant.error', 'authorization.error', 'end_session.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'backchannel.error']) {
  provider.on(ev, (_ctx, err) => {
    process.stderr.write(`op.mjs ${ev}: ${err?.name}: ${err?.message} ${err?.error_description ?? ''}\n`);
  });
}

// Test-only administration, enabled by `"admin": true` in the config:
//   POST /__admin/users/<sub>  body: that user's new entry of `users`
//     (JSON), seen by every later token, refresh and userinfo answer.
//   POST /__admin/outage       body: {"status": 503} makes every other
//     request answer that status; {"status": null} ends the outage.
let outageStatus = null;
async function admin(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  let body;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    res.writeHead(400).end('body is not JSON\n');
    return;
  }
  const path = new URL(req.url, issuer).pathname;
  const user = path.match(/^\/__admin\/users\/([^/]+)$/);
  if (req.method === 'POST' && user && body && typeof body === 'object') {
    users[decodeURIComponent(user[1])] = body;
  } else if (req.method === 'POST' && path === '/__admin/outage' && body && typeof body === 'object') {
    outageStatus = body.status == null ? null : Number(body.status);
  } else {
    res.writeHead(404).end('no such admin endpoint\n');
    return;
  }
  process.stderr.write(`op.mjs admin ${path}\n`);
  res.writeHead(204).end();
}
const serveOidc = provider.callback();
function serve(req, res) {
  if (config.admin && req.url.startsWith('/__admin/')) return void admin(req, res);
  if (outageStatus) return void res.writeHead(outageStatus, { 'content-type': 'text/plain' }).end('outage\n');
  if (new URL(req.url, issuer).pathname === '/me') process.stderr.write('op.mjs userinfo\n');
  return serveOidc(req, res);
}

const server = http.createServer(serve);
server.on('error', (err) => fail(`listen ${host}:${port}: ${err.message}`));
server.listen(port, host, () => {
  process.stdout.write(`OP READY ${issuer}\n`);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`op.mjs: ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
