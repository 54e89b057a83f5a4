// Minimal OpenID Connect provider for the test suite (see README.md).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const PORT = Number(process.env.IDP_PORT);
if (!Number.isInteger(PORT) || PORT <= 0) throw new Error('IDP_PORT must be a port number');
const ISSUER = `http://127.0.0.1:${PORT}`;
const JWKS_FILE = process.env.IDP_JWKS_FILE;
if (!JWKS_FILE) throw new Error('IDP_JWKS_FILE must be set');
const CLIENTS = JSON.parse(process.env.IDP_CLIENTS || '[]');
const SCOPE = 'openid email profile';

// Private signing key: reuse the file, or create it so tests can re-sign tokens.
function loadJwks() {
  if (existsSync(JWKS_FILE)) return JSON.parse(readFileSync(JWKS_FILE, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const jwks = { keys: [{ ...jwk, kid: `test-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' }] };
  writeFileSync(JWKS_FILE, JSON.stringify(jwks, null, 2), { mode: 0o600 });
  return jwks;
}

// accountId (= sub, oidc-provider forces it) is the lowercased login; e-mail keeps the typed case.
const typedLogin = new Map();
function claimsFor(accountId) {
  const login = typedLogin.get(accountId) ?? accountId;
  return {
    sub: accountId,
    email: login,
    email_verified: !accountId.startsWith('unverified'),
    name: login.split('@')[0],
  };
}

const provider = new Provider(ISSUER, {
  clients: CLIENTS.map(({ client_id, client_secret, redirect_uris }) => ({
    client_id,
    client_secret,
    redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // Either of the two secret methods is accepted at the token endpoint.
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  jwks: loadJwks(),
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true }, // only S256 exists in oidc-provider 9
  features: { devInteractions: { enabled: false } },
  // amr rides on the openid scope so it is always in the ID token (not only when requested).
  claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false, // scope claims go into the ID token, not only userinfo
  ttl: { AccessToken: 600, IdToken: 600, AuthorizationCode: 60, Interaction: 600, Grant: 3600, Session: 3600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return { accountId: id, claims: async () => claimsFor(id) };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>IdP error</title><h1>${esc(out.error)}</h1><p>${esc(out.error_description || '')}</p>`;
  },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error = '') {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP sign in</title></head>
<body><h1>Test IdP</h1>${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>E-mail <input type="email" name="login" autocomplete="username" required autofocus></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

// GET /interaction/:uid and POST /interaction/:uid/login; everything else is oidc-provider.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid));
  if (req.method !== 'POST' || action !== 'login') return send(res, 405, 'method not allowed');

  const form = await readForm(req);
  const login = (form.get('login') || '').trim();
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(login)) return send(res, 400, loginPage(uid, 'Enter an e-mail address'));
  const password = form.get('password');
  const amr = password === 'mfa' ? ['pwd', 'mfa'] : password === 'otp' ? ['pwd', 'otp'] : ['pwd'];
  const accountId = login.toLowerCase();
  typedLogin.set(accountId, login);

  // Consent is granted here (the requested scopes) so no consent prompt ever shows.
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope || SCOPE);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId, amr }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const oidc = provider.callback();
const server = createServer(async (req, res) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(\w+))?\/?$/.exec(new URL(req.url, ISSUER).pathname);
  if (!m) return oidc(req, res);
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (err) {
    if (!res.headersSent) send(res, err.statusCode || 500, `<h1>${esc(err.message)}</h1>`);
  }
});

server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`IDP READY ${ISSUER}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0)); // state is in memory only
