import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import { type Browser, chromium, type Locator } from 'playwright-core';
import { freePort } from './free-port.js';

/**
 * A real OpenID provider (oidc-provider, a certified implementation) on a free port of
 * 127.0.0.1, for the hub's single sign-on: a public CLI client allowed the device
 * authorization grant and refresh tokens, revocation, a groups claim in the ID token, and the
 * provider's development login pages (any password). Not served: dynamic registration,
 * sessions shared between processes (its store is in memory), a login other than devInteractions.
 */
export interface OidcProviderOptions {
  /** The users, each with the groups its groups claim lists. */
  users: Record<string, string[]>;
  /** The CLI's public client (`cliClientId` in the hub's oidc config); default `flotilla-cli`. */
  cliClientId?: string;
  /** Seconds an ID token lives; default an hour. Short to see renewal without sleeping past an hour. */
  idTokenTtlS?: number;
}

export interface OidcProvider {
  issuer: string;
  cliClientId: string;
  /** A refresh grant at the token endpoint, as the CLI would make it: the provider's answer. */
  refresh(refreshToken: string): Promise<{ status: number; body: { error?: string; id_token?: string } }>;
  /** How many grants the provider revoked so far: revoking a refresh token at its revocation endpoint revokes its grant. */
  grantsRevoked(): number;
  stop(): Promise<void>;
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<OidcProvider> {
  const cliClientId = options.cliClientId ?? 'flotilla-cli';
  const issuer = `http://127.0.0.1:${await freePort()}`;
  const op = new Provider(issuer, {
    clients: [
      {
        client_id: cliClientId,
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    async findAccount(_ctx, sub) {
      return { accountId: sub, claims: async () => ({ sub, groups: options.users[sub] ?? [] }) };
    },
    claims: { openid: ['sub'], groups: ['groups'] },
    // The groups claim in the ID token itself, where the hub reads it.
    conformIdTokenClaims: false,
    features: {
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: true },
    },
    ttl: { IdToken: options.idTokenTtlS ?? 3600 },
    cookies: { keys: ['flotilla-e2e-oidc-cookie-key'] },
  });
  let revoked = 0;
  op.on('grant.revoked', () => revoked++);
  const server = createServer(op.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(new URL(issuer).port), '127.0.0.1', resolve);
  });
  return {
    issuer,
    cliClientId,
    async refresh(refreshToken) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          client_id: cliClientId,
        }),
      });
      return { status: res.status, body: (await res.json()) as { error?: string; id_token?: string } };
    },
    grantsRevoked: () => revoked,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/** Debian's chromium (apt-get install chromium), or FLOTILLA_CHROMIUM. */
export const CHROMIUM = process.env.FLOTILLA_CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set FLOTILLA_CHROMIUM)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/**
 * What a user does in a browser for a device login (RFC 8628) at this provider: opens the
 * verification URL, enters the user code, confirms the device, logs in as `user` and
 * consents. Resolves when the provider shows its success page; rejects with the page's text
 * when it shows anything else.
 */
export async function completeDeviceLogin(
  browser: Browser,
  verificationUri: string,
  userCode: string,
  user: string,
): Promise<void> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(verificationUri);
    await page.fill('input[name=user_code]', userCode);
    await page.click('button[form="op.deviceInputForm"]');
    await page.click('button[form="op.deviceConfirmForm"]');
    await page.fill('input[name=login]', user);
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    // Consent, the first time this user meets the client; then the success page.
    const success = page.locator('h1', { hasText: 'Sign-in Success' });
    const consent = page.locator('input[name=prompt][value=consent]');
    const shown = (what: Locator) =>
      what
        .first()
        .waitFor({ state: 'attached', timeout: 30_000 })
        .catch(async (err: unknown) => {
          const text = await page.locator('body').innerText();
          throw new Error(`device login of ${user}: the provider shows: ${text}`, { cause: err });
        });
    await shown(success.or(consent));
    if ((await consent.count()) > 0) {
      await page.click('button[type=submit]');
      await shown(success);
    }
  } finally {
    await context.close();
  }
}
