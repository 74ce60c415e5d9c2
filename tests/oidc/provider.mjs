// A real OpenID Connect provider for the tests: `oidc-provider` (OpenID-certified), with static
// clients and accounts, Ed25519 and RSA keys, and a sign-in page of our own that sets `acr` and
// `amr`: a password alone gives `urn:safety-net:pwd`, a password and the one-time code below
// `urn:safety-net:mfa` (the provider's second factor).
//
// Started by tests/test_oidc_provider.py:  node provider.mjs  with
//   OIDC_PROVIDER_DIR  the folder holding node_modules/oidc-provider (installed by .ci/run)
//   OIDC_PORT          the port to listen on (127.0.0.1)
//   OIDC_CLIENT_SECRET the secret of the confidential web client
//   OIDC_WEB_REDIRECT  another redirect URI of that client (the dashboard's callback), optional
// Prints one line `ready <issuer>` when it listens.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const { default: Provider } = await import(
  pathToFileURL(path.join(dir, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href);

export const SECOND_FACTOR = '246810';
const API = 'safety-net-api';

function jwk(type, options, alg, kid) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rsa-1'),
  jwk('ed25519', {}, 'EdDSA', 'ed-1'),
];

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'safety-net-web',
      client_secret: process.env.OIDC_CLIENT_SECRET,
      // The dashboard's callback in the tests (tests/test_web_oidc.py), when given.
      redirect_uris: ['http://127.0.0.1/callback',
        ...(process.env.OIDC_WEB_REDIRECT ? [process.env.OIDC_WEB_REDIRECT] : [])],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      client_id: 'other-app',
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys },
  acrValues: ['urn:safety-net:pwd', 'urn:safety-net:mfa'],
  claims: { openid: ['sub'], profile: ['preferred_username'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, preferred_username: id }; } };
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.safety-net.test/eddsa',
      useGrantedResource: () => true,
      // Access tokens for our API are JWTs (RFC 9068, typ at+jwt), signed with EdDSA by
      // default, RS256 when that resource is asked for.
      async getResourceServerInfo(ctx, indicator) {
        return {
          scope: 'api',
          audience: API,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: indicator.endsWith('/rs256') ? 'RS256' : 'EdDSA' } },
        };
      },
    },
  },
  // RFC 9068 lets an access token say how she signed in: the code's acr, amr and auth_time.
  async extraTokenClaims(ctx) {
    const code = ctx.oidc.entities.AuthorizationCode;
    if (!code) return undefined;
    return { acr: code.acr, amr: code.amr, auth_time: code.authTime };
  },
  pkce: { required: () => true },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
});

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

// The sign-in page: GET shows what is asked (JSON, for the tests' client), POST signs in.
// Any account name with the password "correct horse" signs in; the code adds the factor.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
      return;
    }
    const form = await readForm(req);
    if (form.password !== 'correct horse') {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'wrong password' }));
      return;
    }
    const twoFactors = form.otp === SECOND_FACTOR;
    const grant = new provider.Grant({ accountId: form.login, clientId: details.params.client_id });
    grant.addOIDCScope('openid');
    grant.addResourceScope(details.params.resource || 'https://api.safety-net.test/eddsa', 'api');
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: {
        accountId: form.login,
        acr: twoFactors ? 'urn:safety-net:mfa' : 'urn:safety-net:pwd',
        amr: twoFactors ? ['pwd', 'otp'] : ['pwd'],
      },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(err && err.message) }));
  }
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
  } else {
    callback(req, res);
  }
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
