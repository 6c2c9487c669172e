import type { CreatedToken, TokenInfo } from '../access/token-store.js';
import { CliError } from './client.js';
import { table } from './format.js';
import { type Ctx, clientFor, jsonOutput } from './run.js';

/** `flotilla token …`: API tokens for people and machines, each with a role and environments. */

export async function tokenCreate(ctx: Ctx): Promise<number> {
  const { values, positionals } = ctx.parse({
    role: { type: 'string' },
    env: { type: 'string', multiple: true },
    ttl: { type: 'string' },
  });
  const json = jsonOutput(values);
  if (positionals.length !== 1) throw new CliError('token create: expected exactly one token NAME', 2);
  if (!values.role) throw new CliError('token create: --role viewer|deployer|approver|admin is required', 2);
  const environments = ((values.env as string[] | undefined) ?? [])
    .flatMap((e) => e.split(','))
    .filter(Boolean);
  const created = await clientFor(ctx.env, { values }).json<CreatedToken>('POST', '/api/v1/tokens', {
    name: positionals[0],
    role: values.role,
    environments,
    ...(values.ttl ? { ttl: values.ttl } : {}),
  });
  ctx.io.out(
    json
      ? `${JSON.stringify(created, null, 2)}\n`
      : [
          `token ${created.name}: ${created.role} of ${created.environments.length ? created.environments.join(', ') : 'every environment'}, expires ${created.expiresAt}`,
          created.token,
          '(shown once: only its hash is kept)',
          '',
        ].join('\n'),
  );
  return 0;
}

export async function tokenList(ctx: Ctx): Promise<number> {
  const { values } = ctx.parse({});
  const data = await clientFor(ctx.env, { values }).json<{ tokens: TokenInfo[] }>('GET', '/api/v1/tokens');
  ctx.io.out(
    jsonOutput(values)
      ? `${JSON.stringify(data, null, 2)}\n`
      : table(
          ['NAME', 'ROLE', 'ENVIRONMENTS', 'EXPIRES', 'LAST USED', 'CREATED BY'],
          data.tokens.map((t) => [
            t.name,
            t.role,
            t.environments.join(',') || '*',
            t.expired ? `expired ${t.expiresAt}` : t.expiresAt,
            t.lastUsedAt ?? 'never',
            t.createdBy,
          ]),
        ),
  );
  return 0;
}

export async function tokenRevoke(ctx: Ctx): Promise<number> {
  const { values, positionals } = ctx.parse({});
  if (positionals.length !== 1) throw new CliError('token revoke: expected exactly one token NAME', 2);
  await clientFor(ctx.env, { values }).json(
    'DELETE',
    `/api/v1/tokens/${encodeURIComponent(positionals[0]!)}`,
  );
  ctx.io.out(`token ${positionals[0]} revoked\n`);
  return 0;
}
