import { CliError, createHubClient } from './client.js';
import { createCredentials } from './credentials.js';
import { deviceLogin, revokeAtProvider } from './login.js';
import { type Ctx, clientFor, hubOf, jsonOutput } from './run.js';

/** `flotilla login | logout | whoami`: single sign-on for the CLI, and who the hub takes the caller for. */

/** What `GET /api/v1/auth/oidc` and `GET /api/v1/whoami` answer. */
interface Announcement {
  issuer: string;
  clientId: string;
  scope: string;
  allowHttp: boolean;
}
interface WhoAmI {
  actor: string;
  role: string;
  environments: string[];
  expiresAt: string | null;
}

const describe = (me: WhoAmI) =>
  `${me.actor} (${me.role}${me.role !== 'admin' && me.environments.length ? ` of ${me.environments.join(', ')}` : ''})`;

function credentialsOf(ctx: Ctx) {
  if (!ctx.env.configDir)
    throw new CliError('no configuration directory: set XDG_CONFIG_HOME or HOME for the credentials file');
  return createCredentials(ctx.env.configDir);
}

export async function login(ctx: Ctx): Promise<number> {
  const { values, positionals } = ctx.parse({});
  if (positionals.length > 0) throw new CliError('login: takes no arguments (the hub is --hub URL)', 2);
  const hub = hubOf(ctx.env, { values });
  const credentials = credentialsOf(ctx);
  const provider = await createHubClient(hub, undefined, ctx.env.caFile).json<Announcement>(
    'GET',
    '/api/v1/auth/oidc',
  );
  const tokens = await deviceLogin(
    provider,
    (code) =>
      ctx.io.err(
        [
          `To log in to ${hub}, open ${code.verificationUri} and enter the code ${code.userCode}`,
          ...(code.verificationUriComplete ? [`(or open ${code.verificationUriComplete})`] : []),
          `Waiting for the login at ${provider.issuer} (the code expires in ${Math.round(code.expiresInS / 60)} min)…`,
          '',
        ].join('\n'),
      ),
    ctx.io.stop,
  );
  // The hub must take the token before it is kept: a user in no group with a role learns why now.
  const me = await createHubClient(
    hub,
    { token: async () => tokens.idToken, whenRefused: '' },
    ctx.env.caFile,
  ).json<WhoAmI>('GET', '/api/v1/whoami');
  credentials.put(hub, {
    issuer: provider.issuer,
    clientId: provider.clientId,
    allowHttp: provider.allowHttp,
    idToken: tokens.idToken,
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
    expiresAt: tokens.expiresAt.toISOString(),
    actor: me.actor,
  });
  ctx.io.out(
    `logged in to ${hub} as ${describe(me)} until ${tokens.expiresAt.toISOString()}` +
      `${tokens.refreshToken ? ' (renewed on use after that)' : ''}; kept in ${credentials.file}\n`,
  );
  if (ctx.env.token)
    ctx.io.err(
      'note: FLOTILLA_TOKEN is set and wins over this login: unset it for commands to act as this login\n',
    );
  return 0;
}

export async function logout(ctx: Ctx): Promise<number> {
  const { values, positionals } = ctx.parse({});
  if (positionals.length > 0) throw new CliError('logout: takes no arguments (the hub is --hub URL)', 2);
  const hub = hubOf(ctx.env, { values });
  const credentials = credentialsOf(ctx);
  const removed = credentials.remove(hub);
  if (!removed) {
    ctx.io.out(`not logged in to ${hub}\n`);
    return 0;
  }
  const notRevoked = await revokeAtProvider(removed);
  ctx.io.out(`logged out of ${hub}: ${removed.actor}'s tokens removed from ${credentials.file}\n`);
  if (notRevoked)
    ctx.io.err(`note: the refresh token could not be revoked at ${removed.issuer}: ${notRevoked}\n`);
  return 0;
}

export async function whoami(ctx: Ctx): Promise<number> {
  const { values, positionals } = ctx.parse({});
  if (positionals.length > 0) throw new CliError('whoami: takes no arguments', 2);
  const json = jsonOutput(values);
  const me = await clientFor(ctx.env, { values }).json<WhoAmI>('GET', '/api/v1/whoami');
  ctx.io.out(
    json
      ? `${JSON.stringify(me, null, 2)}\n`
      : [
          `identity:     ${me.actor}`,
          `role:         ${me.role}`,
          `environments: ${me.role === 'admin' || me.environments.length === 0 ? 'every environment' : me.environments.join(', ')}`,
          `expires:      ${me.expiresAt ?? 'never'}`,
          '',
        ].join('\n'),
  );
  return 0;
}
