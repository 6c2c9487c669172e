import { defineConfig } from 'drizzle-kit';

/** `npx drizzle-kit generate --config hub/drizzle.config.ts` writes migrations into hub/drizzle. */
export default defineConfig({
  dialect: 'postgresql',
  schema: './hub/src/db/schema.ts',
  out: './hub/drizzle',
});
