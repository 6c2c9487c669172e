CREATE TABLE "age_recipients" (
	"cluster" text PRIMARY KEY NOT NULL,
	"recipient" text NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bundles" ADD COLUMN "warnings" jsonb;