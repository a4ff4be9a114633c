// Signs a user in through an OIDC relying party (authgate or Apache with
// mod_auth_openidc) headlessly, the way a browser would, against the test
// OP in tests/e2e: protected URL -> OP login form -> callback -> upstream.
//
// Usage: node bench/gateway/login.mjs URL USER
// On success (the final response is a 200 from the protected origin) prints
// one line: the value of the Cookie header a browser would send to URL's
// origin, i.e. the relying party's session cookie(s). Exits 1 otherwise.
//
// Cookies are kept per origin (host:port), unlike a browser, so the OP's
// cookies and the relying party's never mix even though both are on
// 127.0.0.1.

const [target, user] = process.argv.slice(2);
if (!target || !user) {
  console.error('usage: node login.mjs URL USER');
  process.exit(2);
}
const jars = new Map(); // origin -> Map(name -> value)
const jar = (url) => {
  const origin = new URL(url).origin;
  if (!jars.has(origin)) jars.set(origin, new Map());
  return jars.get(origin);
};

import http from 'node:http';

function remember(url, res) {
  const j = jar(url);
  for (const line of res.headers['set-cookie'] || []) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (/max-age=0|expires=thu, 01[- ]jan[- ]1970/i.test(line) || value === '') j.delete(name);
    else j.set(name, value);
  }
}

const cookieHeader = (url) => [...jar(url)].map(([k, v]) => `${k}=${v}`).join('; ');

// node:http rather than fetch: fetch always sends `sec-fetch-mode: cors`,
// which mod_auth_openidc rightly answers with 401 instead of a login
// redirect. These headers are those of a browser's top-level navigation.
function go(url, init = {}) {
  const headers = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', ...(init.headers || {}) };
  const cookie = cookieHeader(url);
  if (cookie) headers.cookie = cookie;
  if (init.body) headers['content-length'] = Buffer.byteLength(init.body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method || 'GET', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        remember(url, res);
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, headers: res.headers, text: async () => text, arrayBuffer: async () => null });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

async function follow(url, init) {
  let res = await go(url, init);
  for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
    if (hops > 20) throw new Error('too many redirects');
    url = new URL(res.headers.location, url).href;
    await res.arrayBuffer();
    res = await go(url);
  }
  return { res, url };
}

let { res, url } = await follow(target);
const html = await res.text();
const form = html.match(/<form[^>]*action="([^"]+)"[^>]*method="post"/i);
if (!form) {
  console.error(`expected the OP login form at ${url}, got HTTP ${res.status}`);
  process.exit(1);
}
const action = new URL(form[1].replace(/&amp;/g, '&'), url).href;
({ res, url } = await follow(action, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ prompt: 'login', login: user, password: 'bench' }).toString(),
}));
const body = await res.text();
if (res.status !== 200 || new URL(url).origin !== new URL(target).origin) {
  console.error(`login did not end at ${new URL(target).origin} with 200: HTTP ${res.status} ${url}\n${body.slice(0, 500)}`);
  process.exit(1);
}
console.log(cookieHeader(target));
