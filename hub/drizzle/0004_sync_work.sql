CREATE TABLE "sync_work" (
	"cluster" text PRIMARY KEY NOT NULL,
	"pass" bigint NOT NULL,
	"environment" jsonb NOT NULL,
	"branch" text NOT NULL,
	"commit" text NOT NULL,
	"enqueued_at" timestamp with time zone DEFAULT now() NOT NULL
);
