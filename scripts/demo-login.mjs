// Signs a user in through a gateway headlessly, the way a browser would:
// gateway -> OpenID Provider login form -> callback -> upstream.
// Usage: node scripts/demo-login.mjs GATEWAY_URL USER
// Prints the upstream's response and exits 0 when the upstream was reached.

const [gateway, user] = process.argv.slice(2);
const jar = new Map(); // cookies by name (all hosts are 127.0.0.1; cookies ignore ports)

function remember(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

async function go(url, init = {}) {
  const headers = { accept: 'text/html', ...(init.headers || {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  remember(res);
  return res;
}

async function follow(url, init) {
  let res = await go(url, init);
  for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
    if (hops > 15) throw new Error('too many redirects');
    url = new URL(res.headers.get('location'), url).href;
    res = await go(url);
  }
  return { res, url };
}

let { res, url } = await follow(gateway);
const html = await res.text();
const form = html.match(/<form[^>]*action="([^"]+)"[^>]*method="post"/i);
if (!form) {
  console.error(`expected the login form at ${url}, got HTTP ${res.status}`);
  process.exit(1);
}
const action = new URL(form[1].replace(/&amp;/g, '&'), url).href;
({ res, url } = await follow(action, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ prompt: 'login', login: user, password: 'demo' }).toString(),
}));
const body = await res.text();
console.log(`HTTP ${res.status} ${url}`);
console.log(body);
process.exit(res.status === 200 ? 0 : 1);
